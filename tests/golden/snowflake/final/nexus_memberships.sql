SELECT DISTINCT p.entity_id AS person_id, g.entity_id AS group_id, ms.role, ms.occurred_at, ms.source
FROM "NEXUS_CORE"."NEXUS_MEMBERSHIPS" AS ms
JOIN "NEXUS_RESOLUTION"."NEXUS_PERSON_IDENTITY_MAP" AS p
  ON p.identifier_type = ms.person_identifier_type AND p.identifier_value = ms.person_identifier_value
JOIN "NEXUS_RESOLUTION"."NEXUS_GROUP_IDENTITY_MAP" AS g
  ON g.identifier_type = ms.group_identifier_type AND g.identifier_value = ms.group_identifier_value
