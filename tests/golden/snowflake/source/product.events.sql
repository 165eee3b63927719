SELECT
    md5((COALESCE(CAST('product' AS VARCHAR), '') || '|' || COALESCE(CAST(e.event_id AS VARCHAR), ''))) AS id,
    CAST(CONVERT_TIMEZONE('UTC', CAST(e.timestamp AS TIMESTAMP_TZ)) AS TIMESTAMP_NTZ) AS occurred_at,
    e.event AS event_name,
    CASE
        WHEN e.feature IS NOT NULL AND TRIM(e.feature) <> '' THEN e.event || ': ' || e.feature
        ELSE e.event
    END AS event_description,
    'product' AS event_type,
    'product' AS source,
    CAST(NULL AS DOUBLE) AS value,
    CAST(NULL AS VARCHAR) AS value_unit,
    e._ingested_at
FROM (SELECT * FROM "NEXUS_RAW"."PRODUCT__EVENTS" WHERE "_INGESTED_AT" <= CAST('2024-01-01 00:00:00' AS TIMESTAMP_NTZ)) AS e
WHERE e.event_id IS NOT NULL AND TRIM(e.event_id) <> ''
