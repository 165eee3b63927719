WITH ids AS (
    SELECT m.entity_id,
           (array_agg(m.identifier_value ORDER BY m.last_seen_at DESC NULLS LAST, m.identifier_value COLLATE "C" DESC) FILTER (WHERE m.identifier_type = 'domain' AND m.identifier_value IS NOT NULL))[1] AS "domain",
           (array_agg(m.identifier_value ORDER BY m.last_seen_at DESC NULLS LAST, m.identifier_value COLLATE "C" DESC) FILTER (WHERE m.identifier_type = 'crm_company_id' AND m.identifier_value IS NOT NULL))[1] AS "crm_company_id",
           MIN(m.first_seen_at) AS first_seen_at,
           MAX(m.last_seen_at) AS last_seen_at,
           bool_and(m.is_hub) AS is_hub,
           MAX(m.resolved_at) AS _updated_at
    FROM "nexus_resolution"."nexus_group_identity_map" AS m
    GROUP BY m.entity_id
),
srcs AS (
    SELECT m.entity_id, string_agg(DISTINCT i.source COLLATE "C", ',' ORDER BY i.source COLLATE "C") AS sources
    FROM "nexus_resolution"."nexus_group_identity_map" AS m
    JOIN "nexus_core"."nexus_identifiers" AS i
      ON i.entity_type = m.entity_type AND i.identifier_type = m.identifier_type AND i.identifier_value = m.identifier_value
    GROUP BY m.entity_id
),
trs AS (
    SELECT t.entity_id,
           (array_agg(t.trait_value ORDER BY t.occurred_at DESC NULLS LAST, t.trait_value COLLATE "C" DESC) FILTER (WHERE t.trait_name = 'name' AND t.trait_value IS NOT NULL))[1] AS "name",
           (array_agg(t.trait_value ORDER BY t.occurred_at DESC NULLS LAST, t.trait_value COLLATE "C" DESC) FILTER (WHERE t.trait_name = 'industry' AND t.trait_value IS NOT NULL))[1] AS "industry",
           (array_agg(t.trait_value ORDER BY t.occurred_at DESC NULLS LAST, t.trait_value COLLATE "C" DESC) FILTER (WHERE t.trait_name = 'size' AND t.trait_value IS NOT NULL))[1] AS "size"
    FROM "nexus"."nexus_entity_traits" AS t
    WHERE t.entity_type = 'group'
    GROUP BY t.entity_id
)
SELECT ids.entity_id AS id,
       ids."domain",
       ids."crm_company_id",
       trs."name",
       trs."industry",
       trs."size",
       ids.first_seen_at, ids.last_seen_at, srcs.sources, ids.is_hub,
       ids._updated_at
FROM ids
LEFT JOIN srcs ON srcs.entity_id = ids.entity_id
LEFT JOIN trs ON trs.entity_id = ids.entity_id
