SELECT m.entity_type, m.entity_id, m.identifier_type, m.identifier_value, m.first_seen_at, m.last_seen_at, m.is_hub
FROM "NEXUS_RESOLUTION"."NEXUS_GROUP_IDENTITY_MAP" AS m
UNION ALL
SELECT m.entity_type, m.entity_id, m.identifier_type, m.identifier_value, m.first_seen_at, m.last_seen_at, m.is_hub
FROM "NEXUS_RESOLUTION"."NEXUS_PERSON_IDENTITY_MAP" AS m
