WITH tickets AS (
    SELECT
        md5((COALESCE(CAST('support' AS VARCHAR), '') || '|' || COALESCE(CAST('ticket_created' AS VARCHAR), '') || '|' || COALESCE(CAST(t.ticket_id AS VARCHAR), ''))) AS event_id,
        'support_requester:' || COALESCE(LOWER(TRIM(t.requester_email)), '') || '|' || COALESCE(TRIM(t.requester_phone), '') AS requester_edge,
        'support_org:' || LOWER(TRIM(t.org_domain)) AS org_edge,
        t.requester_email,
        t.requester_phone,
        t.org_domain,
        CAST(CAST(t.created_at AS TIMESTAMPTZ) AS TIMESTAMP) AS occurred_at,
        t._ingested_at
    FROM (SELECT * FROM "nexus_raw"."support__tickets" WHERE "_ingested_at" <= CAST('2024-01-01 00:00:00' AS TIMESTAMP)) AS t
    WHERE t.ticket_id IS NOT NULL AND TRIM(t.ticket_id) <> ''
),
identifiers AS (
    SELECT event_id, requester_edge AS edge_id, 'person' AS entity_type,
           'email' AS identifier_type, requester_email AS identifier_value, 'requester' AS role,
           occurred_at, _ingested_at
    FROM tickets
    UNION ALL
    SELECT event_id, requester_edge, 'person', 'phone', requester_phone,
           'requester', occurred_at, _ingested_at
    FROM tickets
    UNION ALL
    SELECT event_id, org_edge, 'group', 'domain', org_domain,
           'organization', occurred_at, _ingested_at
    FROM tickets
)
SELECT
    md5((COALESCE(CAST(event_id AS VARCHAR), '') || '|' || COALESCE(CAST(entity_type AS VARCHAR), '') || '|' || COALESCE(CAST(identifier_type AS VARCHAR), '') || '|' || COALESCE(CAST(identifier_value AS VARCHAR), ''))) AS id,
    event_id,
    edge_id,
    entity_type,
    identifier_type,
    identifier_value,
    role,
    'support' AS source,
    occurred_at,
    _ingested_at
FROM identifiers
WHERE identifier_value IS NOT NULL AND TRIM(identifier_value) <> ''
