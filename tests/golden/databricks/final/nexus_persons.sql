WITH ids AS (
    SELECT entity_id,
           max_by(identifier_value, struct(last_seen_at, identifier_value)) FILTER (WHERE identifier_type = 'email' AND identifier_value IS NOT NULL) AS `email`,
           max_by(identifier_value, struct(last_seen_at, identifier_value)) FILTER (WHERE identifier_type = 'phone' AND identifier_value IS NOT NULL) AS `phone`,
           max_by(identifier_value, struct(last_seen_at, identifier_value)) FILTER (WHERE identifier_type = 'user_id' AND identifier_value IS NOT NULL) AS `user_id`,
           max_by(identifier_value, struct(last_seen_at, identifier_value)) FILTER (WHERE identifier_type = 'anonymous_id' AND identifier_value IS NOT NULL) AS `anonymous_id`,
           max_by(identifier_value, struct(last_seen_at, identifier_value)) FILTER (WHERE identifier_type = 'crm_contact_id' AND identifier_value IS NOT NULL) AS `crm_contact_id`,
           max_by(identifier_value, struct(last_seen_at, identifier_value)) FILTER (WHERE identifier_type = 'billing_customer_id' AND identifier_value IS NOT NULL) AS `billing_customer_id`,
           MIN(first_seen_at) AS first_seen_at,
           MAX(last_seen_at) AS last_seen_at,
           bool_and(is_hub) AS is_hub,
           MAX(resolved_at) AS _updated_at
    FROM `nexus_resolution`.`nexus_person_identity_map`
    GROUP BY entity_id
),
srcs AS (
    SELECT m.entity_id, array_join(array_sort(collect_set(i.source)), ',') AS sources
    FROM `nexus_resolution`.`nexus_person_identity_map` AS m
    JOIN `nexus_core`.`nexus_identifiers` AS i
      ON i.entity_type = m.entity_type AND i.identifier_type = m.identifier_type AND i.identifier_value = m.identifier_value
    GROUP BY m.entity_id
),
trs AS (
    SELECT entity_id,
           max_by(trait_value, struct(occurred_at, trait_value)) FILTER (WHERE trait_name = 'name' AND trait_value IS NOT NULL) AS `name`,
           max_by(trait_value, struct(occurred_at, trait_value)) FILTER (WHERE trait_name = 'title' AND trait_value IS NOT NULL) AS `title`,
           max_by(trait_value, struct(occurred_at, trait_value)) FILTER (WHERE trait_name = 'plan' AND trait_value IS NOT NULL) AS `plan`
    FROM `nexus`.`nexus_entity_traits`
    WHERE entity_type = 'person'
    GROUP BY entity_id
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
