SELECT id, occurred_at, event_name, event_description, event_type, source, value, value_unit,
       _ingested_at, CAST('2024-01-01 00:00:00' AS TIMESTAMP_NTZ) AS _loaded_at
FROM "NEXUS_SOURCE"."CRM__EVENTS"
WHERE "_INGESTED_AT" <= CAST('2024-01-01 00:00:00' AS TIMESTAMP_NTZ)
UNION ALL
SELECT id, occurred_at, event_name, event_description, event_type, source, value, value_unit,
       _ingested_at, CAST('2024-01-01 00:00:00' AS TIMESTAMP_NTZ) AS _loaded_at
FROM "NEXUS_SOURCE"."BILLING__EVENTS"
WHERE "_INGESTED_AT" <= CAST('2024-01-01 00:00:00' AS TIMESTAMP_NTZ)
UNION ALL
SELECT id, occurred_at, event_name, event_description, event_type, source, value, value_unit,
       _ingested_at, CAST('2024-01-01 00:00:00' AS TIMESTAMP_NTZ) AS _loaded_at
FROM "NEXUS_SOURCE"."PRODUCT__EVENTS"
WHERE "_INGESTED_AT" <= CAST('2024-01-01 00:00:00' AS TIMESTAMP_NTZ)
UNION ALL
SELECT id, occurred_at, event_name, event_description, event_type, source, value, value_unit,
       _ingested_at, CAST('2024-01-01 00:00:00' AS TIMESTAMP_NTZ) AS _loaded_at
FROM "NEXUS_SOURCE"."SUPPORT__EVENTS"
WHERE "_INGESTED_AT" <= CAST('2024-01-01 00:00:00' AS TIMESTAMP_NTZ)
