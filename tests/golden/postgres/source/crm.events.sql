WITH contacts AS (
    SELECT
        c.contact_id,
        c.created_at AS created_at_text,
        c.updated_at AS updated_at_text,
        CAST(CAST(c.created_at AS TIMESTAMPTZ) AS TIMESTAMP) AS created_at,
        CAST(CAST(c.updated_at AS TIMESTAMPTZ) AS TIMESTAMP) AS updated_at,
        c._ingested_at
    FROM (SELECT * FROM "nexus_raw"."crm__contacts" WHERE "_ingested_at" <= CAST('2024-01-01 00:00:00' AS TIMESTAMP)) AS c
    WHERE c.contact_id IS NOT NULL AND TRIM(c.contact_id) <> ''
),
companies AS (
    SELECT
        c.company_id,
        c.updated_at AS updated_at_text,
        CAST(CAST(c.updated_at AS TIMESTAMPTZ) AS TIMESTAMP) AS updated_at,
        c._ingested_at
    FROM (SELECT * FROM "nexus_raw"."crm__companies" WHERE "_ingested_at" <= CAST('2024-01-01 00:00:00' AS TIMESTAMP)) AS c
    WHERE c.company_id IS NOT NULL AND TRIM(c.company_id) <> ''
)
SELECT
    md5((COALESCE(CAST('crm' AS TEXT), '') || '|' || COALESCE(CAST('contact_created' AS TEXT), '') || '|' || COALESCE(CAST(contact_id AS TEXT), ''))) AS id,
    created_at AS occurred_at,
    'contact_created' AS event_name,
    'CRM contact created' AS event_description,
    'crm' AS event_type,
    'crm' AS source,
    CAST(NULL AS DOUBLE PRECISION) AS value,
    CAST(NULL AS TEXT) AS value_unit,
    _ingested_at
FROM contacts
UNION ALL
SELECT
    md5((COALESCE(CAST('crm' AS TEXT), '') || '|' || COALESCE(CAST('company_updated' AS TEXT), '') || '|' || COALESCE(CAST(company_id AS TEXT), ''))) AS id,
    updated_at AS occurred_at,
    'company_updated' AS event_name,
    'CRM company record delivered' AS event_description,
    'crm' AS event_type,
    'crm' AS source,
    CAST(NULL AS DOUBLE PRECISION) AS value,
    CAST(NULL AS TEXT) AS value_unit,
    _ingested_at
FROM companies
