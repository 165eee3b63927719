SELECT id, occurred_at, event_name, event_description, event_type, source, value, value_unit, _ingested_at
FROM `nexus_core`.`nexus_events`
