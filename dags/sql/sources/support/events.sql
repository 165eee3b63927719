{#- Support: one event per ticket, described by its subject. -#}
SELECT
    {{ surrogate_key([lit(source), "'ticket_created'", 't.ticket_id']) }} AS id,
    {{ to_timestamp('t.created_at') }} AS occurred_at,
    'ticket_created' AS event_name,
    t.subject AS event_description,
    'support' AS event_type,
    {{ lit(source) }} AS source,
    {{ to_double('NULL') }} AS value,
    {{ to_text('NULL') }} AS value_unit,
    t._ingested_at
FROM {{ batch('tickets') }} AS t
WHERE t.ticket_id IS NOT NULL AND TRIM(t.ticket_id) <> ''
