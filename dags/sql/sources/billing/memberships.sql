{#- Billing memberships: a customer belongs to the company whose domain it gave. -#}
SELECT
    {{ surrogate_key([lit(source), "'customer_created'", 'c.customer_id', "'domain'", 'c.company_domain']) }} AS id,
    {{ surrogate_key([lit(source), "'customer_created'", 'c.customer_id']) }} AS event_id,
    'billing_customer_id' AS person_identifier_type,
    c.customer_id AS person_identifier_value,
    'domain' AS group_identifier_type,
    c.company_domain AS group_identifier_value,
    'billing_contact' AS role,
    {{ lit(source) }} AS source,
    {{ to_timestamp('c.synced_at') }} AS occurred_at,
    c._ingested_at
FROM {{ batch('customers') }} AS c
WHERE c.customer_id IS NOT NULL AND TRIM(c.customer_id) <> ''
  AND c.company_domain IS NOT NULL AND TRIM(c.company_domain) <> ''
