{#- Billing traits: the customer's name and plan (person), the company name (group, only when a
    company domain identifies the group). Observed at synced_at, so a re-synced plan wins. -#}
WITH customers AS (
    SELECT
        {{ surrogate_key([lit(source), "'customer_created'", 'c.customer_id']) }} AS event_id,
        c.customer_id,
        c.full_name,
        c.plan,
        CASE
            WHEN c.company_domain IS NOT NULL AND TRIM(c.company_domain) <> '' THEN c.company_name
        END AS company_name,
        {{ to_timestamp('c.synced_at') }} AS occurred_at,
        c._ingested_at
    FROM {{ batch('customers') }} AS c
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
    {{ surrogate_key(['event_id', 'entity_type', 'trait_name', 'trait_value']) }} AS id,
    event_id,
    edge_id,
    entity_type,
    trait_name,
    trait_value,
    {{ lit(source) }} AS source,
    occurred_at,
    _ingested_at
FROM traits
WHERE trait_value IS NOT NULL AND TRIM(trait_value) <> ''
