WITH contacts AS (
    SELECT
        md5((COALESCE(CAST('crm' AS TEXT), '') || '|' || COALESCE(CAST('contact_created' AS TEXT), '') || '|' || COALESCE(CAST(c.contact_id AS TEXT), ''))) AS event_id,
        'crm_contact:' || c.contact_id AS edge_id,
        TRIM(COALESCE(TRIM(c.first_name), '') || ' ' || COALESCE(TRIM(c.last_name), '')) AS full_name,
        c.title,
        CAST(CAST(c.updated_at AS TIMESTAMPTZ) AS TIMESTAMP) AS occurred_at,
        c._ingested_at
    FROM (SELECT * FROM "nexus_raw"."crm__contacts" WHERE "_ingested_at" <= CAST('2024-01-01 00:00:00' AS TIMESTAMP)) AS c
    WHERE c.contact_id IS NOT NULL AND TRIM(c.contact_id) <> ''
),
companies AS (
    SELECT
        md5((COALESCE(CAST('crm' AS TEXT), '') || '|' || COALESCE(CAST('company_updated' AS TEXT), '') || '|' || COALESCE(CAST(c.company_id AS TEXT), ''))) AS event_id,
        'crm_company:' || c.company_id AS edge_id,
        c.name,
        c.industry,
        c.size,
        CAST(CAST(c.updated_at AS TIMESTAMPTZ) AS TIMESTAMP) AS occurred_at,
        c._ingested_at
    FROM (SELECT * FROM "nexus_raw"."crm__companies" WHERE "_ingested_at" <= CAST('2024-01-01 00:00:00' AS TIMESTAMP)) AS c
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
    md5((COALESCE(CAST(event_id AS TEXT), '') || '|' || COALESCE(CAST(entity_type AS TEXT), '') || '|' || COALESCE(CAST(trait_name AS TEXT), '') || '|' || COALESCE(CAST(trait_value AS TEXT), ''))) AS id,
    event_id,
    edge_id,
    entity_type,
    trait_name,
    trait_value,
    'crm' AS source,
    occurred_at,
    _ingested_at
FROM traits
WHERE trait_value IS NOT NULL AND TRIM(trait_value) <> ''
