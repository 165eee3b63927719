{#- CRM events: a contact was created; a company record was delivered. A contact or company
    re-delivered with changes re-emits the same event (ids come from the natural key), so its
    identifiers and traits are replaced by the new version's instead of piling up. Natural keys are the raw text columns, so ids are the same
    on every warehouse. -#}
WITH contacts AS (
    SELECT
        c.contact_id,
        c.created_at AS created_at_text,
        c.updated_at AS updated_at_text,
        {{ to_timestamp('c.created_at') }} AS created_at,
        {{ to_timestamp('c.updated_at') }} AS updated_at,
        c._ingested_at
    FROM {{ batch('contacts') }} AS c
    WHERE c.contact_id IS NOT NULL AND TRIM(c.contact_id) <> ''
),
companies AS (
    SELECT
        c.company_id,
        c.updated_at AS updated_at_text,
        {{ to_timestamp('c.updated_at') }} AS updated_at,
        c._ingested_at
    FROM {{ batch('companies') }} AS c
    WHERE c.company_id IS NOT NULL AND TRIM(c.company_id) <> ''
)
SELECT
    {{ surrogate_key([lit(source), "'contact_created'", 'contact_id']) }} AS id,
    created_at AS occurred_at,
    'contact_created' AS event_name,
    'CRM contact created' AS event_description,
    'crm' AS event_type,
    {{ lit(source) }} AS source,
    {{ to_double('NULL') }} AS value,
    {{ to_text('NULL') }} AS value_unit,
    _ingested_at
FROM contacts
UNION ALL
SELECT
    {{ surrogate_key([lit(source), "'company_updated'", 'company_id']) }} AS id,
    updated_at AS occurred_at,
    'company_updated' AS event_name,
    'CRM company record delivered' AS event_description,
    'crm' AS event_type,
    {{ lit(source) }} AS source,
    {{ to_double('NULL') }} AS value,
    {{ to_text('NULL') }} AS value_unit,
    _ingested_at
FROM companies
