WITH ids AS (
    SELECT m.entity_id,
           ARRAY_AGG(IF(m.identifier_type = 'email', m.identifier_value, NULL) IGNORE NULLS ORDER BY m.last_seen_at DESC NULLS LAST, m.identifier_value DESC)[SAFE_OFFSET(0)] AS `email`,
           ARRAY_AGG(IF(m.identifier_type = 'phone', m.identifier_value, NULL) IGNORE NULLS ORDER BY m.last_seen_at DESC NULLS LAST, m.identifier_value DESC)[SAFE_OFFSET(0)] AS `phone`,
           ARRAY_AGG(IF(m.identifier_type = 'user_id', m.identifier_value, NULL) IGNORE NULLS ORDER BY m.last_seen_at DESC NULLS LAST, m.identifier_value DESC)[SAFE_OFFSET(0)] AS `user_id`,
           ARRAY_AGG(IF(m.identifier_type = 'anonymous_id', m.identifier_value, NULL) IGNORE NULLS ORDER BY m.last_seen_at DESC NULLS LAST, m.identifier_value DESC)[SAFE_OFFSET(0)] AS `anonymous_id`,
           ARRAY_AGG(IF(m.identifier_type = 'crm_contact_id', m.identifier_value, NULL) IGNORE NULLS ORDER BY m.last_seen_at DESC NULLS LAST, m.identifier_value DESC)[SAFE_OFFSET(0)] AS `crm_contact_id`,
           ARRAY_AGG(IF(m.identifier_type = 'billing_customer_id', m.identifier_value, NULL) IGNORE NULLS ORDER BY m.last_seen_at DESC NULLS LAST, m.identifier_value DESC)[SAFE_OFFSET(0)] AS `billing_customer_id`,
           MIN(m.first_seen_at) AS first_seen_at,
           MAX(m.last_seen_at) AS last_seen_at,
           LOGICAL_AND(m.is_hub) AS is_hub,
           MAX(m.resolved_at) AS _updated_at
    FROM `nexus_resolution`.`nexus_person_identity_map` AS m
    GROUP BY m.entity_id
),
srcs AS (
    SELECT m.entity_id, STRING_AGG(DISTINCT i.source, ',' ORDER BY i.source) AS sources
    FROM `nexus_resolution`.`nexus_person_identity_map` AS m
    JOIN `nexus_core`.`nexus_identifiers` AS i
      ON i.entity_type = m.entity_type AND i.identifier_type = m.identifier_type AND i.identifier_value = m.identifier_value
    GROUP BY m.entity_id
),
trs AS (
    SELECT t.entity_id,
           ARRAY_AGG(IF(t.trait_name = 'name', t.trait_value, NULL) IGNORE NULLS ORDER BY t.occurred_at DESC NULLS LAST, t.trait_value DESC)[SAFE_OFFSET(0)] AS `name`,
           ARRAY_AGG(IF(t.trait_name = 'title', t.trait_value, NULL) IGNORE NULLS ORDER BY t.occurred_at DESC NULLS LAST, t.trait_value DESC)[SAFE_OFFSET(0)] AS `title`,
           ARRAY_AGG(IF(t.trait_name = 'plan', t.trait_value, NULL) IGNORE NULLS ORDER BY t.occurred_at DESC NULLS LAST, t.trait_value DESC)[SAFE_OFFSET(0)] AS `plan`
    FROM `nexus`.`nexus_entity_traits` AS t
    WHERE t.entity_type = 'person'
    GROUP BY t.entity_id
)
SELECT ids.entity_id AS id,
       ids.`email`,
       ids.`phone`,
       ids.`user_id`,
       ids.`anonymous_id`,
       ids.`crm_contact_id`,
       ids.`billing_customer_id`,
       trs.`name`,
       trs.`title`,
       trs.`plan`,
       ids.first_seen_at, ids.last_seen_at, srcs.sources, ids.is_hub,
       ids._updated_at
FROM ids
LEFT JOIN srcs ON srcs.entity_id = ids.entity_id
LEFT JOIN trs ON trs.entity_id = ids.entity_id
