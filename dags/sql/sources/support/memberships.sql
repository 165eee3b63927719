{#- Support memberships: the requester (by email, else phone) belongs to the organisation on the
    ticket. -#}
WITH tickets AS (
    SELECT
        {{ surrogate_key([lit(source), "'ticket_created'", 't.ticket_id']) }} AS event_id,
        CASE
            WHEN t.requester_email IS NOT NULL AND TRIM(t.requester_email) <> '' THEN 'email'
            WHEN t.requester_phone IS NOT NULL AND TRIM(t.requester_phone) <> '' THEN 'phone'
        END AS person_identifier_type,
        CASE
            WHEN t.requester_email IS NOT NULL AND TRIM(t.requester_email) <> '' THEN t.requester_email
            WHEN t.requester_phone IS NOT NULL AND TRIM(t.requester_phone) <> '' THEN t.requester_phone
        END AS person_identifier_value,
        t.org_domain,
        {{ to_timestamp('t.created_at') }} AS occurred_at,
        t._ingested_at
    FROM {{ batch('tickets') }} AS t
    WHERE t.ticket_id IS NOT NULL AND TRIM(t.ticket_id) <> ''
      AND t.org_domain IS NOT NULL AND TRIM(t.org_domain) <> ''
)
SELECT
    {{ surrogate_key(['event_id', 'person_identifier_type', 'person_identifier_value', "'domain'", 'org_domain']) }} AS id,
    event_id,
    person_identifier_type,
    person_identifier_value,
    'domain' AS group_identifier_type,
    org_domain AS group_identifier_value,
    'requester' AS role,
    {{ lit(source) }} AS source,
    occurred_at,
    _ingested_at
FROM tickets
WHERE person_identifier_value IS NOT NULL
