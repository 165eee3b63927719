SELECT
    md5((COALESCE(CAST('billing' AS VARCHAR), '') || '|' || COALESCE(CAST('customer_created' AS VARCHAR), '') || '|' || COALESCE(CAST(c.customer_id AS VARCHAR), ''))) AS id,
    CAST(CONVERT_TIMEZONE('UTC', CAST(c.created_at AS TIMESTAMP_TZ)) AS TIMESTAMP_NTZ) AS occurred_at,
    'customer_created' AS event_name,
    'Billing customer created' AS event_description,
    'billing' AS event_type,
    'billing' AS source,
    CAST(NULL AS DOUBLE) AS value,
    CAST(NULL AS VARCHAR) AS value_unit,
    c._ingested_at
FROM (SELECT * FROM "NEXUS_RAW"."BILLING__CUSTOMERS" WHERE "_INGESTED_AT" <= CAST('2024-01-01 00:00:00' AS TIMESTAMP_NTZ)) AS c
WHERE c.customer_id IS NOT NULL AND TRIM(c.customer_id) <> ''
UNION ALL
SELECT
    md5((COALESCE(CAST('billing' AS VARCHAR), '') || '|' || COALESCE(CAST('invoice_issued' AS VARCHAR), '') || '|' || COALESCE(CAST(i.invoice_id AS VARCHAR), ''))) AS id,
    CAST(CONVERT_TIMEZONE('UTC', CAST(i.issued_at AS TIMESTAMP_TZ)) AS TIMESTAMP_NTZ) AS occurred_at,
    'invoice_issued' AS event_name,
    'Invoice issued (' || COALESCE(i.status, 'unknown') || ')' AS event_description,
    'billing' AS event_type,
    'billing' AS source,
    CAST(i.amount AS DOUBLE) AS value,
    UPPER(TRIM(i.currency)) AS value_unit,
    i._ingested_at
FROM (SELECT * FROM "NEXUS_RAW"."BILLING__INVOICES" WHERE "_INGESTED_AT" <= CAST('2024-01-01 00:00:00' AS TIMESTAMP_NTZ)) AS i
WHERE i.invoice_id IS NOT NULL AND TRIM(i.invoice_id) <> ''
