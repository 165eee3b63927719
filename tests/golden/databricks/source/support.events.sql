SELECT
    md5((COALESCE(CAST('support' AS STRING), '') || '|' || COALESCE(CAST('ticket_created' AS STRING), '') || '|' || COALESCE(CAST(t.ticket_id AS STRING), ''))) AS id,
    CAST(CAST(t.created_at AS TIMESTAMP) AS TIMESTAMP_NTZ) AS occurred_at,
    'ticket_created' AS event_name,
    t.subject AS event_description,
    'support' AS event_type,
    'support' AS source,
    CAST(NULL AS DOUBLE) AS value,
    CAST(NULL AS STRING) AS value_unit,
    t._ingested_at
FROM (SELECT * FROM `nexus_raw`.`support__tickets` WHERE `_ingested_at` <= CAST('2024-01-01 00:00:00' AS TIMESTAMP_NTZ)) AS t
WHERE t.ticket_id IS NOT NULL AND TRIM(t.ticket_id) <> ''
