SELECT id, event_id, edge_id, entity_type, trait_name, trait_value, source, occurred_at,
       _ingested_at, CAST('2024-01-01 00:00:00' AS TIMESTAMP_NTZ) AS _loaded_at
FROM "NEXUS_SOURCE"."CRM__TRAITS"
WHERE "_INGESTED_AT" <= CAST('2024-01-01 00:00:00' AS TIMESTAMP_NTZ)
UNION ALL
SELECT id, event_id, edge_id, entity_type, trait_name, trait_value, source, occurred_at,
       _ingested_at, CAST('2024-01-01 00:00:00' AS TIMESTAMP_NTZ) AS _loaded_at
FROM "NEXUS_SOURCE"."BILLING__TRAITS"
WHERE "_INGESTED_AT" <= CAST('2024-01-01 00:00:00' AS TIMESTAMP_NTZ)
UNION ALL
SELECT id, event_id, edge_id, entity_type, trait_name, trait_value, source, occurred_at,
       _ingested_at, CAST('2024-01-01 00:00:00' AS TIMESTAMP_NTZ) AS _loaded_at
FROM "NEXUS_SOURCE"."PRODUCT__TRAITS"
WHERE "_INGESTED_AT" <= CAST('2024-01-01 00:00:00' AS TIMESTAMP_NTZ)
UNION ALL
SELECT id, event_id, edge_id, entity_type, trait_name, trait_value, source, occurred_at,
       _ingested_at, CAST('2024-01-01 00:00:00' AS TIMESTAMP_NTZ) AS _loaded_at
FROM "NEXUS_SOURCE"."SUPPORT__TRAITS"
WHERE "_INGESTED_AT" <= CAST('2024-01-01 00:00:00' AS TIMESTAMP_NTZ)
