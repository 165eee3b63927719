WITH contacts AS (
    SELECT
        md5((COALESCE(CAST('crm' AS VARCHAR), '') || '|' || COALESCE(CAST('contact_created' AS VARCHAR), '') || '|' || COALESCE(CAST(c.contact_id AS VARCHAR), ''))) AS event_id,
        c.contact_id,
        c.company_id,
        CAST(CONVERT_TIMEZONE('UTC', CAST(c.updated_at AS TIMESTAMP_TZ)) AS TIMESTAMP_NTZ) AS occurred_at,
        c._ingested_at
    FROM (SELECT * FROM "NEXUS_RAW"."CRM__CONTACTS" WHERE "_INGESTED_AT" <= CAST('2024-01-01 00:00:00' AS TIMESTAMP_NTZ)) AS c
    WHERE c.contact_id IS NOT NULL AND TRIM(c.contact_id) <> ''
      AND c.company_id IS NOT NULL AND TRIM(c.company_id) <> ''
)
SELECT
    md5((COALESCE(CAST(event_id AS VARCHAR), '') || '|' || COALESCE(CAST('crm_contact_id' AS VARCHAR), '') || '|' || COALESCE(CAST(contact_id AS VARCHAR), '') || '|' || COALESCE(CAST('crm_company_id' AS VARCHAR), '') || '|' || COALESCE(CAST(company_id AS VARCHAR), ''))) AS id,
    event_id,
    'crm_contact_id' AS person_identifier_type,
    contact_id AS person_identifier_value,
    'crm_company_id' AS group_identifier_type,
    company_id AS group_identifier_value,
    'employee' AS role,
    'crm' AS source,
    occurred_at,
    _ingested_at
FROM contacts
