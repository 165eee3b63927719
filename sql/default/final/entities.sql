{#- One row per entity of one type: the latest value of every configured identifier type and
    trait, when it was first and last seen, and which sources know it.
    `changed` (incremental runs): only the entities listed there. -#}
{% macro only(alias) %}{% if changed is defined and changed %}
    JOIN (SELECT entity_id FROM {{ changed.entities }} WHERE entity_type = {{ lit(entity_type) }}) AS c
      ON c.entity_id = {{ alias }}.entity_id
{%- endif %}{% endmacro %}
WITH ids AS (
    SELECT m.entity_id,
{% for identifier in config.identifiers %}
           {{ dialect.arg_max_where('m.identifier_value', 'm.last_seen_at', "m.identifier_type = " ~ lit(identifier)) }} AS {{ q(identifier) }},
{% endfor %}
           MIN(m.first_seen_at) AS first_seen_at,
           MAX(m.last_seen_at) AS last_seen_at,
           {{ dialect.bool_and('m.is_hub') }} AS is_hub,
           MAX(m.resolved_at) AS _updated_at
    FROM {{ map }} AS m{{ only('m') }}
    GROUP BY m.entity_id
),
srcs AS (
    SELECT m.entity_id, {{ dialect.string_agg_distinct('i.source') }} AS sources
    FROM {{ map }} AS m{{ only('m') }}
    JOIN {{ core.identifiers }} AS i
      ON i.entity_type = m.entity_type AND i.identifier_type = m.identifier_type AND i.identifier_value = m.identifier_value
    GROUP BY m.entity_id
){% if config.traits %},
trs AS (
    SELECT t.entity_id,
{% for trait in config.traits %}
           {{ dialect.arg_max_where('t.trait_value', 't.occurred_at', "t.trait_name = " ~ lit(trait)) }} AS {{ q(trait) }}{{ "," if not loop.last }}
{% endfor %}
    FROM {{ traits }} AS t{{ only('t') }}
    WHERE t.entity_type = {{ lit(entity_type) }}
    GROUP BY t.entity_id
){% endif %}

SELECT ids.entity_id AS id,
{% for identifier in config.identifiers %}
       ids.{{ q(identifier) }},
{% endfor %}
{% for trait in config.traits %}
       trs.{{ q(trait) }},
{% endfor %}
       ids.first_seen_at, ids.last_seen_at, srcs.sources, ids.is_hub,
       ids._updated_at
FROM ids
LEFT JOIN srcs ON srcs.entity_id = ids.entity_id
{% if config.traits %}
LEFT JOIN trs ON trs.entity_id = ids.entity_id
{% endif %}
