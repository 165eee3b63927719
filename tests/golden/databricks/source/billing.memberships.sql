SELECT
    md5((COALESCE(CAST('billing' AS STRING), '') || '|' || COALESCE(CAST('customer_created' AS STRING), '') || '|' || COALESCE(CAST(c.customer_id AS STRING), '') || '|' || COALESCE(CAST('domain' AS STRING), '') || '|' || COALESCE(CAST(c.company_domain AS STRING), ''))) AS id,
    md5((COALESCE(CAST('billing' AS STRING), '') || '|' || COALESCE(CAST('customer_created' AS STRING), '') || '|' || COALESCE(CAST(c.customer_id AS STRING), ''))) AS event_id,
    'billing_customer_id' AS person_identifier_type,
    c.customer_id AS person_identifier_value,
    'domain' AS group_identifier_type,
    c.company_domain AS group_identifier_value,
    'billing_contact' AS role,
    'billing' AS source,
    CAST(CAST(c.synced_at AS TIMESTAMP) AS TIMESTAMP_NTZ) AS occurred_at,
    c._ingested_at
FROM (SELECT * FROM `nexus_raw`.`billing__customers` WHERE `_ingested_at` <= CAST('2024-01-01 00:00:00' AS TIMESTAMP_NTZ)) AS c
WHERE c.customer_id IS NOT NULL AND TRIM(c.customer_id) <> ''
  AND c.company_domain IS NOT NULL AND TRIM(c.company_domain) <> ''
