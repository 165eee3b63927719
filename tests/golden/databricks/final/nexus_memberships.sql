SELECT DISTINCT p.entity_id AS person_id, g.entity_id AS group_id, ms.role, ms.occurred_at, ms.source
FROM `nexus_core`.`nexus_memberships` AS ms
JOIN `nexus_resolution`.`nexus_person_identity_map` AS p
  ON p.identifier_type = ms.person_identifier_type AND p.identifier_value = ms.person_identifier_value
JOIN `nexus_resolution`.`nexus_group_identity_map` AS g
  ON g.identifier_type = ms.group_identifier_type AND g.identifier_value = ms.group_identifier_value
