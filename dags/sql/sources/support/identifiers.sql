{#- Support identifiers: the requester of a ticket is one person (email, phone); the organisation
    named on the ticket is one group (domain). Both take part in the ticket_created event.
    edge_id is keyed by the requester's (email, phone) pair and by the domain, not by ticket: a
    frequent requester is one edge group, so hub limits flag values shared by many people (an
    office line, a noreply address), not busy customers. -#}
WITH tickets AS (
    SELECT
        {{ surrogate_key([lit(source), "'ticket_created'", 't.ticket_id']) }} AS event_id,
        'support_requester:' || COALESCE(LOWER(TRIM(t.requester_email)), '') || '|' || COALESCE(TRIM(t.requester_phone), '') AS requester_edge,
        'support_org:' || LOWER(TRIM(t.org_domain)) AS org_edge,
        t.requester_email,
        t.requester_phone,
        t.org_domain,
        {{ to_timestamp('t.created_at') }} AS occurred_at,
        t._ingested_at
    FROM {{ batch('tickets') }} AS t
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
