WITH contacts AS (
    SELECT
        c.contact_id,
        c.created_at AS created_at_text,
        c.updated_at AS updated_at_text,
        CAST(CONVERT_TIMEZONE('UTC', CAST(c.created_at AS TIMESTAMP_TZ)) AS TIMESTAMP_NTZ) AS created_at,
        CAST(CONVERT_TIMEZONE('UTC', CAST(c.updated_at AS TIMESTAMP_TZ)) AS TIMESTAMP_NTZ) AS updated_at,
        c._ingested_at
    FROM (SELECT * FROM "NEXUS_RAW"."CRM__CONTACTS" WHERE "_INGESTED_AT" <= CAST('2024-01-01 00:00:00' AS TIMESTAMP_NTZ)) AS c
    WHERE c.contact_id IS NOT NULL AND TRIM(c.contact_id) <> ''
),
companies AS (
    SELECT
        c.company_id,
        c.updated_at AS updated_at_text,
        CAST(CONVERT_TIMEZONE('UTC', CAST(c.updated_at AS TIMESTAMP_TZ)) AS TIMESTAMP_NTZ) AS updated_at,
        c._ingested_at
    FROM (SELECT * FROM "NEXUS_RAW"."CRM__COMPANIES" WHERE "_INGESTED_AT" <= CAST('2024-01-01 00:00:00' AS TIMESTAMP_NTZ)) AS c
    WHERE c.company_id IS NOT NULL AND TRIM(c.company_id) <> ''
)
SELECT
    md5((COALESCE(CAST('crm' AS VARCHAR), '') || '|' || COALESCE(CAST('contact_created' AS VARCHAR), '') || '|' || COALESCE(CAST(contact_id AS VARCHAR), ''))) AS id,
    created_at AS occurred_at,
    'contact_created' AS event_name,
    'CRM contact created' AS event_description,
    'crm' AS event_type,
    'crm' AS source,
    CAST(NULL AS DOUBLE) AS value,
    CAST(NULL AS VARCHAR) AS value_unit,
    _ingested_at
FROM contacts
UNION ALL
SELECT
    md5((COALESCE(CAST('crm' AS VARCHAR), '') || '|' || COALESCE(CAST('company_updated' AS VARCHAR), '') || '|' || COALESCE(CAST(company_id AS VARCHAR), ''))) AS id,
    updated_at AS occurred_at,
    'company_updated' AS event_name,
    'CRM company record delivered' AS event_description,
    'crm' AS event_type,
    'crm' AS source,
    CAST(NULL AS DOUBLE) AS value,
    CAST(NULL AS VARCHAR) AS value_unit,
    _ingested_at
FROM companies
