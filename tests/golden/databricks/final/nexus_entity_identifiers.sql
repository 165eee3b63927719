SELECT entity_type, entity_id, identifier_type, identifier_value, first_seen_at, last_seen_at, is_hub
FROM `nexus_resolution`.`nexus_group_identity_map`
UNION ALL
SELECT entity_type, entity_id, identifier_type, identifier_value, first_seen_at, last_seen_at, is_hub
FROM `nexus_resolution`.`nexus_person_identity_map`
