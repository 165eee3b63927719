{% from "core/_window.sql" import core_window %}
{% for input in inputs %}
{% if not loop.first %}UNION ALL
{% endif %}
SELECT id, event_id, edge_id, entity_type, trait_name, trait_value, source, occurred_at,
       _ingested_at, {{ lit(loaded_at) }} AS _loaded_at
FROM {{ input.relation }}
WHERE {{ core_window(input) }}
{% endfor %}
