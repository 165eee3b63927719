{#- `changed` (incremental runs): only the identifiers listed there. -#}
{% for entity_type, map in maps | dictsort %}
{% if not loop.first %}UNION ALL
{% endif %}
SELECT m.entity_type, m.entity_id, m.identifier_type, m.identifier_value, m.first_seen_at, m.last_seen_at, m.is_hub
FROM {{ map }} AS m
{% if changed is defined and changed %}
JOIN {{ changed.identifiers }} AS c
  ON c.entity_type = m.entity_type AND c.identifier_type = m.identifier_type AND c.identifier_value = m.identifier_value
{% endif %}
{% endfor %}
