{#- CRM identifiers. Every identifier of one contact row shares edge_id 'crm_contact:<id>', every
    identifier of one company row 'crm_company:<id>'. They attach to the contact's (or company's) one event, so a
    re-delivered row replaces them. Values stay raw;
    core normalises them. -#}
WITH contacts AS (
    SELECT
        {{ surrogate_key([lit(source), "'contact_created'", 'c.contact_id']) }} AS event_id,
        'crm_contact:' || c.contact_id AS edge_id,
        c.contact_id,
        c.email,
        c.phone,
        {{ to_timestamp('c.updated_at') }} AS occurred_at,
        c._ingested_at
    FROM {{ batch('contacts') }} AS c
    WHERE c.contact_id IS NOT NULL AND TRIM(c.contact_id) <> ''
),
companies AS (
    SELECT
        {{ surrogate_key([lit(source), "'company_updated'", 'c.company_id']) }} AS event_id,
        'crm_company:' || c.company_id AS edge_id,
        c.company_id,
        c.domain,
        {{ to_timestamp('c.updated_at') }} AS occurred_at,
        c._ingested_at
    FROM {{ batch('companies') }} AS c
    WHERE c.company_id IS NOT NULL AND TRIM(c.company_id) <> ''
),
identifiers AS (
    SELECT event_id, edge_id, 'person' AS entity_type, 'crm_contact_id' AS identifier_type,
           contact_id AS identifier_value, 'contact' AS role, occurred_at, _ingested_at
    FROM contacts
    UNION ALL
    SELECT event_id, edge_id, 'person', 'email', email, 'contact', occurred_at, _ingested_at
    FROM contacts
    UNION ALL
    SELECT event_id, edge_id, 'person', 'phone', phone, 'contact', occurred_at, _ingested_at
    FROM contacts
    UNION ALL
    SELECT event_id, edge_id, 'group', 'crm_company_id', company_id, 'company', occurred_at, _ingested_at
    FROM companies
    UNION ALL
    SELECT event_id, edge_id, 'group', 'domain', domain, 'company', occurred_at, _ingested_at
    FROM companies
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
