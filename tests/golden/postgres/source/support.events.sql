SELECT
    md5((COALESCE(CAST('support' AS TEXT), '') || '|' || COALESCE(CAST('ticket_created' AS TEXT), '') || '|' || COALESCE(CAST(t.ticket_id AS TEXT), ''))) AS id,
    CAST(CAST(t.created_at AS TIMESTAMPTZ) AS TIMESTAMP) AS occurred_at,
    'ticket_created' AS event_name,
    t.subject AS event_description,
    'support' AS event_type,
    'support' AS source,
    CAST(NULL AS DOUBLE PRECISION) AS value,
    CAST(NULL AS TEXT) AS value_unit,
    t._ingested_at
FROM (SELECT * FROM "nexus_raw"."support__tickets" WHERE "_ingested_at" <= CAST('2024-01-01 00:00:00' AS TIMESTAMP)) AS t
WHERE t.ticket_id IS NOT NULL AND TRIM(t.ticket_id) <> ''
