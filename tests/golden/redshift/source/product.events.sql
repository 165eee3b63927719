SELECT
    md5((COALESCE(CAST('product' AS VARCHAR(MAX)), '') || '|' || COALESCE(CAST(e.event_id AS VARCHAR(MAX)), ''))) AS id,
    CAST(CAST(e.timestamp AS TIMESTAMPTZ) AS TIMESTAMP) AS occurred_at,
    e.event AS event_name,
    CASE
        WHEN e.feature IS NOT NULL AND TRIM(e.feature) <> '' THEN e.event || ': ' || e.feature
        ELSE e.event
    END AS event_description,
    'product' AS event_type,
    'product' AS source,
    CAST(NULL AS DOUBLE PRECISION) AS value,
    CAST(NULL AS VARCHAR(MAX)) AS value_unit,
    e._ingested_at
FROM (SELECT * FROM "nexus_raw"."product__events" WHERE "_ingested_at" <= CAST('2024-01-01 00:00:00' AS TIMESTAMP)) AS e
WHERE e.event_id IS NOT NULL AND TRIM(e.event_id) <> ''
