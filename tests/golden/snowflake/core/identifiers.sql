SELECT id, event_id, edge_id, entity_type, identifier_type,
       CASE identifier_type
  WHEN 'anonymous_id' THEN NULLIF(TRIM(identifier_value), '')
  WHEN 'billing_customer_id' THEN NULLIF(TRIM(identifier_value), '')
  WHEN 'crm_company_id' THEN NULLIF(TRIM(identifier_value), '')
  WHEN 'crm_contact_id' THEN NULLIF(TRIM(identifier_value), '')
  WHEN 'domain' THEN NULLIF(REGEXP_REPLACE(REGEXP_REPLACE(LOWER(TRIM(identifier_value)), '^[a-z]+://', ''), '^www\\.|[/:?#].*$', ''), '')
  WHEN 'email' THEN NULLIF(LOWER(TRIM(identifier_value)), '')
  WHEN 'phone' THEN NULLIF(CASE WHEN LENGTH(REGEXP_REPLACE(identifier_value, '[^0-9]', '')) = 10 THEN '1' || REGEXP_REPLACE(identifier_value, '[^0-9]', '') ELSE REGEXP_REPLACE(identifier_value, '[^0-9]', '') END, '')
  WHEN 'user_id' THEN NULLIF(TRIM(identifier_value), '')
  ELSE NULLIF(TRIM(identifier_value), '')
END AS identifier_value,
       identifier_value AS identifier_value_raw,
       COALESCE(role, 'participant') AS role, source, occurred_at,
       _ingested_at, CAST('2024-01-01 00:00:00' AS TIMESTAMP_NTZ) AS _loaded_at
FROM "NEXUS_SOURCE"."CRM__IDENTIFIERS"
WHERE "_INGESTED_AT" <= CAST('2024-01-01 00:00:00' AS TIMESTAMP_NTZ)
UNION ALL
SELECT id, event_id, edge_id, entity_type, identifier_type,
       CASE identifier_type
  WHEN 'anonymous_id' THEN NULLIF(TRIM(identifier_value), '')
  WHEN 'billing_customer_id' THEN NULLIF(TRIM(identifier_value), '')
  WHEN 'crm_company_id' THEN NULLIF(TRIM(identifier_value), '')
  WHEN 'crm_contact_id' THEN NULLIF(TRIM(identifier_value), '')
  WHEN 'domain' THEN NULLIF(REGEXP_REPLACE(REGEXP_REPLACE(LOWER(TRIM(identifier_value)), '^[a-z]+://', ''), '^www\\.|[/:?#].*$', ''), '')
  WHEN 'email' THEN NULLIF(LOWER(TRIM(identifier_value)), '')
  WHEN 'phone' THEN NULLIF(CASE WHEN LENGTH(REGEXP_REPLACE(identifier_value, '[^0-9]', '')) = 10 THEN '1' || REGEXP_REPLACE(identifier_value, '[^0-9]', '') ELSE REGEXP_REPLACE(identifier_value, '[^0-9]', '') END, '')
  WHEN 'user_id' THEN NULLIF(TRIM(identifier_value), '')
  ELSE NULLIF(TRIM(identifier_value), '')
END AS identifier_value,
       identifier_value AS identifier_value_raw,
       COALESCE(role, 'participant') AS role, source, occurred_at,
       _ingested_at, CAST('2024-01-01 00:00:00' AS TIMESTAMP_NTZ) AS _loaded_at
FROM "NEXUS_SOURCE"."BILLING__IDENTIFIERS"
WHERE "_INGESTED_AT" <= CAST('2024-01-01 00:00:00' AS TIMESTAMP_NTZ)
UNION ALL
SELECT id, event_id, edge_id, entity_type, identifier_type,
       CASE identifier_type
  WHEN 'anonymous_id' THEN NULLIF(TRIM(identifier_value), '')
  WHEN 'billing_customer_id' THEN NULLIF(TRIM(identifier_value), '')
  WHEN 'crm_company_id' THEN NULLIF(TRIM(identifier_value), '')
  WHEN 'crm_contact_id' THEN NULLIF(TRIM(identifier_value), '')
  WHEN 'domain' THEN NULLIF(REGEXP_REPLACE(REGEXP_REPLACE(LOWER(TRIM(identifier_value)), '^[a-z]+://', ''), '^www\\.|[/:?#].*$', ''), '')
  WHEN 'email' THEN NULLIF(LOWER(TRIM(identifier_value)), '')
  WHEN 'phone' THEN NULLIF(CASE WHEN LENGTH(REGEXP_REPLACE(identifier_value, '[^0-9]', '')) = 10 THEN '1' || REGEXP_REPLACE(identifier_value, '[^0-9]', '') ELSE REGEXP_REPLACE(identifier_value, '[^0-9]', '') END, '')
  WHEN 'user_id' THEN NULLIF(TRIM(identifier_value), '')
  ELSE NULLIF(TRIM(identifier_value), '')
END AS identifier_value,
       identifier_value AS identifier_value_raw,
       COALESCE(role, 'participant') AS role, source, occurred_at,
       _ingested_at, CAST('2024-01-01 00:00:00' AS TIMESTAMP_NTZ) AS _loaded_at
FROM "NEXUS_SOURCE"."PRODUCT__IDENTIFIERS"
WHERE "_INGESTED_AT" <= CAST('2024-01-01 00:00:00' AS TIMESTAMP_NTZ)
UNION ALL
SELECT id, event_id, edge_id, entity_type, identifier_type,
       CASE identifier_type
  WHEN 'anonymous_id' THEN NULLIF(TRIM(identifier_value), '')
  WHEN 'billing_customer_id' THEN NULLIF(TRIM(identifier_value), '')
  WHEN 'crm_company_id' THEN NULLIF(TRIM(identifier_value), '')
  WHEN 'crm_contact_id' THEN NULLIF(TRIM(identifier_value), '')
  WHEN 'domain' THEN NULLIF(REGEXP_REPLACE(REGEXP_REPLACE(LOWER(TRIM(identifier_value)), '^[a-z]+://', ''), '^www\\.|[/:?#].*$', ''), '')
  WHEN 'email' THEN NULLIF(LOWER(TRIM(identifier_value)), '')
  WHEN 'phone' THEN NULLIF(CASE WHEN LENGTH(REGEXP_REPLACE(identifier_value, '[^0-9]', '')) = 10 THEN '1' || REGEXP_REPLACE(identifier_value, '[^0-9]', '') ELSE REGEXP_REPLACE(identifier_value, '[^0-9]', '') END, '')
  WHEN 'user_id' THEN NULLIF(TRIM(identifier_value), '')
  ELSE NULLIF(TRIM(identifier_value), '')
END AS identifier_value,
       identifier_value AS identifier_value_raw,
       COALESCE(role, 'participant') AS role, source, occurred_at,
       _ingested_at, CAST('2024-01-01 00:00:00' AS TIMESTAMP_NTZ) AS _loaded_at
FROM "NEXUS_SOURCE"."SUPPORT__IDENTIFIERS"
WHERE "_INGESTED_AT" <= CAST('2024-01-01 00:00:00' AS TIMESTAMP_NTZ)
