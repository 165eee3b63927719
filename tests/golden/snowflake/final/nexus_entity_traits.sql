SELECT t.entity_type, e.entity_id, t.trait_name, t.trait_value, t.source, t.occurred_at, t.id AS trait_id
FROM "NEXUS_CORE"."NEXUS_TRAITS" AS t
JOIN "NEXUS"."NEXUS__EDGE_ENTITIES" AS e
  ON e.source = t.source AND e.edge_id = t.edge_id AND e.entity_type = t.entity_type
