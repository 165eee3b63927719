{#- `changed` (incremental runs): only the events whose ids are listed there. -#}
SELECT e.id, e.occurred_at, e.event_name, e.event_description, e.event_type, e.source, e.value, e.value_unit, e._ingested_at
FROM {{ core.events }} AS e
{% if changed is defined and changed %}
JOIN {{ changed.events }} AS c ON c.id = e.id
{% endif %}
