SELECT
    md5((COALESCE(CAST(md5((COALESCE(CAST('product' AS VARCHAR), '') || '|' || COALESCE(CAST(e.event_id AS VARCHAR), ''))) AS VARCHAR), '') || '|' || COALESCE(CAST('person' AS VARCHAR), '') || '|' || COALESCE(CAST('plan' AS VARCHAR), '') || '|' || COALESCE(CAST(e.plan AS VARCHAR), ''))) AS id,
    md5((COALESCE(CAST('product' AS VARCHAR), '') || '|' || COALESCE(CAST(e.event_id AS VARCHAR), ''))) AS event_id,
    CASE
        WHEN e.user_id IS NOT NULL AND TRIM(e.user_id) <> ''
            THEN 'product_user:' || e.user_id || '|' || COALESCE(e.anonymous_id, '')
        ELSE 'product_anon:' || e.anonymous_id
    END AS edge_id,
    'person' AS entity_type,
    'plan' AS trait_name,
    e.plan AS trait_value,
    'product' AS source,
    CAST(CONVERT_TIMEZONE('UTC', CAST(e.timestamp AS TIMESTAMP_TZ)) AS TIMESTAMP_NTZ) AS occurred_at,
    e._ingested_at
FROM (SELECT * FROM "NEXUS_RAW"."PRODUCT__EVENTS" WHERE "_INGESTED_AT" <= CAST('2024-01-01 00:00:00' AS TIMESTAMP_NTZ)) AS e
WHERE e.event_id IS NOT NULL AND TRIM(e.event_id) <> ''
  AND e.plan IS NOT NULL AND TRIM(e.plan) <> ''
