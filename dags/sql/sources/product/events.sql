{#- Product analytics: one event per tracked event. -#}
SELECT
    {{ surrogate_key([lit(source), 'e.event_id']) }} AS id,
    {{ to_timestamp('e.timestamp') }} AS occurred_at,
    e.event AS event_name,
    CASE
        WHEN e.feature IS NOT NULL AND TRIM(e.feature) <> '' THEN e.event || ': ' || e.feature
        ELSE e.event
    END AS event_description,
    'product' AS event_type,
    {{ lit(source) }} AS source,
    {{ to_double('NULL') }} AS value,
    {{ to_text('NULL') }} AS value_unit,
    e._ingested_at
FROM {{ batch('events') }} AS e
WHERE e.event_id IS NOT NULL AND TRIM(e.event_id) <> ''
