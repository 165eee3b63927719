SELECT i.source, i.edge_id, i.entity_type,
       COALESCE(MIN(CASE WHEN NOT m.is_hub THEN m.entity_id END), MIN(m.entity_id)) AS entity_id
FROM "NEXUS_CORE"."NEXUS_IDENTIFIERS" AS i
JOIN (
SELECT entity_type, identifier_type, identifier_value, entity_id, is_hub, first_seen_at, last_seen_at FROM "NEXUS_RESOLUTION"."NEXUS_GROUP_IDENTITY_MAP"
UNION ALL
SELECT entity_type, identifier_type, identifier_value, entity_id, is_hub, first_seen_at, last_seen_at FROM "NEXUS_RESOLUTION"."NEXUS_PERSON_IDENTITY_MAP"
)
 AS m
  ON m.entity_type = i.entity_type
 AND m.identifier_type = i.identifier_type
 AND m.identifier_value = i.identifier_value
WHERE i.edge_id IS NOT NULL
GROUP BY i.source, i.edge_id, i.entity_type
