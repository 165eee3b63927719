{#- `changed` (incremental runs): only the events whose ids are listed there.
    Read only entity_id and is_hub from the maps: an incremental run recomputes an event
    when one of its identifiers changes either, not when only its sightings move. -#}
SELECT DISTINCT i.event_id, i.entity_type, m.entity_id, i.role
FROM {{ core.identifiers }} AS i
{% if changed is defined and changed %}
JOIN {{ changed.participant_events }} AS c ON c.event_id = i.event_id
{% endif %}
JOIN {{ all_maps }} AS m
  ON m.entity_type = i.entity_type
 AND m.identifier_type = i.identifier_type
 AND m.identifier_value = i.identifier_value
WHERE i.event_id IS NOT NULL
