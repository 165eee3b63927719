SELECT
    md5((COALESCE(CAST('product' AS VARCHAR), '') || '|' || COALESCE(CAST(e.event_id AS VARCHAR), ''))) AS id,
    CAST(CAST(e.timestamp AS TIMESTAMPTZ) AS TIMESTAMP) AS occurred_at,
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
FROM (SELECT * FROM "nexus_raw"."product__events" WHERE "_ingested_at" <= CAST('2024-01-01 00:00:00' AS TIMESTAMP)) AS e
WHERE e.event_id IS NOT NULL AND TRIM(e.event_id) <> ''
