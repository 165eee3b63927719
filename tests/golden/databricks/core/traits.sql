SELECT id, event_id, edge_id, entity_type, trait_name, trait_value, source, occurred_at,
       _ingested_at, CAST('2024-01-01 00:00:00' AS TIMESTAMP_NTZ) AS _loaded_at
FROM `nexus_source`.`crm__traits`
WHERE `_ingested_at` <= CAST('2024-01-01 00:00:00' AS TIMESTAMP_NTZ)
UNION ALL
SELECT id, event_id, edge_id, entity_type, trait_name, trait_value, source, occurred_at,
       _ingested_at, CAST('2024-01-01 00:00:00' AS TIMESTAMP_NTZ) AS _loaded_at
FROM `nexus_source`.`billing__traits`
WHERE `_ingested_at` <= CAST('2024-01-01 00:00:00' AS TIMESTAMP_NTZ)
UNION ALL
SELECT id, event_id, edge_id, entity_type, trait_name, trait_value, source, occurred_at,
       _ingested_at, CAST('2024-01-01 00:00:00' AS TIMESTAMP_NTZ) AS _loaded_at
FROM `nexus_source`.`product__traits`
WHERE `_ingested_at` <= CAST('2024-01-01 00:00:00' AS TIMESTAMP_NTZ)
UNION ALL
SELECT id, event_id, edge_id, entity_type, trait_name, trait_value, source, occurred_at,
       _ingested_at, CAST('2024-01-01 00:00:00' AS TIMESTAMP_NTZ) AS _loaded_at
FROM `nexus_source`.`support__traits`
WHERE `_ingested_at` <= CAST('2024-01-01 00:00:00' AS TIMESTAMP_NTZ)
