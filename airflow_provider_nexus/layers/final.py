"""Final tables: the customer model people query, rebuilt atomically from core and the maps.

Every table is replaced inside one transaction, so readers see the previous complete model or
the new one, never a mix, and a re-run gives identical rows.
"""

from __future__ import annotations

import logging
from typing import Any

from airflow_provider_nexus.config import EntityTypeConfig, SchemasConfig
from airflow_provider_nexus.layers.common import RunContext, ensure_model_table
from airflow_provider_nexus.layers.core import _EXTRA_COLUMNS, CORE_MODELS
from airflow_provider_nexus.templates import TemplateEngine
from airflow_provider_nexus.warehouse import Warehouse

log = logging.getLogger(__name__)


def map_table(entity_type: str) -> str:
    return f"nexus_{entity_type}_identity_map"


def entity_table(entity_type: str) -> str:
    return f"nexus_{entity_type}s"


def final_tables(entity_types: dict[str, EntityTypeConfig]) -> list[str]:
    """Names of every table the final layer writes (for Assets and docs)."""
    names = ["nexus_events", "nexus_entity_identifiers", "nexus_entity_traits", "nexus_event_participants"]
    names += [entity_table(t) for t in entity_types]
    if {"person", "group"} <= set(entity_types):
        names.append("nexus_memberships")
    return names


STAGED_PREFIX = "nexus__next_"
EDGE_ENTITIES = "nexus__edge_entities"


def render_final(
    engine: TemplateEngine,
    entity_types: dict[str, EntityTypeConfig],
    schemas: SchemasConfig,
    run: RunContext,
    staged: bool = False,
) -> dict[str, str]:
    """table name -> SELECT, in build order (later tables read earlier ones).

    With `staged`, tables read each other under their staging names, as build_final builds them.
    """
    prefix = STAGED_PREFIX if staged else ""
    d = engine.dialect
    core = {m: d.table(schemas.core, f"nexus_{m}") for m in CORE_MODELS}
    maps = {t: d.table(schemas.resolution, map_table(t)) for t in entity_types}
    common: dict[str, Any] = {"core": core, "maps": maps, "updated_at": run.now}
    all_maps = engine.render("final/all_maps.sql", **common)
    common["all_maps"] = all_maps
    edge_entities = d.table(schemas.final, EDGE_ENTITIES)
    traits = d.table(schemas.final, prefix + "nexus_entity_traits")
    out = {
        EDGE_ENTITIES: engine.render("final/edge_entities.sql", **common),
        "nexus_events": engine.render("final/events.sql", **common),
        "nexus_entity_identifiers": engine.render("final/entity_identifiers.sql", **common),
        "nexus_entity_traits": engine.render("final/entity_traits.sql", edge_entities=edge_entities, **common),
        "nexus_event_participants": engine.render("final/event_participants.sql", **common),
    }
    for entity_type, config in entity_types.items():
        out[entity_table(entity_type)] = engine.render(
            "final/entities.sql", entity_type=entity_type, config=config, map=maps[entity_type], traits=traits, **common
        )
    if {"person", "group"} <= set(entity_types):
        out["nexus_memberships"] = engine.render("final/memberships.sql", **common)
    return out


def build_final(
    wh: Warehouse,
    engine: TemplateEngine,
    entity_types: dict[str, EntityTypeConfig],
    schemas: SchemasConfig,
    run: RunContext,
) -> dict[str, Any]:
    """Build every final table under a staging name, then publish them all at once."""
    from airflow_provider_nexus.resolution import ensure_resolution_tables

    d = wh.dialect
    wh.ensure_schema(schemas.core)
    wh.ensure_schema(schemas.final)
    wh.ensure_schema(schemas.resolution)
    for model in CORE_MODELS:
        ensure_model_table(wh, schemas.core, f"nexus_{model}", model, _EXTRA_COLUMNS[model])
    for entity_type in entity_types:
        ensure_resolution_tables(wh, schemas.resolution, entity_type)
    statements = render_final(engine, entity_types, schemas, run, staged=True)
    counts: dict[str, int] = {}
    built: list[str] = []
    try:
        for table, select_sql in statements.items():
            name = table if table == EDGE_ENTITIES else STAGED_PREFIX + table
            built.append(name)
            wh.execute(d.create_table_as(d.table(schemas.final, name), select_sql))
            if table != EDGE_ENTITIES:
                counts[table] = wh.count(d.table(schemas.final, name))
        d.publish_tables(wh, schemas.final, [(STAGED_PREFIX + table, table) for table in counts])
    finally:
        for name in built:
            wh.execute(f"DROP TABLE IF EXISTS {d.table(schemas.final, name)}")
    for table, rows in counts.items():
        log.info("%s.%s: %d row(s)", schemas.final, table, rows)
    return {"tables": counts}
