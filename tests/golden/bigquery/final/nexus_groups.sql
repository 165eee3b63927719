WITH ids AS (
    SELECT entity_id,
           ARRAY_AGG(IF(identifier_type = 'domain', identifier_value, NULL) IGNORE NULLS ORDER BY last_seen_at DESC, identifier_value DESC)[SAFE_OFFSET(0)] AS `domain`,
           ARRAY_AGG(IF(identifier_type = 'crm_company_id', identifier_value, NULL) IGNORE NULLS ORDER BY last_seen_at DESC, identifier_value DESC)[SAFE_OFFSET(0)] AS `crm_company_id`,
           MIN(first_seen_at) AS first_seen_at,
           MAX(last_seen_at) AS last_seen_at,
           LOGICAL_AND(is_hub) AS is_hub,
           MAX(resolved_at) AS _updated_at
    FROM `nexus_resolution`.`nexus_group_identity_map`
    GROUP BY entity_id
),
srcs AS (
    SELECT m.entity_id, STRING_AGG(DISTINCT i.source, ',' ORDER BY i.source) AS sources
    FROM `nexus_resolution`.`nexus_group_identity_map` AS m
    JOIN `nexus_core`.`nexus_identifiers` AS i
      ON i.entity_type = m.entity_type AND i.identifier_type = m.identifier_type AND i.identifier_value = m.identifier_value
    GROUP BY m.entity_id
),
trs AS (
    SELECT entity_id,
           ARRAY_AGG(IF(trait_name = 'name', trait_value, NULL) IGNORE NULLS ORDER BY occurred_at DESC, trait_value DESC)[SAFE_OFFSET(0)] AS `name`,
           ARRAY_AGG(IF(trait_name = 'industry', trait_value, NULL) IGNORE NULLS ORDER BY occurred_at DESC, trait_value DESC)[SAFE_OFFSET(0)] AS `industry`,
           ARRAY_AGG(IF(trait_name = 'size', trait_value, NULL) IGNORE NULLS ORDER BY occurred_at DESC, trait_value DESC)[SAFE_OFFSET(0)] AS `size`
    FROM `nexus`.`nexus_entity_traits`
    WHERE entity_type = 'group'
    GROUP BY entity_id
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
