SELECT
    md5((COALESCE(CAST('billing' AS STRING), '') || '|' || COALESCE(CAST('customer_created' AS STRING), '') || '|' || COALESCE(CAST(c.customer_id AS STRING), ''))) AS id,
    CAST(CAST(c.created_at AS TIMESTAMP) AS TIMESTAMP_NTZ) AS occurred_at,
    'customer_created' AS event_name,
    'Billing customer created' AS event_description,
    'billing' AS event_type,
    'billing' AS source,
    CAST(NULL AS DOUBLE) AS value,
    CAST(NULL AS STRING) AS value_unit,
    c._ingested_at
FROM (SELECT * FROM `nexus_raw`.`billing__customers` WHERE `_ingested_at` <= CAST('2024-01-01 00:00:00' AS TIMESTAMP_NTZ)) AS c
WHERE c.customer_id IS NOT NULL AND TRIM(c.customer_id) <> ''
UNION ALL
SELECT
    md5((COALESCE(CAST('billing' AS STRING), '') || '|' || COALESCE(CAST('invoice_issued' AS STRING), '') || '|' || COALESCE(CAST(i.invoice_id AS STRING), ''))) AS id,
    CAST(CAST(i.issued_at AS TIMESTAMP) AS TIMESTAMP_NTZ) AS occurred_at,
    'invoice_issued' AS event_name,
    'Invoice issued (' || COALESCE(i.status, 'unknown') || ')' AS event_description,
    'billing' AS event_type,
    'billing' AS source,
    CAST(i.amount AS DOUBLE) AS value,
    UPPER(TRIM(i.currency)) AS value_unit,
    i._ingested_at
FROM (SELECT * FROM `nexus_raw`.`billing__invoices` WHERE `_ingested_at` <= CAST('2024-01-01 00:00:00' AS TIMESTAMP_NTZ)) AS i
WHERE i.invoice_id IS NOT NULL AND TRIM(i.invoice_id) <> ''
