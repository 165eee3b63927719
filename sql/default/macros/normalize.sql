{#- Identifier normalisers. Override any of them with a macro of the same name in a
    macros/*.sql file of your own template dir; the core layer picks yours up.
    dialect.trim_blank strips the space, tabs, line breaks, no-break and other Unicode spaces and
    zero-width characters, the same set on every engine (each engine's TRIM strips its own). -#}

{% macro normalize_trim(expr) -%}
NULLIF({{ dialect.trim_blank(expr) }}, '')
{%- endmacro %}

{% macro normalize_lower(expr) -%}
NULLIF(LOWER({{ dialect.trim_blank(expr) }}), '')
{%- endmacro %}

{% macro normalize_none(expr) -%}
{{ expr }}
{%- endmacro %}

{% macro normalize_email(expr) -%}
NULLIF(LOWER({{ dialect.trim_blank(expr) }}), '')
{%- endmacro %}

{#- Digits only; a 10-digit number is taken as North American and gets its country code, so
    "+1 (415) 555-0100", "415.555.0100" and "4155550100" meet. Override for other regions. -#}
{% macro normalize_phone(expr) -%}
{% set digits = dialect.regexp_replace(expr, '[^0-9]', '') -%}
NULLIF(CASE WHEN LENGTH({{ digits }}) = 10 THEN '1' || {{ digits }} ELSE {{ digits }} END, '')
{%- endmacro %}

{#- Bare host name: no scheme, no "www.", no path, lower case. -#}
{% macro normalize_domain(expr) -%}
NULLIF({{ dialect.regexp_replace(dialect.regexp_replace('LOWER(' ~ dialect.trim_blank(expr) ~ ')', '^[a-z]+://', ''), '^www\\.|[/:?#].*$', '') }}, '')
{%- endmacro %}

{#- Dispatch on the identifier type: `normalizers` maps each type to a normaliser name
    (email, phone, domain, lower, trim, none); unknown types are trimmed. -#}
{% macro normalize_identifier(type_expr, value_expr, normalizers) -%}
CASE {{ type_expr }}
{% for type_name, kind in normalizers | dictsort %}
  WHEN {{ lit(type_name) }} THEN {{ normalizer(kind)(value_expr) }}
{% endfor %}
  ELSE {{ normalize_trim(value_expr) }}
END
{%- endmacro %}
