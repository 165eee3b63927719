SELECT id, event_id, edge_id, entity_type, identifier_type,
       CASE identifier_type
  WHEN 'anonymous_id' THEN NULLIF(CASE WHEN STRPOS(' \t\n\r  ᠎           ​‌‍  ⁠　﻿', LEFT(identifier_value, 1)) > 0 OR STRPOS(' \t\n\r  ᠎           ​‌‍  ⁠　﻿', RIGHT(identifier_value, 1)) > 0 THEN TRIM(identifier_value, ' \t\n\r  ᠎           ​‌‍  ⁠　﻿') ELSE identifier_value END, '')
  WHEN 'billing_customer_id' THEN NULLIF(CASE WHEN STRPOS(' \t\n\r  ᠎           ​‌‍  ⁠　﻿', LEFT(identifier_value, 1)) > 0 OR STRPOS(' \t\n\r  ᠎           ​‌‍  ⁠　﻿', RIGHT(identifier_value, 1)) > 0 THEN TRIM(identifier_value, ' \t\n\r  ᠎           ​‌‍  ⁠　﻿') ELSE identifier_value END, '')
  WHEN 'crm_company_id' THEN NULLIF(CASE WHEN STRPOS(' \t\n\r  ᠎           ​‌‍  ⁠　﻿', LEFT(identifier_value, 1)) > 0 OR STRPOS(' \t\n\r  ᠎           ​‌‍  ⁠　﻿', RIGHT(identifier_value, 1)) > 0 THEN TRIM(identifier_value, ' \t\n\r  ᠎           ​‌‍  ⁠　﻿') ELSE identifier_value END, '')
  WHEN 'crm_contact_id' THEN NULLIF(CASE WHEN STRPOS(' \t\n\r  ᠎           ​‌‍  ⁠　﻿', LEFT(identifier_value, 1)) > 0 OR STRPOS(' \t\n\r  ᠎           ​‌‍  ⁠　﻿', RIGHT(identifier_value, 1)) > 0 THEN TRIM(identifier_value, ' \t\n\r  ᠎           ​‌‍  ⁠　﻿') ELSE identifier_value END, '')
  WHEN 'domain' THEN NULLIF(REGEXP_REPLACE(REGEXP_REPLACE(LOWER(CASE WHEN STRPOS(' \t\n\r  ᠎           ​‌‍  ⁠　﻿', LEFT(identifier_value, 1)) > 0 OR STRPOS(' \t\n\r  ᠎           ​‌‍  ⁠　﻿', RIGHT(identifier_value, 1)) > 0 THEN TRIM(identifier_value, ' \t\n\r  ᠎           ​‌‍  ⁠　﻿') ELSE identifier_value END), '^[a-z]+://', ''), '^www\\.|[/:?#].*$', ''), '')
  WHEN 'email' THEN NULLIF(LOWER(CASE WHEN STRPOS(' \t\n\r  ᠎           ​‌‍  ⁠　﻿', LEFT(identifier_value, 1)) > 0 OR STRPOS(' \t\n\r  ᠎           ​‌‍  ⁠　﻿', RIGHT(identifier_value, 1)) > 0 THEN TRIM(identifier_value, ' \t\n\r  ᠎           ​‌‍  ⁠　﻿') ELSE identifier_value END), '')
  WHEN 'phone' THEN NULLIF(CASE WHEN LENGTH(REGEXP_REPLACE(identifier_value, '[^0-9]', '')) = 10 THEN '1' || REGEXP_REPLACE(identifier_value, '[^0-9]', '') ELSE REGEXP_REPLACE(identifier_value, '[^0-9]', '') END, '')
  WHEN 'user_id' THEN NULLIF(CASE WHEN STRPOS(' \t\n\r  ᠎           ​‌‍  ⁠　﻿', LEFT(identifier_value, 1)) > 0 OR STRPOS(' \t\n\r  ᠎           ​‌‍  ⁠　﻿', RIGHT(identifier_value, 1)) > 0 THEN TRIM(identifier_value, ' \t\n\r  ᠎           ​‌‍  ⁠　﻿') ELSE identifier_value END, '')
  ELSE NULLIF(CASE WHEN STRPOS(' \t\n\r  ᠎           ​‌‍  ⁠　﻿', LEFT(identifier_value, 1)) > 0 OR STRPOS(' \t\n\r  ᠎           ​‌‍  ⁠　﻿', RIGHT(identifier_value, 1)) > 0 THEN TRIM(identifier_value, ' \t\n\r  ᠎           ​‌‍  ⁠　﻿') ELSE identifier_value END, '')
