SELECT
    md5((COALESCE(CAST(md5((COALESCE(CAST('product' AS VARCHAR(MAX)), '') || '|' || COALESCE(CAST(e.event_id AS VARCHAR(MAX)), ''))) AS VARCHAR(MAX)), '') || '|' || COALESCE(CAST('person' AS VARCHAR(MAX)), '') || '|' || COALESCE(CAST('plan' AS VARCHAR(MAX)), '') || '|' || COALESCE(CAST(e.plan AS VARCHAR(MAX)), ''))) AS id,
    md5((COALESCE(CAST('product' AS VARCHAR(MAX)), '') || '|' || COALESCE(CAST(e.event_id AS VARCHAR(MAX)), ''))) AS event_id,
    CASE
        WHEN e.user_id IS NOT NULL AND TRIM(e.user_id) <> ''
            THEN 'product_user:' || e.user_id || '|' || COALESCE(e.anonymous_id, '')
        ELSE 'product_anon:' || e.anonymous_id
    END AS edge_id,
    'person' AS entity_type,
    'plan' AS trait_name,
    e.plan AS trait_value,
    'product' AS source,
    CAST(CAST(e.timestamp AS TIMESTAMPTZ) AS TIMESTAMP) AS occurred_at,
    e._ingested_at
FROM (SELECT * FROM "nexus_raw"."product__events" WHERE "_ingested_at" <= CAST('2024-01-01 00:00:00' AS TIMESTAMP)) AS e
WHERE e.event_id IS NOT NULL AND TRIM(e.event_id) <> ''
  AND e.plan IS NOT NULL AND TRIM(e.plan) <> ''
