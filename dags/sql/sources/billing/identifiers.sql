{#- Billing identifiers. A customer row is one person (edge 'billing_customer:<id>': customer id,
    email, phone) and, when it names a company domain, one group (edge
    'billing_company:<customer id>'). An invoice names its customer, so the customer takes part in
    the invoice event under the same person edge. Observed at synced_at. -#}
WITH customers AS (
    SELECT
        {{ surrogate_key([lit(source), "'customer_created'", 'c.customer_id']) }} AS event_id,
        c.customer_id,
        c.email,
        c.phone,
        c.company_domain,
        {{ to_timestamp('c.synced_at') }} AS occurred_at,
        c._ingested_at
    FROM {{ batch('customers') }} AS c
    WHERE c.customer_id IS NOT NULL AND TRIM(c.customer_id) <> ''
),
invoices AS (
    SELECT
        {{ surrogate_key([lit(source), "'invoice_issued'", 'i.invoice_id']) }} AS event_id,
        i.customer_id,
        {{ to_timestamp('i.issued_at') }} AS occurred_at,
        i._ingested_at
    FROM {{ batch('invoices') }} AS i
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
    {{ surrogate_key(['event_id', 'entity_type', 'identifier_type', 'identifier_value']) }} AS id,
    event_id,
    edge_id,
    entity_type,
    identifier_type,
    identifier_value,
    role,
    {{ lit(source) }} AS source,
    occurred_at,
    _ingested_at
FROM identifiers
WHERE identifier_value IS NOT NULL AND TRIM(identifier_value) <> ''
