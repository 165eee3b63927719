{% from "core/_window.sql" import core_window %}
{% for input in inputs %}
{% if not loop.first %}UNION ALL
{% endif %}
SELECT id, event_id,
       person_identifier_type,
       {{ normalize_identifier('person_identifier_type', 'person_identifier_value', normalizers) }} AS person_identifier_value,
       group_identifier_type,
       {{ normalize_identifier('group_identifier_type', 'group_identifier_value', normalizers) }} AS group_identifier_value,
       COALESCE(role, 'member') AS role, source, occurred_at,
       _ingested_at, {{ lit(loaded_at) }} AS _loaded_at
FROM {{ input.relation }}
WHERE {{ core_window(input) }}
{% endfor %}
