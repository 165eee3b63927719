WITH ids AS (
    SELECT m.entity_id,
           ARRAY_AGG(IF(m.identifier_type = 'domain', m.identifier_value, NULL) IGNORE NULLS ORDER BY m.last_seen_at DESC NULLS LAST, m.identifier_value DESC)[SAFE_OFFSET(0)] AS `domain`,
           ARRAY_AGG(IF(m.identifier_type = 'crm_company_id', m.identifier_value, NULL) IGNORE NULLS ORDER BY m.last_seen_at DESC NULLS LAST, m.identifier_value DESC)[SAFE_OFFSET(0)] AS `crm_company_id`,
           MIN(m.first_seen_at) AS first_seen_at,
           MAX(m.last_seen_at) AS last_seen_at,
           LOGICAL_AND(m.is_hub) AS is_hub,
           MAX(m.resolved_at) AS _updated_at
    FROM `nexus_resolution`.`nexus_group_identity_map` AS m
    GROUP BY m.entity_id
),
srcs AS (
    SELECT m.entity_id, STRING_AGG(DISTINCT i.source, ',' ORDER BY i.source) AS sources
    FROM `nexus_resolution`.`nexus_group_identity_map` AS m
    JOIN `nexus_core`.`nexus_identifiers` AS i
      ON i.entity_type = m.entity_type AND i.identifier_type = m.identifier_type AND i.identifier_value = m.identifier_value
    GROUP BY m.entity_id
),
trs AS (
    SELECT t.entity_id,
           ARRAY_AGG(IF(t.trait_name = 'name', t.trait_value, NULL) IGNORE NULLS ORDER BY t.occurred_at DESC NULLS LAST, t.trait_value DESC)[SAFE_OFFSET(0)] AS `name`,
           ARRAY_AGG(IF(t.trait_name = 'industry', t.trait_value, NULL) IGNORE NULLS ORDER BY t.occurred_at DESC NULLS LAST, t.trait_value DESC)[SAFE_OFFSET(0)] AS `industry`,
           ARRAY_AGG(IF(t.trait_name = 'size', t.trait_value, NULL) IGNORE NULLS ORDER BY t.occurred_at DESC NULLS LAST, t.trait_value DESC)[SAFE_OFFSET(0)] AS `size`
    FROM `nexus`.`nexus_entity_traits` AS t
    WHERE t.entity_type = 'group'
    GROUP BY t.entity_id
)
SELECT ids.entity_id AS id,
       ids.`domain`,
       ids.`crm_company_id`,
       trs.`name`,
       trs.`industry`,
       trs.`size`,
       ids.first_seen_at, ids.last_seen_at, srcs.sources, ids.is_hub,
       ids._updated_at
FROM ids
LEFT JOIN srcs ON srcs.entity_id = ids.entity_id
LEFT JOIN trs ON trs.entity_id = ids.entity_id