END AS identifier_value,
       identifier_value AS identifier_value_raw,
       COALESCE(role, 'participant') AS role, source, occurred_at,
       _ingested_at, CAST('2024-01-01 00:00:00' AS TIMESTAMP) AS _loaded_at
FROM `nexus_source`.`crm__identifiers`
WHERE `_ingested_at` <= CAST('2024-01-01 00:00:00' AS TIMESTAMP)
UNION ALL
SELECT id, event_id, edge_id, entity_type, identifier_type,
       CASE identifier_type
  WHEN 'anonymous_id' THEN NULLIF(CASE WHEN STRPOS(' \t\n\r  ᠎           ​‌‍  ⁠　﻿', LEFT(identifier_value, 1)) > 0 OR STRPOS(' \t\n\r  ᠎           ​‌‍  ⁠　﻿', RIGHT(identifier_value, 1)) > 0 THEN TRIM(identifier_value, ' \t\n\r  ᠎           ​‌‍  ⁠　﻿') ELSE identifier_value END, '')
  WHEN 'billing_customer_id' THEN NULLIF(CASE WHEN STRPOS(' \t\n\r  ᠎           ​‌‍  ⁠　﻿', LEFT(identifier_value, 1)) > 0 OR STRPOS(' \t\n\r  ᠎           ​‌‍  ⁠　﻿', RIGHT(identifier_value, 1)) > 0 THEN TRIM(identifier_value, ' \t\n\r  ᠎           ​‌‍  ⁠　﻿') ELSE identifier_value END, '')
  WHEN 'crm_company_id' THEN NULLIF(CASE WHEN STRPOS(' \t\n\r  ᠎           ​‌‍  ⁠　﻿', LEFT(identifier_value, 1)) > 0 OR STRPOS(' \t\n\r  ᠎           ​‌‍  ⁠　﻿', RIGHT(identifier_value, 1)) > 0 THEN TRIM(identifier_value, ' \t\n\r  ᠎           ​‌‍  ⁠　﻿') ELSE identifier_value END, '')
  WHEN 'crm_contact_id' THEN NULLIF(CASE WHEN STRPOS(' \t\n\r  ᠎           ​‌‍  ⁠　﻿', LEFT(identifier_value, 1)) > 0 OR STRPOS(' \t\n\r  ᠎           ​‌‍  ⁠　﻿', RIGHT(identifier_value, 1)) > 0 THEN TRIM(identifier_value, ' \t\n\r  ᠎           ​‌‍  ⁠　﻿') ELSE identifier_value END, '')
  WHEN 'domain' THEN NULLIF(REGEXP_REPLACE(REGEXP_REPLACE(LOWER(CASE WHEN STRPOS(' \t\n\r  ᠎           ​‌‍  ⁠　﻿', LEFT(identifier_value, 1)) > 0 OR STRPOS(' \t\n\r  ᠎           ​‌‍  ⁠　﻿', RIGHT(identifier_value, 1)) > 0 THEN TRIM(identifier_value, ' \t\n\r  ᠎           ​‌‍  ⁠　﻿') ELSE identifier_value END), '^[a-z]+://', ''), '^www\\.|[/:?#].*$', ''), '')
  WHEN 'email' THEN NULLIF(LOWER(CASE WHEN STRPOS(' \t\n\r  ᠎           ​‌‍  ⁠　﻿', LEFT(identifier_value, 1)) > 0 OR STRPOS(' \t\n\r  ᠎           ​‌‍  ⁠　﻿', RIGHT(identifier_value, 1)) > 0 THEN TRIM(identifier_value, ' \t\n\r  ᠎           ​‌‍  ⁠　﻿') ELSE identifier_value END), '')
  WHEN 'phone' THEN NULLIF(CASE WHEN LENGTH(REGEXP_REPLACE(identifier_value, '[^0-9]', '')) = 10 THEN '1' || REGEXP_REPLACE(identifier_value, '[^0-9]', '') ELSE REGEXP_REPLACE(identifier_value, '[^0-9]', '') END, '')
  WHEN 'user_id' THEN NULLIF(CASE WHEN STRPOS(' \t\n\r  ᠎           ​‌‍  ⁠　﻿', LEFT(identifier_value, 1)) > 0 OR STRPOS(' \t\n\r  ᠎           ​‌‍  ⁠　﻿', RIGHT(identifier_value, 1)) > 0 THEN TRIM(identifier_value, ' \t\n\r  ᠎           ​‌‍  ⁠　﻿') ELSE identifier_value END, '')
  ELSE NULLIF(CASE WHEN STRPOS(' \t\n\r  ᠎           ​‌‍  ⁠　﻿', LEFT(identifier_value, 1)) > 0 OR STRPOS(' \t\n\r  ᠎           ​‌‍  ⁠　﻿', RIGHT(identifier_value, 1)) > 0 THEN TRIM(identifier_value, ' \t\n\r  ᠎           ​‌‍  ⁠　﻿') ELSE identifier_value END, '')
