{#- Support traits: the requester's name as typed on the ticket (only when the requester has an
    email or phone, so the trait has an entity to belong to). -#}
SELECT
    {{ surrogate_key([surrogate_key([lit(source), "'ticket_created'", 't.ticket_id']), "'person'", "'name'", 't.requester_name']) }} AS id,
    {{ surrogate_key([lit(source), "'ticket_created'", 't.ticket_id']) }} AS event_id,
    'support_requester:' || COALESCE(LOWER(TRIM(t.requester_email)), '') || '|' || COALESCE(TRIM(t.requester_phone), '') AS edge_id,
    'person' AS entity_type,
    'name' AS trait_name,
    t.requester_name AS trait_value,
    {{ lit(source) }} AS source,
    {{ to_timestamp('t.created_at') }} AS occurred_at,
    t._ingested_at
FROM {{ batch('tickets') }} AS t
WHERE t.ticket_id IS NOT NULL AND TRIM(t.ticket_id) <> ''
  AND t.requester_name IS NOT NULL AND TRIM(t.requester_name) <> ''
  AND (
      (t.requester_email IS NOT NULL AND TRIM(t.requester_email) <> '')
      OR (t.requester_phone IS NOT NULL AND TRIM(t.requester_phone) <> '')
  )
