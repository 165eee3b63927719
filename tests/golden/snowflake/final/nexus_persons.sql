WITH ids AS (
    SELECT m.entity_id,
           (ARRAY_AGG(CASE WHEN m.identifier_type = 'email' THEN m.identifier_value END) WITHIN GROUP (ORDER BY m.last_seen_at DESC NULLS LAST, m.identifier_value DESC))[0]::VARCHAR AS "EMAIL",
           (ARRAY_AGG(CASE WHEN m.identifier_type = 'phone' THEN m.identifier_value END) WITHIN GROUP (ORDER BY m.last_seen_at DESC NULLS LAST, m.identifier_value DESC))[0]::VARCHAR AS "PHONE",
           (ARRAY_AGG(CASE WHEN m.identifier_type = 'user_id' THEN m.identifier_value END) WITHIN GROUP (ORDER BY m.last_seen_at DESC NULLS LAST, m.identifier_value DESC))[0]::VARCHAR AS "USER_ID",
           (ARRAY_AGG(CASE WHEN m.identifier_type = 'anonymous_id' THEN m.identifier_value END) WITHIN GROUP (ORDER BY m.last_seen_at DESC NULLS LAST, m.identifier_value DESC))[0]::VARCHAR AS "ANONYMOUS_ID",
           (ARRAY_AGG(CASE WHEN m.identifier_type = 'crm_contact_id' THEN m.identifier_value END) WITHIN GROUP (ORDER BY m.last_seen_at DESC NULLS LAST, m.identifier_value DESC))[0]::VARCHAR AS "CRM_CONTACT_ID",
           (ARRAY_AGG(CASE WHEN m.identifier_type = 'billing_customer_id' THEN m.identifier_value END) WITHIN GROUP (ORDER BY m.last_seen_at DESC NULLS LAST, m.identifier_value DESC))[0]::VARCHAR AS "BILLING_CUSTOMER_ID",
           MIN(m.first_seen_at) AS first_seen_at,
           MAX(m.last_seen_at) AS last_seen_at,
           BOOLAND_AGG(m.is_hub) AS is_hub,
           MAX(m.resolved_at) AS _updated_at
    FROM "NEXUS_RESOLUTION"."NEXUS_PERSON_IDENTITY_MAP" AS m
    GROUP BY m.entity_id
),
srcs AS (
    SELECT m.entity_id, LISTAGG(DISTINCT i.source, ',') WITHIN GROUP (ORDER BY i.source) AS sources
    FROM "NEXUS_RESOLUTION"."NEXUS_PERSON_IDENTITY_MAP" AS m
    JOIN "NEXUS_CORE"."NEXUS_IDENTIFIERS" AS i
      ON i.entity_type = m.entity_type AND i.identifier_type = m.identifier_type AND i.identifier_value = m.identifier_value
    GROUP BY m.entity_id
),
trs AS (
    SELECT t.entity_id,
           (ARRAY_AGG(CASE WHEN t.trait_name = 'name' THEN t.trait_value END) WITHIN GROUP (ORDER BY t.occurred_at DESC NULLS LAST, t.trait_value DESC))[0]::VARCHAR AS "NAME",
           (ARRAY_AGG(CASE WHEN t.trait_name = 'title' THEN t.trait_value END) WITHIN GROUP (ORDER BY t.occurred_at DESC NULLS LAST, t.trait_value DESC))[0]::VARCHAR AS "TITLE",
           (ARRAY_AGG(CASE WHEN t.trait_name = 'plan' THEN t.trait_value END) WITHIN GROUP (ORDER BY t.occurred_at DESC NULLS LAST, t.trait_value DESC))[0]::VARCHAR AS "PLAN"
    FROM "NEXUS"."NEXUS_ENTITY_TRAITS" AS t
    WHERE t.entity_type = 'person'
    GROUP BY t.entity_id
)
SELECT ids.entity_id AS id,
       ids."EMAIL",
       ids."PHONE",
       ids."USER_ID",
       ids."ANONYMOUS_ID",
       ids."CRM_CONTACT_ID",
       ids."BILLING_CUSTOMER_ID",
       trs."NAME",
       trs."TITLE",
       trs."PLAN",
       ids.first_seen_at, ids.last_seen_at, srcs.sources, ids.is_hub,
       ids._updated_at
FROM ids
LEFT JOIN srcs ON srcs.entity_id = ids.entity_id
LEFT JOIN trs ON trs.entity_id = ids.entity_id
