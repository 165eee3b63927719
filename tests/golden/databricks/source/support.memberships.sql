WITH tickets AS (
    SELECT
        md5((COALESCE(CAST('support' AS STRING), '') || '|' || COALESCE(CAST('ticket_created' AS STRING), '') || '|' || COALESCE(CAST(t.ticket_id AS STRING), ''))) AS event_id,
        CASE
            WHEN t.requester_email IS NOT NULL AND TRIM(t.requester_email) <> '' THEN 'email'
            WHEN t.requester_phone IS NOT NULL AND TRIM(t.requester_phone) <> '' THEN 'phone'
        END AS person_identifier_type,
        CASE
            WHEN t.requester_email IS NOT NULL AND TRIM(t.requester_email) <> '' THEN t.requester_email
            WHEN t.requester_phone IS NOT NULL AND TRIM(t.requester_phone) <> '' THEN t.requester_phone
        END AS person_identifier_value,
        t.org_domain,
        CAST(CAST(t.created_at AS TIMESTAMP) AS TIMESTAMP_NTZ) AS occurred_at,
        t._ingested_at
    FROM (SELECT * FROM `nexus_raw`.`support__tickets` WHERE `_ingested_at` <= CAST('2024-01-01 00:00:00' AS TIMESTAMP_NTZ)) AS t
    WHERE t.ticket_id IS NOT NULL AND TRIM(t.ticket_id) <> ''
      AND t.org_domain IS NOT NULL AND TRIM(t.org_domain) <> ''
)
SELECT
    md5((COALESCE(CAST(event_id AS STRING), '') || '|' || COALESCE(CAST(person_identifier_type AS STRING), '') || '|' || COALESCE(CAST(person_identifier_value AS STRING), '') || '|' || COALESCE(CAST('domain' AS STRING), '') || '|' || COALESCE(CAST(org_domain AS STRING), ''))) AS id,
    event_id,
    person_identifier_type,
    person_identifier_value,
    'domain' AS group_identifier_type,
    org_domain AS group_identifier_value,
    'requester' AS role,
    'support' AS source,
    occurred_at,
    _ingested_at
FROM tickets
WHERE person_identifier_value IS NOT NULL
