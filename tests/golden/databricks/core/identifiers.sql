SELECT id, event_id, edge_id, entity_type, identifier_type,
       CASE identifier_type
  WHEN 'anonymous_id' THEN NULLIF(TRIM(identifier_value), '')
  WHEN 'billing_customer_id' THEN NULLIF(TRIM(identifier_value), '')
  WHEN 'crm_company_id' THEN NULLIF(TRIM(identifier_value), '')
  WHEN 'crm_contact_id' THEN NULLIF(TRIM(identifier_value), '')
  WHEN 'domain' THEN NULLIF(regexp_replace(regexp_replace(LOWER(TRIM(identifier_value)), '^[a-z]+://', ''), '^www\\.|[/:?#].*$', ''), '')
  WHEN 'email' THEN NULLIF(LOWER(TRIM(identifier_value)), '')
  WHEN 'phone' THEN NULLIF(CASE WHEN LENGTH(regexp_replace(identifier_value, '[^0-9]', '')) = 10 THEN '1' || regexp_replace(identifier_value, '[^0-9]', '') ELSE regexp_replace(identifier_value, '[^0-9]', '') END, '')
  WHEN 'user_id' THEN NULLIF(TRIM(identifier_value), '')
  ELSE NULLIF(TRIM(identifier_value), '')
END AS identifier_value,
       identifier_value AS identifier_value_raw,
       COALESCE(role, 'participant') AS role, source, occurred_at,
       _ingested_at, CAST('2024-01-01 00:00:00' AS TIMESTAMP_NTZ) AS _loaded_at
FROM `nexus_source`.`crm__identifiers`
WHERE `_ingested_at` <= CAST('2024-01-01 00:00:00' AS TIMESTAMP_NTZ)
UNION ALL
SELECT id, event_id, edge_id, entity_type, identifier_type,
       CASE identifier_type
  WHEN 'anonymous_id' THEN NULLIF(TRIM(identifier_value), '')
  WHEN 'billing_customer_id' THEN NULLIF(TRIM(identifier_value), '')
  WHEN 'crm_company_id' THEN NULLIF(TRIM(identifier_value), '')
  WHEN 'crm_contact_id' THEN NULLIF(TRIM(identifier_value), '')
  WHEN 'domain' THEN NULLIF(regexp_replace(regexp_replace(LOWER(TRIM(identifier_value)), '^[a-z]+://', ''), '^www\\.|[/:?#].*$', ''), '')
  WHEN 'email' THEN NULLIF(LOWER(TRIM(identifier_value)), '')
  WHEN 'phone' THEN NULLIF(CASE WHEN LENGTH(regexp_replace(identifier_value, '[^0-9]', '')) = 10 THEN '1' || regexp_replace(identifier_value, '[^0-9]', '') ELSE regexp_replace(identifier_value, '[^0-9]', '') END, '')
  WHEN 'user_id' THEN NULLIF(TRIM(identifier_value), '')
  ELSE NULLIF(TRIM(identifier_value), '')
END AS identifier_value,
       identifier_value AS identifier_value_raw,
       COALESCE(role, 'participant') AS role, source, occurred_at,
       _ingested_at, CAST('2024-01-01 00:00:00' AS TIMESTAMP_NTZ) AS _loaded_at
FROM `nexus_source`.`billing__identifiers`
WHERE `_ingested_at` <= CAST('2024-01-01 00:00:00' AS TIMESTAMP_NTZ)
UNION ALL
SELECT id, event_id, edge_id, entity_type, identifier_type,
       CASE identifier_type
  WHEN 'anonymous_id' THEN NULLIF(TRIM(identifier_value), '')
  WHEN 'billing_customer_id' THEN NULLIF(TRIM(identifier_value), '')
  WHEN 'crm_company_id' THEN NULLIF(TRIM(identifier_value), '')
  WHEN 'crm_contact_id' THEN NULLIF(TRIM(identifier_value), '')
  WHEN 'domain' THEN NULLIF(regexp_replace(regexp_replace(LOWER(TRIM(identifier_value)), '^[a-z]+://', ''), '^www\\.|[/:?#].*$', ''), '')
  WHEN 'email' THEN NULLIF(LOWER(TRIM(identifier_value)), '')
  WHEN 'phone' THEN NULLIF(CASE WHEN LENGTH(regexp_replace(identifier_value, '[^0-9]', '')) = 10 THEN '1' || regexp_replace(identifier_value, '[^0-9]', '') ELSE regexp_replace(identifier_value, '[^0-9]', '') END, '')
  WHEN 'user_id' THEN NULLIF(TRIM(identifier_value), '')
  ELSE NULLIF(TRIM(identifier_value), '')
END AS identifier_value,
       identifier_value AS identifier_value_raw,
       COALESCE(role, 'participant') AS role, source, occurred_at,
       _ingested_at, CAST('2024-01-01 00:00:00' AS TIMESTAMP_NTZ) AS _loaded_at
FROM `nexus_source`.`product__identifiers`
WHERE `_ingested_at` <= CAST('2024-01-01 00:00:00' AS TIMESTAMP_NTZ)
UNION ALL
SELECT id, event_id, edge_id, entity_type, identifier_type,
       CASE identifier_type
  WHEN 'anonymous_id' THEN NULLIF(TRIM(identifier_value), '')
  WHEN 'billing_customer_id' THEN NULLIF(TRIM(identifier_value), '')
  WHEN 'crm_company_id' THEN NULLIF(TRIM(identifier_value), '')
  WHEN 'crm_contact_id' THEN NULLIF(TRIM(identifier_value), '')
  WHEN 'domain' THEN NULLIF(regexp_replace(regexp_replace(LOWER(TRIM(identifier_value)), '^[a-z]+://', ''), '^www\\.|[/:?#].*$', ''), '')
  WHEN 'email' THEN NULLIF(LOWER(TRIM(identifier_value)), '')
  WHEN 'phone' THEN NULLIF(CASE WHEN LENGTH(regexp_replace(identifier_value, '[^0-9]', '')) = 10 THEN '1' || regexp_replace(identifier_value, '[^0-9]', '') ELSE regexp_replace(identifier_value, '[^0-9]', '') END, '')
  WHEN 'user_id' THEN NULLIF(TRIM(identifier_value), '')
  ELSE NULLIF(TRIM(identifier_value), '')
END AS identifier_value,
       identifier_value AS identifier_value_raw,
       COALESCE(role, 'participant') AS role, source, occurred_at,
       _ingested_at, CAST('2024-01-01 00:00:00' AS TIMESTAMP_NTZ) AS _loaded_at
FROM `nexus_source`.`support__identifiers`
WHERE `_ingested_at` <= CAST('2024-01-01 00:00:00' AS TIMESTAMP_NTZ)
