SELECT DISTINCT i.event_id, i.entity_type, m.entity_id, i.role
FROM `nexus_core`.`nexus_identifiers` AS i
JOIN (
SELECT entity_type, identifier_type, identifier_value, entity_id, is_hub, first_seen_at, last_seen_at FROM `nexus_resolution`.`nexus_group_identity_map`
UNION ALL
SELECT entity_type, identifier_type, identifier_value, entity_id, is_hub, first_seen_at, last_seen_at FROM `nexus_resolution`.`nexus_person_identity_map`
)
 AS m
  ON m.entity_type = i.entity_type
 AND m.identifier_type = i.identifier_type
 AND m.identifier_value = i.identifier_value
WHERE i.event_id IS NOT NULL
