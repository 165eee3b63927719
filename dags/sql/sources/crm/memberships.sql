{#- CRM memberships: a contact belongs to the company its company_id points at. -#}
WITH contacts AS (
    SELECT
        {{ surrogate_key([lit(source), "'contact_created'", 'c.contact_id']) }} AS event_id,
        c.contact_id,
        c.company_id,
        {{ to_timestamp('c.updated_at') }} AS occurred_at,
        c._ingested_at
    FROM {{ batch('contacts') }} AS c
    WHERE c.contact_id IS NOT NULL AND TRIM(c.contact_id) <> ''
      AND c.company_id IS NOT NULL AND TRIM(c.company_id) <> ''
)
SELECT
    {{ surrogate_key(['event_id', "'crm_contact_id'", 'contact_id', "'crm_company_id'", 'company_id']) }} AS id,
    event_id,
    'crm_contact_id' AS person_identifier_type,
    contact_id AS person_identifier_value,
    'crm_company_id' AS group_identifier_type,
    company_id AS group_identifier_value,
    'employee' AS role,
    {{ lit(source) }} AS source,
    occurred_at,
    _ingested_at
FROM contacts
