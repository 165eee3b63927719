{#- One row per entity of one type: the latest value of every configured identifier type and
    trait, when it was first and last seen, and which sources know it. -#}
WITH ids AS (
    SELECT entity_id,
{% for identifier in config.identifiers %}
           {{ dialect.arg_max_where('identifier_value', 'last_seen_at', "identifier_type = " ~ lit(identifier)) }} AS {{ q(identifier) }},
{% endfor %}
           MIN(first_seen_at) AS first_seen_at,
           MAX(last_seen_at) AS last_seen_at,
           {{ dialect.bool_and('is_hub') }} AS is_hub,
           MAX(resolved_at) AS _updated_at
    FROM {{ map }}
    GROUP BY entity_id
),
srcs AS (
    SELECT m.entity_id, {{ dialect.string_agg_distinct('i.source') }} AS sources
    FROM {{ map }} AS m
    JOIN {{ core.identifiers }} AS i
      ON i.entity_type = m.entity_type AND i.identifier_type = m.identifier_type AND i.identifier_value = m.identifier_value
    GROUP BY m.entity_id
){% if config.traits %},
trs AS (
    SELECT entity_id,
{% for trait in config.traits %}
           {{ dialect.arg_max_where('trait_value', 'occurred_at', "trait_name = " ~ lit(trait)) }} AS {{ q(trait) }}{{ "," if not loop.last }}
{% endfor %}
    FROM {{ traits }}
    WHERE entity_type = {{ lit(entity_type) }}
    GROUP BY entity_id
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
