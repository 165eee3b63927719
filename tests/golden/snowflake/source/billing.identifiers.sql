WITH customers AS (
    SELECT
        md5((COALESCE(CAST('billing' AS VARCHAR), '') || '|' || COALESCE(CAST('customer_created' AS VARCHAR), '') || '|' || COALESCE(CAST(c.customer_id AS VARCHAR), ''))) AS event_id,
        c.customer_id,
        c.email,
        c.phone,
        c.company_domain,
        CAST(CONVERT_TIMEZONE('UTC', CAST(c.synced_at AS TIMESTAMP_TZ)) AS TIMESTAMP_NTZ) AS occurred_at,
        c._ingested_at
    FROM (SELECT * FROM "NEXUS_RAW"."BILLING__CUSTOMERS" WHERE "_INGESTED_AT" <= CAST('2024-01-01 00:00:00' AS TIMESTAMP_NTZ)) AS c
    WHERE c.customer_id IS NOT NULL AND TRIM(c.customer_id) <> ''
),
invoices AS (
    SELECT
        md5((COALESCE(CAST('billing' AS VARCHAR), '') || '|' || COALESCE(CAST('invoice_issued' AS VARCHAR), '') || '|' || COALESCE(CAST(i.invoice_id AS VARCHAR), ''))) AS event_id,
        i.customer_id,
        CAST(CONVERT_TIMEZONE('UTC', CAST(i.issued_at AS TIMESTAMP_TZ)) AS TIMESTAMP_NTZ) AS occurred_at,
        i._ingested_at
    FROM (SELECT * FROM "NEXUS_RAW"."BILLING__INVOICES" WHERE "_INGESTED_AT" <= CAST('2024-01-01 00:00:00' AS TIMESTAMP_NTZ)) AS i
    WHERE i.invoice_id IS NOT NULL AND TRIM(i.invoice_id) <> ''
),
identifiers AS (
    SELECT event_id, 'billing_customer:' || customer_id AS edge_id, 'person' AS entity_type,
           'billing_customer_id' AS identifier_type, customer_id AS identifier_value,
           'customer' AS role, occurred_at, _ingested_at
    FROM customers
    UNION ALL
    SELECT event_id, 'billing_customer:' || customer_id, 'person', 'email', email, 'customer',
           occurred_at, _ingested_at
    FROM customers
    UNION ALL
    SELECT event_id, 'billing_customer:' || customer_id, 'person', 'phone', phone, 'customer',
           occurred_at, _ingested_at
    FROM customers
    UNION ALL
    SELECT event_id, 'billing_company:' || customer_id, 'group', 'domain', company_domain,
           'company', occurred_at, _ingested_at
    FROM customers
    UNION ALL
    SELECT event_id, 'billing_customer:' || customer_id, 'person', 'billing_customer_id',
           customer_id, 'customer', occurred_at, _ingested_at
    FROM invoices
)
SELECT
    md5((COALESCE(CAST(event_id AS VARCHAR), '') || '|' || COALESCE(CAST(entity_type AS VARCHAR), '') || '|' || COALESCE(CAST(identifier_type AS VARCHAR), '') || '|' || COALESCE(CAST(identifier_value AS VARCHAR), ''))) AS id,
    event_id,
    edge_id,
    entity_type,
    identifier_type,
    identifier_value,
    role,
    'billing' AS source,
    occurred_at,
    _ingested_at
FROM identifiers
WHERE identifier_value IS NOT NULL AND TRIM(identifier_value) <> ''
