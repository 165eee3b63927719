SELECT id, event_id,
       person_identifier_type,
       CASE person_identifier_type
  WHEN 'anonymous_id' THEN NULLIF(TRIM(person_identifier_value), '')
  WHEN 'billing_customer_id' THEN NULLIF(TRIM(person_identifier_value), '')
  WHEN 'crm_company_id' THEN NULLIF(TRIM(person_identifier_value), '')
  WHEN 'crm_contact_id' THEN NULLIF(TRIM(person_identifier_value), '')
  WHEN 'domain' THEN NULLIF(REGEXP_REPLACE(REGEXP_REPLACE(LOWER(TRIM(person_identifier_value)), '^[a-z]+://', ''), '^www\\.|[/:?#].*$', ''), '')
  WHEN 'email' THEN NULLIF(LOWER(TRIM(person_identifier_value)), '')
  WHEN 'phone' THEN NULLIF(CASE WHEN LENGTH(REGEXP_REPLACE(person_identifier_value, '[^0-9]', '')) = 10 THEN '1' || REGEXP_REPLACE(person_identifier_value, '[^0-9]', '') ELSE REGEXP_REPLACE(person_identifier_value, '[^0-9]', '') END, '')
  WHEN 'user_id' THEN NULLIF(TRIM(person_identifier_value), '')
  ELSE NULLIF(TRIM(person_identifier_value), '')
END AS person_identifier_value,
       group_identifier_type,
       CASE group_identifier_type
  WHEN 'anonymous_id' THEN NULLIF(TRIM(group_identifier_value), '')
  WHEN 'billing_customer_id' THEN NULLIF(TRIM(group_identifier_value), '')
  WHEN 'crm_company_id' THEN NULLIF(TRIM(group_identifier_value), '')
  WHEN 'crm_contact_id' THEN NULLIF(TRIM(group_identifier_value), '')
  WHEN 'domain' THEN NULLIF(REGEXP_REPLACE(REGEXP_REPLACE(LOWER(TRIM(group_identifier_value)), '^[a-z]+://', ''), '^www\\.|[/:?#].*$', ''), '')
  WHEN 'email' THEN NULLIF(LOWER(TRIM(group_identifier_value)), '')
  WHEN 'phone' THEN NULLIF(CASE WHEN LENGTH(REGEXP_REPLACE(group_identifier_value, '[^0-9]', '')) = 10 THEN '1' || REGEXP_REPLACE(group_identifier_value, '[^0-9]', '') ELSE REGEXP_REPLACE(group_identifier_value, '[^0-9]', '') END, '')
  WHEN 'user_id' THEN NULLIF(TRIM(group_identifier_value), '')
  ELSE NULLIF(TRIM(group_identifier_value), '')
END AS group_identifier_value,
       COALESCE(role, 'member') AS role, source, occurred_at,
       _ingested_at, CAST('2024-01-01 00:00:00' AS TIMESTAMP_NTZ) AS _loaded_at
FROM "NEXUS_SOURCE"."CRM__MEMBERSHIPS"
WHERE "_INGESTED_AT" <= CAST('2024-01-01 00:00:00' AS TIMESTAMP_NTZ)
UNION ALL
SELECT id, event_id,
       person_identifier_type,
       CASE person_identifier_type
  WHEN 'anonymous_id' THEN NULLIF(TRIM(person_identifier_value), '')
  WHEN 'billing_customer_id' THEN NULLIF(TRIM(person_identifier_value), '')
  WHEN 'crm_company_id' THEN NULLIF(TRIM(person_identifier_value), '')
  WHEN 'crm_contact_id' THEN NULLIF(TRIM(person_identifier_value), '')
  WHEN 'domain' THEN NULLIF(REGEXP_REPLACE(REGEXP_REPLACE(LOWER(TRIM(person_identifier_value)), '^[a-z]+://', ''), '^www\\.|[/:?#].*$', ''), '')
  WHEN 'email' THEN NULLIF(LOWER(TRIM(person_identifier_value)), '')
  WHEN 'phone' THEN NULLIF(CASE WHEN LENGTH(REGEXP_REPLACE(person_identifier_value, '[^0-9]', '')) = 10 THEN '1' || REGEXP_REPLACE(person_identifier_value, '[^0-9]', '') ELSE REGEXP_REPLACE(person_identifier_value, '[^0-9]', '') END, '')
  WHEN 'user_id' THEN NULLIF(TRIM(person_identifier_value), '')
  ELSE NULLIF(TRIM(person_identifier_value), '')
