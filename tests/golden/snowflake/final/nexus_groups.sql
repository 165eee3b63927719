WITH ids AS (
    SELECT m.entity_id,
           (ARRAY_AGG(CASE WHEN m.identifier_type = 'domain' THEN m.identifier_value END) WITHIN GROUP (ORDER BY m.last_seen_at DESC NULLS LAST, m.identifier_value DESC))[0]::VARCHAR AS "DOMAIN",
           (ARRAY_AGG(CASE WHEN m.identifier_type = 'crm_company_id' THEN m.identifier_value END) WITHIN GROUP (ORDER BY m.last_seen_at DESC NULLS LAST, m.identifier_value DESC))[0]::VARCHAR AS "CRM_COMPANY_ID",
           MIN(m.first_seen_at) AS first_seen_at,
           MAX(m.last_seen_at) AS last_seen_at,
           BOOLAND_AGG(m.is_hub) AS is_hub,
           MAX(m.resolved_at) AS _updated_at
    FROM "NEXUS_RESOLUTION"."NEXUS_GROUP_IDENTITY_MAP" AS m
    GROUP BY m.entity_id
),
srcs AS (
    SELECT m.entity_id, LISTAGG(DISTINCT i.source, ',') WITHIN GROUP (ORDER BY i.source) AS sources
    FROM "NEXUS_RESOLUTION"."NEXUS_GROUP_IDENTITY_MAP" AS m
    JOIN "NEXUS_CORE"."NEXUS_IDENTIFIERS" AS i
      ON i.entity_type = m.entity_type AND i.identifier_type = m.identifier_type AND i.identifier_value = m.identifier_value
    GROUP BY m.entity_id
),
trs AS (
    SELECT t.entity_id,
           (ARRAY_AGG(CASE WHEN t.trait_name = 'name' THEN t.trait_value END) WITHIN GROUP (ORDER BY t.occurred_at DESC NULLS LAST, t.trait_value DESC))[0]::VARCHAR AS "NAME",
           (ARRAY_AGG(CASE WHEN t.trait_name = 'industry' THEN t.trait_value END) WITHIN GROUP (ORDER BY t.occurred_at DESC NULLS LAST, t.trait_value DESC))[0]::VARCHAR AS "INDUSTRY",
           (ARRAY_AGG(CASE WHEN t.trait_name = 'size' THEN t.trait_value END) WITHIN GROUP (ORDER BY t.occurred_at DESC NULLS LAST, t.trait_value DESC))[0]::VARCHAR AS "SIZE"
    FROM "NEXUS"."NEXUS_ENTITY_TRAITS" AS t
    WHERE t.entity_type = 'group'
    GROUP BY t.entity_id
)
SELECT ids.entity_id AS id,
       ids."DOMAIN",
       ids."CRM_COMPANY_ID",
       trs."NAME",
       trs."INDUSTRY",
       trs."SIZE",
       ids.first_seen_at, ids.last_seen_at, srcs.sources, ids.is_hub,
       ids._updated_at
FROM ids
LEFT JOIN srcs ON srcs.entity_id = ids.entity_id
LEFT JOIN trs ON trs.entity_id = ids.entity_id
