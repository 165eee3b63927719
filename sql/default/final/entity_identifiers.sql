{% for entity_type, map in maps | dictsort %}
{% if not loop.first %}UNION ALL
{% endif %}
SELECT entity_type, entity_id, identifier_type, identifier_value, first_seen_at, last_seen_at, is_hub
FROM {{ map }}
{% endfor %}
