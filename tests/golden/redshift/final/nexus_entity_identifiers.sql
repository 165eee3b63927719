SELECT m.entity_type, m.entity_id, m.identifier_type, m.identifier_value, m.first_seen_at, m.last_seen_at, m.is_hub
FROM "nexus_resolution"."nexus_group_identity_map" AS m
UNION ALL
SELECT m.entity_type, m.entity_id, m.identifier_type, m.identifier_value, m.first_seen_at, m.last_seen_at, m.is_hub
FROM "nexus_resolution"."nexus_person_identity_map" AS m
