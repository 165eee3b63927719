WITH customers AS (
    SELECT
        md5((COALESCE(CAST('billing' AS TEXT), '') || '|' || COALESCE(CAST('customer_created' AS TEXT), '') || '|' || COALESCE(CAST(c.customer_id AS TEXT), ''))) AS event_id,
        c.customer_id,
        c.email,
        c.phone,
        c.company_domain,
        CAST(CAST(c.synced_at AS TIMESTAMPTZ) AS TIMESTAMP) AS occurred_at,
        c._ingested_at
    FROM (SELECT * FROM "nexus_raw"."billing__customers" WHERE "_ingested_at" <= CAST('2024-01-01 00:00:00' AS TIMESTAMP)) AS c
    WHERE c.customer_id IS NOT NULL AND TRIM(c.customer_id) <> ''
),
invoices AS (
    SELECT
        md5((COALESCE(CAST('billing' AS TEXT), '') || '|' || COALESCE(CAST('invoice_issued' AS TEXT), '') || '|' || COALESCE(CAST(i.invoice_id AS TEXT), ''))) AS event_id,
        i.customer_id,
        CAST(CAST(i.issued_at AS TIMESTAMPTZ) AS TIMESTAMP) AS occurred_at,
        i._ingested_at
    FROM (SELECT * FROM "nexus_raw"."billing__invoices" WHERE "_ingested_at" <= CAST('2024-01-01 00:00:00' AS TIMESTAMP)) AS i
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
    md5((COALESCE(CAST(event_id AS TEXT), '') || '|' || COALESCE(CAST(entity_type AS TEXT), '') || '|' || COALESCE(CAST(identifier_type AS TEXT), '') || '|' || COALESCE(CAST(identifier_value AS TEXT), ''))) AS id,
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
