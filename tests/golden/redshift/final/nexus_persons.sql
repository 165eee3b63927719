WITH ids AS (
    SELECT m.entity_id,
           SUBSTRING(MAX(CASE WHEN m.identifier_type = 'email' AND m.identifier_value IS NOT NULL THEN COALESCE(TO_CHAR(m.last_seen_at, 'YYYY-MM-DD HH24:MI:SS.US'), '0000-00-00 00:00:00.000000') || m.identifier_value END), 27, 65535) AS "email",
           SUBSTRING(MAX(CASE WHEN m.identifier_type = 'phone' AND m.identifier_value IS NOT NULL THEN COALESCE(TO_CHAR(m.last_seen_at, 'YYYY-MM-DD HH24:MI:SS.US'), '0000-00-00 00:00:00.000000') || m.identifier_value END), 27, 65535) AS "phone",
           SUBSTRING(MAX(CASE WHEN m.identifier_type = 'user_id' AND m.identifier_value IS NOT NULL THEN COALESCE(TO_CHAR(m.last_seen_at, 'YYYY-MM-DD HH24:MI:SS.US'), '0000-00-00 00:00:00.000000') || m.identifier_value END), 27, 65535) AS "user_id",
           SUBSTRING(MAX(CASE WHEN m.identifier_type = 'anonymous_id' AND m.identifier_value IS NOT NULL THEN COALESCE(TO_CHAR(m.last_seen_at, 'YYYY-MM-DD HH24:MI:SS.US'), '0000-00-00 00:00:00.000000') || m.identifier_value END), 27, 65535) AS "anonymous_id",
           SUBSTRING(MAX(CASE WHEN m.identifier_type = 'crm_contact_id' AND m.identifier_value IS NOT NULL THEN COALESCE(TO_CHAR(m.last_seen_at, 'YYYY-MM-DD HH24:MI:SS.US'), '0000-00-00 00:00:00.000000') || m.identifier_value END), 27, 65535) AS "crm_contact_id",
           SUBSTRING(MAX(CASE WHEN m.identifier_type = 'billing_customer_id' AND m.identifier_value IS NOT NULL THEN COALESCE(TO_CHAR(m.last_seen_at, 'YYYY-MM-DD HH24:MI:SS.US'), '0000-00-00 00:00:00.000000') || m.identifier_value END), 27, 65535) AS "billing_customer_id",
           MIN(m.first_seen_at) AS first_seen_at,
           MAX(m.last_seen_at) AS last_seen_at,
           BOOL_AND(m.is_hub) AS is_hub,
           MAX(m.resolved_at) AS _updated_at
    FROM "nexus_resolution"."nexus_person_identity_map" AS m
    GROUP BY m.entity_id
),
srcs AS (
    SELECT m.entity_id, LISTAGG(DISTINCT i.source, ',') WITHIN GROUP (ORDER BY i.source) AS sources
    FROM "nexus_resolution"."nexus_person_identity_map" AS m
    JOIN "nexus_core"."nexus_identifiers" AS i
      ON i.entity_type = m.entity_type AND i.identifier_type = m.identifier_type AND i.identifier_value = m.identifier_value
    GROUP BY m.entity_id
),
trs AS (
    SELECT t.entity_id,
           SUBSTRING(MAX(CASE WHEN t.trait_name = 'name' AND t.trait_value IS NOT NULL THEN COALESCE(TO_CHAR(t.occurred_at, 'YYYY-MM-DD HH24:MI:SS.US'), '0000-00-00 00:00:00.000000') || t.trait_value END), 27, 65535) AS "name",
           SUBSTRING(MAX(CASE WHEN t.trait_name = 'title' AND t.trait_value IS NOT NULL THEN COALESCE(TO_CHAR(t.occurred_at, 'YYYY-MM-DD HH24:MI:SS.US'), '0000-00-00 00:00:00.000000') || t.trait_value END), 27, 65535) AS "title",
           SUBSTRING(MAX(CASE WHEN t.trait_name = 'plan' AND t.trait_value IS NOT NULL THEN COALESCE(TO_CHAR(t.occurred_at, 'YYYY-MM-DD HH24:MI:SS.US'), '0000-00-00 00:00:00.000000') || t.trait_value END), 27, 65535) AS "plan"
    FROM "nexus"."nexus_entity_traits" AS t
    WHERE t.entity_type = 'person'
    GROUP BY t.entity_id
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