END AS identifier_value,
       identifier_value AS identifier_value_raw,
       COALESCE(role, 'participant') AS role, source, occurred_at,
       _ingested_at, CAST('2024-01-01 00:00:00' AS TIMESTAMP) AS _loaded_at
FROM `nexus_source`.`billing__identifiers`
WHERE `_ingested_at` <= CAST('2024-01-01 00:00:00' AS TIMESTAMP)
UNION ALL
SELECT id, event_id, edge_id, entity_type, identifier_type,
       CASE identifier_type
  WHEN 'anonymous_id' THEN NULLIF(CASE WHEN STRPOS(' \t\n\r  ᠎           ​‌‍  ⁠　﻿', LEFT(identifier_value, 1)) > 0 OR STRPOS(' \t\n\r  ᠎           ​‌‍  ⁠　﻿', RIGHT(identifier_value, 1)) > 0 THEN TRIM(identifier_value, ' \t\n\r  ᠎           ​‌‍  ⁠　﻿') ELSE identifier_value END, '')
  WHEN 'billing_customer_id' THEN NULLIF(CASE WHEN STRPOS(' \t\n\r  ᠎           ​‌‍  ⁠　﻿', LEFT(identifier_value, 1)) > 0 OR STRPOS(' \t\n\r  ᠎           ​‌‍  ⁠　﻿', RIGHT(identifier_value, 1)) > 0 THEN TRIM(identifier_value, ' \t\n\r  ᠎           ​‌‍  ⁠　﻿') ELSE identifier_value END, '')
  WHEN 'crm_company_id' THEN NULLIF(CASE WHEN STRPOS(' \t\n\r  ᠎           ​‌‍  ⁠　﻿', LEFT(identifier_value, 1)) > 0 OR STRPOS(' \t\n\r  ᠎           ​‌‍  ⁠　﻿', RIGHT(identifier_value, 1)) > 0 THEN TRIM(identifier_value, ' \t\n\r  ᠎           ​‌‍  ⁠　﻿') ELSE identifier_value END, '')
  WHEN 'crm_contact_id' THEN NULLIF(CASE WHEN STRPOS(' \t\n\r  ᠎           ​‌‍  ⁠　﻿', LEFT(identifier_value, 1)) > 0 OR STRPOS(' \t\n\r  ᠎           ​‌‍  ⁠　﻿', RIGHT(identifier_value, 1)) > 0 THEN TRIM(identifier_value, ' \t\n\r  ᠎           ​‌‍  ⁠　﻿') ELSE identifier_value END, '')
  WHEN 'domain' THEN NULLIF(REGEXP_REPLACE(REGEXP_REPLACE(LOWER(CASE WHEN STRPOS(' \t\n\r  ᠎           ​‌‍  ⁠　﻿', LEFT(identifier_value, 1)) > 0 OR STRPOS(' \t\n\r  ᠎           ​‌‍  ⁠　﻿', RIGHT(identifier_value, 1)) > 0 THEN TRIM(identifier_value, ' \t\n\r  ᠎           ​‌‍  ⁠　﻿') ELSE identifier_value END), '^[a-z]+://', ''), '^www\\.|[/:?#].*$', ''), '')
  WHEN 'email' THEN NULLIF(LOWER(CASE WHEN STRPOS(' \t\n\r  ᠎           ​‌‍  ⁠　﻿', LEFT(identifier_value, 1)) > 0 OR STRPOS(' \t\n\r  ᠎           ​‌‍  ⁠　﻿', RIGHT(identifier_value, 1)) > 0 THEN TRIM(identifier_value, ' \t\n\r  ᠎           ​‌‍  ⁠　﻿') ELSE identifier_value END), '')
  WHEN 'phone' THEN NULLIF(CASE WHEN LENGTH(REGEXP_REPLACE(identifier_value, '[^0-9]', '')) = 10 THEN '1' || REGEXP_REPLACE(identifier_value, '[^0-9]', '') ELSE REGEXP_REPLACE(identifier_value, '[^0-9]', '') END, '')
  WHEN 'user_id' THEN NULLIF(CASE WHEN STRPOS(' \t\n\r  ᠎           ​‌‍  ⁠　﻿', LEFT(identifier_value, 1)) > 0 OR STRPOS(' \t\n\r  ᠎           ​‌‍  ⁠　﻿', RIGHT(identifier_value, 1)) > 0 THEN TRIM(identifier_value, ' \t\n\r  ᠎           ​‌‍  ⁠　﻿') ELSE identifier_value END, '')
  ELSE NULLIF(CASE WHEN STRPOS(' \t\n\r  ᠎           ​‌‍  ⁠　﻿', LEFT(identifier_value, 1)) > 0 OR STRPOS(' \t\n\r  ᠎           ​‌‍  ⁠　﻿', RIGHT(identifier_value, 1)) > 0 THEN TRIM(identifier_value, ' \t\n\r  ᠎           ​‌‍  ⁠　﻿') ELSE identifier_value END, '')
