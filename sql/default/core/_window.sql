{#- Rows of one source's table that arrived after the core layer last read it. -#}
{% macro core_window(input) -%}
{% if input.low is not none %}{{ q('_ingested_at') }} > {{ lit(input.low) }} AND {% endif %}{{ q('_ingested_at') }} <= {{ lit(input.high) }}
{%- endmacro %}
