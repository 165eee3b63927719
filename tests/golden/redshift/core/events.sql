SELECT id, occurred_at, event_name, event_description, event_type, source, value, value_unit,
       _ingested_at, CAST('2024-01-01 00:00:00' AS TIMESTAMP) AS _loaded_at
FROM "nexus_source"."crm__events"
WHERE "_ingested_at" <= CAST('2024-01-01 00:00:00' AS TIMESTAMP)
UNION ALL
SELECT id, occurred_at, event_name, event_description, event_type, source, value, value_unit,
       _ingested_at, CAST('2024-01-01 00:00:00' AS TIMESTAMP) AS _loaded_at
FROM "nexus_source"."billing__events"
WHERE "_ingested_at" <= CAST('2024-01-01 00:00:00' AS TIMESTAMP)
UNION ALL
SELECT id, occurred_at, event_name, event_description, event_type, source, value, value_unit,
       _ingested_at, CAST('2024-01-01 00:00:00' AS TIMESTAMP) AS _loaded_at
FROM "nexus_source"."product__events"
WHERE "_ingested_at" <= CAST('2024-01-01 00:00:00' AS TIMESTAMP)
UNION ALL
SELECT id, occurred_at, event_name, event_description, event_type, source, value, value_unit,
       _ingested_at, CAST('2024-01-01 00:00:00' AS TIMESTAMP) AS _loaded_at
FROM "nexus_source"."support__events"
WHERE "_ingested_at" <= CAST('2024-01-01 00:00:00' AS TIMESTAMP)
