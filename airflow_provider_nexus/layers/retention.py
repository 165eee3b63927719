"""Pruning of replaced core rows once every incremental reader has read past them.

Core copies each row it replaces into `nexus_core.nexus_<model>_retracted`, stamped with
`_retracted_at`. Two kinds of readers subtract those rows on their next incremental run, each
from its own cut: identity resolution (per entity type, identifier rows only, from its state's
`loaded_high`) and the final layer (every model, from its state's `core_high`). A row stamped at
or before every reader's cut is never read again, so it can go. A reader without a state row
reads nothing from these tables (its next run is a full one) and holds nothing back; with no
reader at all, nothing is pruned.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime

from airflow_provider_nexus.config import SchemasConfig
from airflow_provider_nexus.layers.common import FINAL_STATE, RETRACTED_AT, retracted_table_name
from airflow_provider_nexus.warehouse import Warehouse

log = logging.getLogger(__name__)

#: Core models whose replaced rows identity resolution reads (the final layer reads them all).
RESOLUTION_MODELS = ("identifiers",)


def _cut(wh: Warehouse, schema: str, table: str, column: str) -> datetime | None:
    """The reader's cut from its one-row state table, or None (no table, no row, no cut)."""
    if not wh.table_exists(schema, table):
        return None
    rows = wh.fetchall(f"SELECT {column} FROM {wh.dialect.table(schema, table)}")
    return rows[0][0] if len(rows) == 1 else None


def retraction_horizons(
    wh: Warehouse, schemas: SchemasConfig, entity_types: Iterable[str], models: Iterable[str]
) -> dict[str, datetime]:
    """Per core model: the instant up to which every reader with a state has read its replaced
    rows. Models that no reader has a cut for are left out."""
    # imported here: the DAG factory imports the layers, and parsing a DAG must stay cheap
    from airflow_provider_nexus.resolution.resolve import state_table_names

    final_cut = _cut(wh, schemas.core, FINAL_STATE, "core_high")
    resolution_cuts = [
        _cut(wh, schemas.resolution, state_table_names(entity_type)["state"], "loaded_high")
        for entity_type in entity_types
    ]
    horizons: dict[str, datetime] = {}
    for model in models:
        cuts = [final_cut] + (resolution_cuts if model in RESOLUTION_MODELS else [])
        known = [c for c in cuts if c is not None]
        if known:
            horizons[model] = min(known)
    return horizons


def prune_retracted(
    wh: Warehouse, schemas: SchemasConfig, entity_types: Iterable[str], models: Iterable[str]
) -> dict[str, int]:
    """Delete replaced rows that every reader has read past; rows deleted per model.

    Safe at any time: what it deletes is at or before every reader's cut, and a reader's cut only
    moves forward. Each model is one DELETE (atomic on its own).
    """
    d = wh.dialect
    pruned: dict[str, int] = {}
    for model, horizon in retraction_horizons(wh, schemas, entity_types, models).items():
        if not wh.table_exists(schemas.core, retracted_table_name(model)):
            continue
        table = d.table(schemas.core, retracted_table_name(model))
        old = f"{d.quote(RETRACTED_AT)} <= CAST({d.literal(horizon)} AS {d.timestamp_type})"
        count = int(wh.scalar(f"SELECT count(*) FROM {table} WHERE {old}") or 0)
        if count:
            wh.execute(f"DELETE FROM {table} WHERE {old}")
            log.info("%s: %d replaced row(s) read by every reader pruned (up to %s)", table, count, horizon)
        pruned[model] = count
    return pruned


__all__ = ["prune_retracted", "retraction_horizons"]
