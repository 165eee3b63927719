{% from "core/_window.sql" import core_window %}
{% for input in inputs %}
{% if not loop.first %}UNION ALL
{% endif %}
SELECT id, event_id, edge_id, entity_type, identifier_type,
       {{ normalize_identifier('identifier_type', 'identifier_value', normalizers) }} AS identifier_value,
       identifier_value AS identifier_value_raw,
       COALESCE(role, 'participant') AS role, source, occurred_at,
       _ingested_at, {{ lit(loaded_at) }} AS _loaded_at
FROM {{ input.relation }}
WHERE {{ core_window(input) }}
{% endfor %}
