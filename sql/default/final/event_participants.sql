SELECT DISTINCT i.event_id, i.entity_type, m.entity_id, i.role
FROM {{ core.identifiers }} AS i
JOIN {{ all_maps }} AS m
  ON m.entity_type = i.entity_type
 AND m.identifier_type = i.identifier_type
 AND m.identifier_value = i.identifier_value
WHERE i.event_id IS NOT NULL
