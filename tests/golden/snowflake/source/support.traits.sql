SELECT
    md5((COALESCE(CAST(md5((COALESCE(CAST('support' AS VARCHAR), '') || '|' || COALESCE(CAST('ticket_created' AS VARCHAR), '') || '|' || COALESCE(CAST(t.ticket_id AS VARCHAR), ''))) AS VARCHAR), '') || '|' || COALESCE(CAST('person' AS VARCHAR), '') || '|' || COALESCE(CAST('name' AS VARCHAR), '') || '|' || COALESCE(CAST(t.requester_name AS VARCHAR), ''))) AS id,
    md5((COALESCE(CAST('support' AS VARCHAR), '') || '|' || COALESCE(CAST('ticket_created' AS VARCHAR), '') || '|' || COALESCE(CAST(t.ticket_id AS VARCHAR), ''))) AS event_id,
    'support_requester:' || COALESCE(LOWER(TRIM(t.requester_email)), '') || '|' || COALESCE(TRIM(t.requester_phone), '') AS edge_id,
    'person' AS entity_type,
    'name' AS trait_name,
    t.requester_name AS trait_value,
    'support' AS source,
    CAST(CONVERT_TIMEZONE('UTC', CAST(t.created_at AS TIMESTAMP_TZ)) AS TIMESTAMP_NTZ) AS occurred_at,
    t._ingested_at
FROM (SELECT * FROM "NEXUS_RAW"."SUPPORT__TICKETS" WHERE "_INGESTED_AT" <= CAST('2024-01-01 00:00:00' AS TIMESTAMP_NTZ)) AS t
WHERE t.ticket_id IS NOT NULL AND TRIM(t.ticket_id) <> ''
  AND t.requester_name IS NOT NULL AND TRIM(t.requester_name) <> ''
  AND (
      (t.requester_email IS NOT NULL AND TRIM(t.requester_email) <> '')
      OR (t.requester_phone IS NOT NULL AND TRIM(t.requester_phone) <> '')
  )
