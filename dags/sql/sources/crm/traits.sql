{#- CRM traits: a contact's name and title, a company's name, industry and size. Each carries
    the edge_id of the identifiers of the entity it describes, and the row's updated_at. -#}
WITH contacts AS (
    SELECT
        {{ surrogate_key([lit(source), "'contact_created'", 'c.contact_id']) }} AS event_id,
        'crm_contact:' || c.contact_id AS edge_id,
        TRIM(COALESCE(TRIM(c.first_name), '') || ' ' || COALESCE(TRIM(c.last_name), '')) AS full_name,
        c.title,
        {{ to_timestamp('c.updated_at') }} AS occurred_at,
        c._ingested_at
    FROM {{ batch('contacts') }} AS c
    WHERE c.contact_id IS NOT NULL AND TRIM(c.contact_id) <> ''
),
companies AS (
    SELECT
        {{ surrogate_key([lit(source), "'company_updated'", 'c.company_id']) }} AS event_id,
        'crm_company:' || c.company_id AS edge_id,
        c.name,
        c.industry,
        c.size,
        {{ to_timestamp('c.updated_at') }} AS occurred_at,
        c._ingested_at
    FROM {{ batch('companies') }} AS c
    WHERE c.company_id IS NOT NULL AND TRIM(c.company_id) <> ''
),
traits AS (
    SELECT event_id, edge_id, 'person' AS entity_type, 'name' AS trait_name,
           full_name AS trait_value, occurred_at, _ingested_at
    FROM contacts
    UNION ALL
    SELECT event_id, edge_id, 'person', 'title', title, occurred_at, _ingested_at
    FROM contacts
    UNION ALL
    SELECT event_id, edge_id, 'group', 'name', name, occurred_at, _ingested_at
    FROM companies
    UNION ALL
    SELECT event_id, edge_id, 'group', 'industry', industry, occurred_at, _ingested_at
    FROM companies
    UNION ALL
    SELECT event_id, edge_id, 'group', 'size', size, occurred_at, _ingested_at
    FROM companies
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
