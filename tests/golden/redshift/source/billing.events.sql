SELECT
    md5((COALESCE(CAST('billing' AS VARCHAR(MAX)), '') || '|' || COALESCE(CAST('customer_created' AS VARCHAR(MAX)), '') || '|' || COALESCE(CAST(c.customer_id AS VARCHAR(MAX)), ''))) AS id,
    CAST(CAST(c.created_at AS TIMESTAMPTZ) AS TIMESTAMP) AS occurred_at,
    'customer_created' AS event_name,
    'Billing customer created' AS event_description,
    'billing' AS event_type,
    'billing' AS source,
    CAST(NULL AS DOUBLE PRECISION) AS value,
    CAST(NULL AS VARCHAR(MAX)) AS value_unit,
    c._ingested_at
FROM (SELECT * FROM "nexus_raw"."billing__customers" WHERE "_ingested_at" <= CAST('2024-01-01 00:00:00' AS TIMESTAMP)) AS c
WHERE c.customer_id IS NOT NULL AND TRIM(c.customer_id) <> ''
UNION ALL
SELECT
    md5((COALESCE(CAST('billing' AS VARCHAR(MAX)), '') || '|' || COALESCE(CAST('invoice_issued' AS VARCHAR(MAX)), '') || '|' || COALESCE(CAST(i.invoice_id AS VARCHAR(MAX)), ''))) AS id,
    CAST(CAST(i.issued_at AS TIMESTAMPTZ) AS TIMESTAMP) AS occurred_at,
    'invoice_issued' AS event_name,
    'Invoice issued (' || COALESCE(i.status, 'unknown') || ')' AS event_description,
    'billing' AS event_type,
    'billing' AS source,
    CAST(i.amount AS DOUBLE PRECISION) AS value,
    UPPER(TRIM(i.currency)) AS value_unit,
    i._ingested_at
FROM (SELECT * FROM "nexus_raw"."billing__invoices" WHERE "_ingested_at" <= CAST('2024-01-01 00:00:00' AS TIMESTAMP)) AS i
WHERE i.invoice_id IS NOT NULL AND TRIM(i.invoice_id) <> ''
