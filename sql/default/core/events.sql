{% from "core/_window.sql" import core_window %}
{% for input in inputs %}
{% if not loop.first %}UNION ALL
{% endif %}
SELECT id, occurred_at, event_name, event_description, event_type, source, value, value_unit,
       _ingested_at, {{ lit(loaded_at) }} AS _loaded_at
FROM {{ input.relation }}
WHERE {{ core_window(input) }}
{% endfor %}
