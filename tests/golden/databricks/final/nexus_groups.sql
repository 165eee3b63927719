WITH ids AS (
    SELECT entity_id,
           max_by(identifier_value, struct(last_seen_at, identifier_value)) FILTER (WHERE identifier_type = 'domain' AND identifier_value IS NOT NULL) AS `domain`,
           max_by(identifier_value, struct(last_seen_at, identifier_value)) FILTER (WHERE identifier_type = 'crm_company_id' AND identifier_value IS NOT NULL) AS `crm_company_id`,
           MIN(first_seen_at) AS first_seen_at,
           MAX(last_seen_at) AS last_seen_at,
           bool_and(is_hub) AS is_hub,
           MAX(resolved_at) AS _updated_at
    FROM `nexus_resolution`.`nexus_group_identity_map`
    GROUP BY entity_id
),
srcs AS (
    SELECT m.entity_id, array_join(array_sort(collect_set(i.source)), ',') AS sources
    FROM `nexus_resolution`.`nexus_group_identity_map` AS m
    JOIN `nexus_core`.`nexus_identifiers` AS i
      ON i.entity_type = m.entity_type AND i.identifier_type = m.identifier_type AND i.identifier_value = m.identifier_value
    GROUP BY m.entity_id
),
trs AS (
    SELECT entity_id,
           max_by(trait_value, struct(occurred_at, trait_value)) FILTER (WHERE trait_name = 'name' AND trait_value IS NOT NULL) AS `name`,
           max_by(trait_value, struct(occurred_at, trait_value)) FILTER (WHERE trait_name = 'industry' AND trait_value IS NOT NULL) AS `industry`,
           max_by(trait_value, struct(occurred_at, trait_value)) FILTER (WHERE trait_name = 'size' AND trait_value IS NOT NULL) AS `size`
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
