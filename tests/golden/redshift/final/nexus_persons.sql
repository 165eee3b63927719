WITH ids AS (
    SELECT entity_id,
           SUBSTRING(MAX(CASE WHEN identifier_type = 'email' AND identifier_value IS NOT NULL THEN COALESCE(TO_CHAR(last_seen_at, 'YYYY-MM-DD HH24:MI:SS.US'), '0000-00-00 00:00:00.000000') || identifier_value END), 27, 65535) AS "email",
           SUBSTRING(MAX(CASE WHEN identifier_type = 'phone' AND identifier_value IS NOT NULL THEN COALESCE(TO_CHAR(last_seen_at, 'YYYY-MM-DD HH24:MI:SS.US'), '0000-00-00 00:00:00.000000') || identifier_value END), 27, 65535) AS "phone",
           SUBSTRING(MAX(CASE WHEN identifier_type = 'user_id' AND identifier_value IS NOT NULL THEN COALESCE(TO_CHAR(last_seen_at, 'YYYY-MM-DD HH24:MI:SS.US'), '0000-00-00 00:00:00.000000') || identifier_value END), 27, 65535) AS "user_id",
           SUBSTRING(MAX(CASE WHEN identifier_type = 'anonymous_id' AND identifier_value IS NOT NULL THEN COALESCE(TO_CHAR(last_seen_at, 'YYYY-MM-DD HH24:MI:SS.US'), '0000-00-00 00:00:00.000000') || identifier_value END), 27, 65535) AS "anonymous_id",
           SUBSTRING(MAX(CASE WHEN identifier_type = 'crm_contact_id' AND identifier_value IS NOT NULL THEN COALESCE(TO_CHAR(last_seen_at, 'YYYY-MM-DD HH24:MI:SS.US'), '0000-00-00 00:00:00.000000') || identifier_value END), 27, 65535) AS "crm_contact_id",
           SUBSTRING(MAX(CASE WHEN identifier_type = 'billing_customer_id' AND identifier_value IS NOT NULL THEN COALESCE(TO_CHAR(last_seen_at, 'YYYY-MM-DD HH24:MI:SS.US'), '0000-00-00 00:00:00.000000') || identifier_value END), 27, 65535) AS "billing_customer_id",
           MIN(first_seen_at) AS first_seen_at,
           MAX(last_seen_at) AS last_seen_at,
           BOOL_AND(is_hub) AS is_hub,
           MAX(resolved_at) AS _updated_at
    FROM "nexus_resolution"."nexus_person_identity_map"
    GROUP BY entity_id
),
srcs AS (
    SELECT m.entity_id, LISTAGG(DISTINCT i.source, ',') WITHIN GROUP (ORDER BY i.source) AS sources
    FROM "nexus_resolution"."nexus_person_identity_map" AS m
    JOIN "nexus_core"."nexus_identifiers" AS i
      ON i.entity_type = m.entity_type AND i.identifier_type = m.identifier_type AND i.identifier_value = m.identifier_value
    GROUP BY m.entity_id
),
trs AS (
    SELECT entity_id,
           SUBSTRING(MAX(CASE WHEN trait_name = 'name' AND trait_value IS NOT NULL THEN COALESCE(TO_CHAR(occurred_at, 'YYYY-MM-DD HH24:MI:SS.US'), '0000-00-00 00:00:00.000000') || trait_value END), 27, 65535) AS "name",
           SUBSTRING(MAX(CASE WHEN trait_name = 'title' AND trait_value IS NOT NULL THEN COALESCE(TO_CHAR(occurred_at, 'YYYY-MM-DD HH24:MI:SS.US'), '0000-00-00 00:00:00.000000') || trait_value END), 27, 65535) AS "title",
           SUBSTRING(MAX(CASE WHEN trait_name = 'plan' AND trait_value IS NOT NULL THEN COALESCE(TO_CHAR(occurred_at, 'YYYY-MM-DD HH24:MI:SS.US'), '0000-00-00 00:00:00.000000') || trait_value END), 27, 65535) AS "plan"
    FROM "nexus"."nexus_entity_traits"
    WHERE entity_type = 'person'
    GROUP BY entity_id
)
SELECT ids.entity_id AS id,
       ids."email",
       ids."phone",
       ids."user_id",
       ids."anonymous_id",
       ids."crm_contact_id",
       ids."billing_customer_id",
       trs."name",
       trs."title",
       trs."plan",
       ids.first_seen_at, ids.last_seen_at, srcs.sources, ids.is_hub,
       ids._updated_at
FROM ids
LEFT JOIN srcs ON srcs.entity_id = ids.entity_id
LEFT JOIN trs ON trs.entity_id = ids.entity_id
