WITH contacts AS (
    SELECT
        md5((COALESCE(CAST('crm' AS VARCHAR(MAX)), '') || '|' || COALESCE(CAST('contact_created' AS VARCHAR(MAX)), '') || '|' || COALESCE(CAST(c.contact_id AS VARCHAR(MAX)), ''))) AS event_id,
        'crm_contact:' || c.contact_id AS edge_id,
        c.contact_id,
        c.email,
        c.phone,
        CAST(CAST(c.updated_at AS TIMESTAMPTZ) AS TIMESTAMP) AS occurred_at,
        c._ingested_at
    FROM (SELECT * FROM "nexus_raw"."crm__contacts" WHERE "_ingested_at" <= CAST('2024-01-01 00:00:00' AS TIMESTAMP)) AS c
    WHERE c.contact_id IS NOT NULL AND TRIM(c.contact_id) <> ''
),
companies AS (
    SELECT
        md5((COALESCE(CAST('crm' AS VARCHAR(MAX)), '') || '|' || COALESCE(CAST('company_updated' AS VARCHAR(MAX)), '') || '|' || COALESCE(CAST(c.company_id AS VARCHAR(MAX)), ''))) AS event_id,
        'crm_company:' || c.company_id AS edge_id,
        c.company_id,
        c.domain,
        CAST(CAST(c.updated_at AS TIMESTAMPTZ) AS TIMESTAMP) AS occurred_at,
        c._ingested_at
    FROM (SELECT * FROM "nexus_raw"."crm__companies" WHERE "_ingested_at" <= CAST('2024-01-01 00:00:00' AS TIMESTAMP)) AS c
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
    md5((COALESCE(CAST(event_id AS VARCHAR(MAX)), '') || '|' || COALESCE(CAST(entity_type AS VARCHAR(MAX)), '') || '|' || COALESCE(CAST(identifier_type AS VARCHAR(MAX)), '') || '|' || COALESCE(CAST(identifier_value AS VARCHAR(MAX)), ''))) AS id,
    event_id,
    edge_id,
    entity_type,
    identifier_type,
    identifier_value,
    role,
    'crm' AS source,
    occurred_at,
    _ingested_at
FROM identifiers
WHERE identifier_value IS NOT NULL AND TRIM(identifier_value) <> ''
