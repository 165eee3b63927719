{#- Which entity each (source, edge_id, entity_type) group belongs to. A group's identifiers share
    one entity by construction; a hub identifier stands alone, so prefer a non-hub member.
    `changed` (incremental runs): only the groups listed there.
    Read only entity_id and is_hub from the maps: an incremental run recomputes a group
    when one of its identifiers changes either, not when only its sightings move. -#}
SELECT i.source, i.edge_id, i.entity_type,
       COALESCE(MIN(CASE WHEN NOT m.is_hub THEN m.entity_id END), MIN(m.entity_id)) AS entity_id
FROM {{ core.identifiers }} AS i
{% if changed is defined and changed %}
JOIN {{ changed.groups }} AS c
  ON c.source = i.source AND c.edge_id = i.edge_id AND c.entity_type = i.entity_type
{% endif %}
JOIN {{ all_maps }} AS m
  ON m.entity_type = i.entity_type
 AND m.identifier_type = i.identifier_type
 AND m.identifier_value = i.identifier_value
WHERE i.edge_id IS NOT NULL
GROUP BY i.source, i.edge_id, i.entity_type
