{#- Product identifiers. Everything seen on one event is one person: browsing events carry only
    the anonymous id; once the person logs in, events carry the user_id too, and `identify`
    events add the email, which links device, account and address.
    edge_id is keyed by the (user_id, anonymous_id) pair, not by event: a busy device yields one
    edge group, not thousands, so hub limits (values seen in too many edge groups) still mean
    "shared by many people", not "used a lot". -#}
WITH events AS (
    SELECT
        {{ surrogate_key([lit(source), 'e.event_id']) }} AS event_id,
        CASE
            WHEN e.user_id IS NOT NULL AND TRIM(e.user_id) <> ''
                THEN 'product_user:' || e.user_id || '|' || COALESCE(e.anonymous_id, '')
            ELSE 'product_anon:' || e.anonymous_id
        END AS edge_id,
        e.anonymous_id,
        e.user_id,
        e.email,
        {{ to_timestamp('e.timestamp') }} AS occurred_at,
        e._ingested_at
    FROM {{ batch('events') }} AS e
    WHERE e.event_id IS NOT NULL AND TRIM(e.event_id) <> ''
),
identifiers AS (
    SELECT event_id, edge_id, 'person' AS entity_type, 'anonymous_id' AS identifier_type,
           anonymous_id AS identifier_value, 'actor' AS role, occurred_at, _ingested_at
    FROM events
    UNION ALL
    SELECT event_id, edge_id, 'person', 'user_id', user_id, 'actor', occurred_at, _ingested_at
    FROM events
    UNION ALL
    SELECT event_id, edge_id, 'person', 'email', email, 'actor', occurred_at, _ingested_at
    FROM events
)
SELECT
    {{ surrogate_key(['event_id', 'entity_type', 'identifier_type', 'identifier_value']) }} AS id,
    event_id,
    edge_id,
    entity_type,
    identifier_type,
    identifier_value,
    role,
    {{ lit(source) }} AS source,
    occurred_at,
    _ingested_at
FROM identifiers
WHERE identifier_value IS NOT NULL AND TRIM(identifier_value) <> ''
