SELECT
    md5((COALESCE(CAST('support' AS VARCHAR), '') || '|' || COALESCE(CAST('ticket_created' AS VARCHAR), '') || '|' || COALESCE(CAST(t.ticket_id AS VARCHAR), ''))) AS id,
    CAST(CONVERT_TIMEZONE('UTC', CAST(t.created_at AS TIMESTAMP_TZ)) AS TIMESTAMP_NTZ) AS occurred_at,
    'ticket_created' AS event_name,
    t.subject AS event_description,
    'support' AS event_type,
    'support' AS source,
    CAST(NULL AS DOUBLE) AS value,
    CAST(NULL AS VARCHAR) AS value_unit,
    t._ingested_at
FROM (SELECT * FROM "NEXUS_RAW"."SUPPORT__TICKETS" WHERE "_INGESTED_AT" <= CAST('2024-01-01 00:00:00' AS TIMESTAMP_NTZ)) AS t
WHERE t.ticket_id IS NOT NULL AND TRIM(t.ticket_id) <> ''
