{#- Product traits: the plan a logged-in person is on when the event happens (same edge_id as the
    event's identifiers). -#}
SELECT
    {{ surrogate_key([surrogate_key([lit(source), 'e.event_id']), "'person'", "'plan'", 'e.plan']) }} AS id,
    {{ surrogate_key([lit(source), 'e.event_id']) }} AS event_id,
    CASE
        WHEN e.user_id IS NOT NULL AND TRIM(e.user_id) <> ''
            THEN 'product_user:' || e.user_id || '|' || COALESCE(e.anonymous_id, '')
        ELSE 'product_anon:' || e.anonymous_id
    END AS edge_id,
    'person' AS entity_type,
    'plan' AS trait_name,
    e.plan AS trait_value,
    {{ lit(source) }} AS source,
    {{ to_timestamp('e.timestamp') }} AS occurred_at,
    e._ingested_at
FROM {{ batch('events') }} AS e
WHERE e.event_id IS NOT NULL AND TRIM(e.event_id) <> ''
  AND e.plan IS NOT NULL AND TRIM(e.plan) <> ''
