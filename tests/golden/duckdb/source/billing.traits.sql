WITH customers AS (
    SELECT
        md5((COALESCE(CAST('billing' AS VARCHAR), '') || '|' || COALESCE(CAST('customer_created' AS VARCHAR), '') || '|' || COALESCE(CAST(c.customer_id AS VARCHAR), ''))) AS event_id,
        c.customer_id,
        c.full_name,
        c.plan,
        CASE
            WHEN c.company_domain IS NOT NULL AND TRIM(c.company_domain) <> '' THEN c.company_name
        END AS company_name,
        CAST(CAST(c.synced_at AS TIMESTAMPTZ) AS TIMESTAMP) AS occurred_at,
        c._ingested_at
    FROM (SELECT * FROM "nexus_raw"."billing__customers" WHERE "_ingested_at" <= CAST('2024-01-01 00:00:00' AS TIMESTAMP)) AS c
    WHERE c.customer_id IS NOT NULL AND TRIM(c.customer_id) <> ''
),
traits AS (
    SELECT event_id, 'billing_customer:' || customer_id AS edge_id, 'person' AS entity_type,
           'name' AS trait_name, full_name AS trait_value, occurred_at, _ingested_at
    FROM customers
    UNION ALL
    SELECT event_id, 'billing_customer:' || customer_id, 'person', 'plan', plan, occurred_at,
           _ingested_at
    FROM customers
    UNION ALL
    SELECT event_id, 'billing_company:' || customer_id, 'group', 'name', company_name,
           occurred_at, _ingested_at
    FROM customers
)
SELECT
    md5((COALESCE(CAST(event_id AS VARCHAR), '') || '|' || COALESCE(CAST(entity_type AS VARCHAR), '') || '|' || COALESCE(CAST(trait_name AS VARCHAR), '') || '|' || COALESCE(CAST(trait_value AS VARCHAR), ''))) AS id,
    event_id,
    edge_id,
    entity_type,
    trait_name,
    trait_value,
    'billing' AS source,
    occurred_at,
    _ingested_at
FROM traits
WHERE trait_value IS NOT NULL AND TRIM(trait_value) <> ''
