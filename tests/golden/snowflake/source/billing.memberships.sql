SELECT
    md5((COALESCE(CAST('billing' AS VARCHAR), '') || '|' || COALESCE(CAST('customer_created' AS VARCHAR), '') || '|' || COALESCE(CAST(c.customer_id AS VARCHAR), '') || '|' || COALESCE(CAST('domain' AS VARCHAR), '') || '|' || COALESCE(CAST(c.company_domain AS VARCHAR), ''))) AS id,
    md5((COALESCE(CAST('billing' AS VARCHAR), '') || '|' || COALESCE(CAST('customer_created' AS VARCHAR), '') || '|' || COALESCE(CAST(c.customer_id AS VARCHAR), ''))) AS event_id,
    'billing_customer_id' AS person_identifier_type,
    c.customer_id AS person_identifier_value,
    'domain' AS group_identifier_type,
    c.company_domain AS group_identifier_value,
    'billing_contact' AS role,
    'billing' AS source,
    CAST(CONVERT_TIMEZONE('UTC', CAST(c.synced_at AS TIMESTAMP_TZ)) AS TIMESTAMP_NTZ) AS occurred_at,
    c._ingested_at
FROM (SELECT * FROM "NEXUS_RAW"."BILLING__CUSTOMERS" WHERE "_INGESTED_AT" <= CAST('2024-01-01 00:00:00' AS TIMESTAMP_NTZ)) AS c
WHERE c.customer_id IS NOT NULL AND TRIM(c.customer_id) <> ''
  AND c.company_domain IS NOT NULL AND TRIM(c.company_domain) <> ''
