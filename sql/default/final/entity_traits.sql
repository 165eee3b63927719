{#- `changed` (incremental runs): only the trait rows whose ids are listed there. -#}
SELECT t.entity_type, e.entity_id, t.trait_name, t.trait_value, t.source, t.occurred_at, t.id AS trait_id
FROM {{ core.traits }} AS t
{% if changed is defined and changed %}
JOIN {{ changed.traits }} AS c ON c.id = t.id
{% endif %}
JOIN {{ edge_entities }} AS e
  ON e.source = t.source AND e.edge_id = t.edge_id AND e.entity_type = t.entity_type
