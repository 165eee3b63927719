{#- `changed` (incremental runs): only the memberships of the changed persons and of the groups
    whose identifiers moved to another entity (a group's other changes leave its memberships as
    they are), one SELECT for each side (an OR of the two subqueries would not plan as joins). -#}
{% macro memberships() %}
SELECT DISTINCT p.entity_id AS person_id, g.entity_id AS group_id, ms.role, ms.occurred_at, ms.source
FROM {{ core.memberships }} AS ms
JOIN {{ maps.person }} AS p
  ON p.identifier_type = ms.person_identifier_type AND p.identifier_value = ms.person_identifier_value
JOIN {{ maps.group }} AS g
  ON g.identifier_type = ms.group_identifier_type AND g.identifier_value = ms.group_identifier_value
{%- endmacro %}
{% if changed is defined and changed %}
SELECT DISTINCT * FROM (
{{ memberships() }}
WHERE p.entity_id IN (SELECT entity_id FROM {{ changed.entities }} WHERE entity_type = 'person')
UNION ALL
{{ memberships() }}
WHERE g.entity_id IN (SELECT entity_id FROM {{ changed.moved_entities }} WHERE entity_type = 'group')
) AS m
{% else %}
{{ memberships() }}
{% endif %}
