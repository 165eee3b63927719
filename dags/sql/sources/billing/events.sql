{#- Billing events: a customer was created; an invoice was issued (value = amount, unit =
    currency). -#}
SELECT
    {{ surrogate_key([lit(source), "'customer_created'", 'c.customer_id']) }} AS id,
    {{ to_timestamp('c.created_at') }} AS occurred_at,
    'customer_created' AS event_name,
    'Billing customer created' AS event_description,
    'billing' AS event_type,
    {{ lit(source) }} AS source,
    {{ to_double('NULL') }} AS value,
    {{ to_text('NULL') }} AS value_unit,
    c._ingested_at
FROM {{ batch('customers') }} AS c
WHERE c.customer_id IS NOT NULL AND TRIM(c.customer_id) <> ''
UNION ALL
SELECT
    {{ surrogate_key([lit(source), "'invoice_issued'", 'i.invoice_id']) }} AS id,
    {{ to_timestamp('i.issued_at') }} AS occurred_at,
    'invoice_issued' AS event_name,
    'Invoice issued (' || COALESCE(i.status, 'unknown') || ')' AS event_description,
    'billing' AS event_type,
    {{ lit(source) }} AS source,
    {{ to_double('i.amount') }} AS value,
    UPPER(TRIM(i.currency)) AS value_unit,
    i._ingested_at
FROM {{ batch('invoices') }} AS i
WHERE i.invoice_id IS NOT NULL AND TRIM(i.invoice_id) <> ''