END AS identifier_value,
       identifier_value AS identifier_value_raw,
       COALESCE(role, 'participant') AS role, source, occurred_at,
       _ingested_at, CAST('2024-01-01 00:00:00' AS TIMESTAMP) AS _loaded_at
FROM `nexus_source`.`product__identifiers`
WHERE `_ingested_at` <= CAST('2024-01-01 00:00:00' AS TIMESTAMP)
UNION ALL
SELECT id, event_id, edge_id, entity_type, identifier_type,
       CASE identifier_type
  WHEN 'anonymous_id' THEN NULLIF(CASE WHEN STRPOS(' \t\n\r  ᠎           ​‌‍  ⁠　﻿', LEFT(identifier_value, 1)) > 0 OR STRPOS(' \t\n\r  ᠎           ​‌‍  ⁠　﻿', RIGHT(identifier_value, 1)) > 0 THEN TRIM(identifier_value, ' \t\n\r  ᠎           ​‌‍  ⁠　﻿') ELSE identifier_value END, '')
  WHEN 'billing_customer_id' THEN NULLIF(CASE WHEN STRPOS(' \t\n\r  ᠎           ​‌‍  ⁠　﻿', LEFT(identifier_value, 1)) > 0 OR STRPOS(' \t\n\r  ᠎           ​‌‍  ⁠　﻿', RIGHT(identifier_value, 1)) > 0 THEN TRIM(identifier_value, ' \t\n\r  ᠎           ​‌‍  ⁠　﻿') ELSE identifier_value END, '')
  WHEN 'crm_company_id' THEN NULLIF(CASE WHEN STRPOS(' \t\n\r  ᠎           ​‌‍  ⁠　﻿', LEFT(identifier_value, 1)) > 0 OR STRPOS(' \t\n\r  ᠎           ​‌‍  ⁠　﻿', RIGHT(identifier_value, 1)) > 0 THEN TRIM(identifier_value, ' \t\n\r  ᠎           ​‌‍  ⁠　﻿') ELSE identifier_value END, '')
  WHEN 'crm_contact_id' THEN NULLIF(CASE WHEN STRPOS(' \t\n\r  ᠎           ​‌‍  ⁠　﻿', LEFT(identifier_value, 1)) > 0 OR STRPOS(' \t\n\r  ᠎           ​‌‍  ⁠　﻿', RIGHT(identifier_value, 1)) > 0 THEN TRIM(identifier_value, ' \t\n\r  ᠎           ​‌‍  ⁠　﻿') ELSE identifier_value END, '')
  WHEN 'domain' THEN NULLIF(REGEXP_REPLACE(REGEXP_REPLACE(LOWER(CASE WHEN STRPOS(' \t\n\r  ᠎           ​‌‍  ⁠　﻿', LEFT(identifier_value, 1)) > 0 OR STRPOS(' \t\n\r  ᠎           ​‌‍  ⁠　﻿', RIGHT(identifier_value, 1)) > 0 THEN TRIM(identifier_value, ' \t\n\r  ᠎           ​‌‍  ⁠　﻿') ELSE identifier_value END), '^[a-z]+://', ''), '^www\\.|[/:?#].*$', ''), '')
  WHEN 'email' THEN NULLIF(LOWER(CASE WHEN STRPOS(' \t\n\r  ᠎           ​‌‍  ⁠　﻿', LEFT(identifier_value, 1)) > 0 OR STRPOS(' \t\n\r  ᠎           ​‌‍  ⁠　﻿', RIGHT(identifier_value, 1)) > 0 THEN TRIM(identifier_value, ' \t\n\r  ᠎           ​‌‍  ⁠　﻿') ELSE identifier_value END), '')
  WHEN 'phone' THEN NULLIF(CASE WHEN LENGTH(REGEXP_REPLACE(identifier_value, '[^0-9]', '')) = 10 THEN '1' || REGEXP_REPLACE(identifier_value, '[^0-9]', '') ELSE REGEXP_REPLACE(identifier_value, '[^0-9]', '') END, '')
  WHEN 'user_id' THEN NULLIF(CASE WHEN STRPOS(' \t\n\r  ᠎           ​‌‍  ⁠　﻿', LEFT(identifier_value, 1)) > 0 OR STRPOS(' \t\n\r  ᠎           ​‌‍  ⁠　﻿', RIGHT(identifier_value, 1)) > 0 THEN TRIM(identifier_value, ' \t\n\r  ᠎           ​‌‍  ⁠　﻿') ELSE identifier_value END, '')
  ELSE NULLIF(CASE WHEN STRPOS(' \t\n\r  ᠎           ​‌‍  ⁠　﻿', LEFT(identifier_value, 1)) > 0 OR STRPOS(' \t\n\r  ᠎           ​‌‍  ⁠　﻿', RIGHT(identifier_value, 1)) > 0 THEN TRIM(identifier_value, ' \t\n\r  ᠎           ​‌‍  ⁠　﻿') ELSE identifier_value END, '')
END AS identifier_value,
       identifier_value AS identifier_value_raw,
       COALESCE(role, 'participant') AS role, source, occurred_at,
       _ingested_at, CAST('2024-01-01 00:00:00' AS TIMESTAMP) AS _loaded_at
FROM `nexus_source`.`support__identifiers`
WHERE `_ingested_at` <= CAST('2024-01-01 00:00:00' AS TIMESTAMP)
