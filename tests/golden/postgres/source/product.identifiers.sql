WITH events AS (
    SELECT
        md5((COALESCE(CAST('product' AS TEXT), '') || '|' || COALESCE(CAST(e.event_id AS TEXT), ''))) AS event_id,
        CASE
            WHEN e.user_id IS NOT NULL AND TRIM(e.user_id) <> ''
                THEN 'product_user:' || e.user_id || '|' || COALESCE(e.anonymous_id, '')
            ELSE 'product_anon:' || e.anonymous_id
        END AS edge_id,
        e.anonymous_id,
        e.user_id,
        e.email,
        CAST(CAST(e.timestamp AS TIMESTAMPTZ) AS TIMESTAMP) AS occurred_at,
        e._ingested_at
    FROM (SELECT * FROM "nexus_raw"."product__events" WHERE "_ingested_at" <= CAST('2024-01-01 00:00:00' AS TIMESTAMP)) AS e
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
    md5((COALESCE(CAST(event_id AS TEXT), '') || '|' || COALESCE(CAST(entity_type AS TEXT), '') || '|' || COALESCE(CAST(identifier_type AS TEXT), '') || '|' || COALESCE(CAST(identifier_value AS TEXT), ''))) AS id,
    event_id,
    edge_id,
    entity_type,
    identifier_type,
    identifier_value,
    role,
    'product' AS source,
    occurred_at,
    _ingested_at
FROM identifiers
WHERE identifier_value IS NOT NULL AND TRIM(identifier_value) <> ''
