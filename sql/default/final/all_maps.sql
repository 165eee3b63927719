(
{% for entity_type, map in maps | dictsort %}
{% if not loop.first %}UNION ALL
{% endif %}
SELECT entity_type, identifier_type, identifier_value, entity_id, is_hub, first_seen_at, last_seen_at FROM {{ map }}
{% endfor %}
)
