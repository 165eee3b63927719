SELECT e.id, e.occurred_at, e.event_name, e.event_description, e.event_type, e.source, e.value, e.value_unit, e._ingested_at
FROM "NEXUS_CORE"."NEXUS_EVENTS" AS e