END AS person_identifier_value,
       group_identifier_type,
       CASE group_identifier_type
  WHEN 'anonymous_id' THEN NULLIF(TRIM(group_identifier_value), '')
  WHEN 'billing_customer_id' THEN NULLIF(TRIM(group_identifier_value), '')
  WHEN 'crm_company_id' THEN NULLIF(TRIM(group_identifier_value), '')
  WHEN 'crm_contact_id' THEN NULLIF(TRIM(group_identifier_value), '')
  WHEN 'domain' THEN NULLIF(REGEXP_REPLACE(REGEXP_REPLACE(LOWER(TRIM(group_identifier_value)), '^[a-z]+://', ''), '^www\\.|[/:?#].*$', ''), '')
  WHEN 'email' THEN NULLIF(LOWER(TRIM(group_identifier_value)), '')
  WHEN 'phone' THEN NULLIF(CASE WHEN LENGTH(REGEXP_REPLACE(group_identifier_value, '[^0-9]', '')) = 10 THEN '1' || REGEXP_REPLACE(group_identifier_value, '[^0-9]', '') ELSE REGEXP_REPLACE(group_identifier_value, '[^0-9]', '') END, '')
  WHEN 'user_id' THEN NULLIF(TRIM(group_identifier_value), '')
  ELSE NULLIF(TRIM(group_identifier_value), '')
END AS group_identifier_value,
       COALESCE(role, 'member') AS role, source, occurred_at,
       _ingested_at, CAST('2024-01-01 00:00:00' AS TIMESTAMP_NTZ) AS _loaded_at
FROM "NEXUS_SOURCE"."BILLING__MEMBERSHIPS"
WHERE "_INGESTED_AT" <= CAST('2024-01-01 00:00:00' AS TIMESTAMP_NTZ)
UNION ALL
SELECT id, event_id,
       person_identifier_type,
       CASE person_identifier_type
  WHEN 'anonymous_id' THEN NULLIF(TRIM(person_identifier_value), '')
  WHEN 'billing_customer_id' THEN NULLIF(TRIM(person_identifier_value), '')
  WHEN 'crm_company_id' THEN NULLIF(TRIM(person_identifier_value), '')
  WHEN 'crm_contact_id' THEN NULLIF(TRIM(person_identifier_value), '')
  WHEN 'domain' THEN NULLIF(REGEXP_REPLACE(REGEXP_REPLACE(LOWER(TRIM(person_identifier_value)), '^[a-z]+://', ''), '^www\\.|[/:?#].*$', ''), '')
  WHEN 'email' THEN NULLIF(LOWER(TRIM(person_identifier_value)), '')
  WHEN 'phone' THEN NULLIF(CASE WHEN LENGTH(REGEXP_REPLACE(person_identifier_value, '[^0-9]', '')) = 10 THEN '1' || REGEXP_REPLACE(person_identifier_value, '[^0-9]', '') ELSE REGEXP_REPLACE(person_identifier_value, '[^0-9]', '') END, '')
  WHEN 'user_id' THEN NULLIF(TRIM(person_identifier_value), '')
  ELSE NULLIF(TRIM(person_identifier_value), '')
END AS person_identifier_value,
       group_identifier_type,
       CASE group_identifier_type
  WHEN 'anonymous_id' THEN NULLIF(TRIM(group_identifier_value), '')
  WHEN 'billing_customer_id' THEN NULLIF(TRIM(group_identifier_value), '')
  WHEN 'crm_company_id' THEN NULLIF(TRIM(group_identifier_value), '')
  WHEN 'crm_contact_id' THEN NULLIF(TRIM(group_identifier_value), '')
  WHEN 'domain' THEN NULLIF(REGEXP_REPLACE(REGEXP_REPLACE(LOWER(TRIM(group_identifier_value)), '^[a-z]+://', ''), '^www\\.|[/:?#].*$', ''), '')
  WHEN 'email' THEN NULLIF(LOWER(TRIM(group_identifier_value)), '')
  WHEN 'phone' THEN NULLIF(CASE WHEN LENGTH(REGEXP_REPLACE(group_identifier_value, '[^0-9]', '')) = 10 THEN '1' || REGEXP_REPLACE(group_identifier_value, '[^0-9]', '') ELSE REGEXP_REPLACE(group_identifier_value, '[^0-9]', '') END, '')
  WHEN 'user_id' THEN NULLIF(TRIM(group_identifier_value), '')
  ELSE NULLIF(TRIM(group_identifier_value), '')
END AS group_identifier_value,
       COALESCE(role, 'member') AS role, source, occurred_at,
       _ingested_at, CAST('2024-01-01 00:00:00' AS TIMESTAMP_NTZ) AS _loaded_at
FROM "NEXUS_SOURCE"."SUPPORT__MEMBERSHIPS"
WHERE "_INGESTED_AT" <= CAST('2024-01-01 00:00:00' AS TIMESTAMP_NTZ)
