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


def render_final(
    engine: TemplateEngine, entity_types: dict[str, EntityTypeConfig], schemas: SchemasConfig, run: RunContext
) -> dict[str, str]:
    """table name -> SELECT, in build order (edge entities first: later tables read it)."""
    d = engine.dialect
    core = {m: d.table(schemas.core, f"nexus_{m}") for m in CORE_MODELS}
    maps = {t: d.table(schemas.resolution, map_table(t)) for t in entity_types}
    common: dict[str, Any] = {"core": core, "maps": maps, "updated_at": run.now}
    all_maps = engine.render("final/all_maps.sql", **common)
    common["all_maps"] = all_maps
    edge_entities = d.table(schemas.final, "nexus__edge_entities")
    traits = d.table(schemas.final, "nexus_entity_traits")
    out = {
        "nexus__edge_entities": engine.render("final/edge_entities.sql", **common),
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
    from airflow_provider_nexus.resolution import ensure_resolution_tables

    d = wh.dialect
    wh.ensure_schema(schemas.core)
    wh.ensure_schema(schemas.final)
    wh.ensure_schema(schemas.resolution)
    for model in CORE_MODELS:
        ensure_model_table(wh, schemas.core, f"nexus_{model}", model, _EXTRA_COLUMNS[model])
    for entity_type in entity_types:
        ensure_resolution_tables(wh, schemas.resolution, entity_type)
    statements = render_final(engine, entity_types, schemas, run)
    counts: dict[str, int] = {}
    with wh.transaction():
        for table, select_sql in statements.items():
            target = d.table(schemas.final, table)
            wh.execute(d.create_table_as(target, select_sql))
            if not table.startswith("nexus__"):
                counts[table] = wh.count(target)
        wh.execute(f"DROP TABLE IF EXISTS {d.table(schemas.final, 'nexus__edge_entities')}")
    for table, rows in counts.items():
        log.info("%s.%s: %d row(s)", schemas.final, table, rows)
    return {"tables": counts}
