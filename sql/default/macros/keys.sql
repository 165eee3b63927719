{#- A deterministic text key from a list of SQL expressions: the same digest on every dialect. -#}
{% macro surrogate_key(exprs) -%}
{{ dialect.hash_hex(dialect.key_text(exprs)) }}
{%- endmacro %}
