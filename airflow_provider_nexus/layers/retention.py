"""Pruning of replaced core rows once every incremental reader has read past them.

Core copies each row it replaces into `nexus_core.nexus_<model>_retracted`, stamped with
`_retracted_at`. Two kinds of readers subtract those rows on their next incremental run, each
from its own cut: identity resolution (per entity type, that type's identifier rows only, from
its state's `loaded_high`) and the final layer (every model, from its state's `core_high`). A
copy stamped at or before the cut of every reader of its rows is never read again, so it can
go. A reader without a state row reads nothing from these tables (its next run is a full one)
and holds nothing back; rows that no reader has a cut for are kept.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from airflow_provider_nexus.config import SchemasConfig
from airflow_provider_nexus.layers.common import FINAL_STATE, RETRACTED_AT, retracted_table_name
from airflow_provider_nexus.warehouse import Warehouse

log = logging.getLogger(__name__)

#: The core model whose replaced rows identity resolution reads, each entity type its own.
RESOLVED_MODEL = "identifiers"


@dataclass(frozen=True)
class Horizon:
    """Copies of `model` stamped at or before `until` are read by no one; `entity_type` limits
    that to one type's rows, `other_than` to the rows of every type not listed."""

    model: str
    until: datetime
    entity_type: str | None = None
    other_than: tuple[str, ...] = ()


def _cut(wh: Warehouse, schema: str, table: str, column: str) -> datetime | None:
    """The reader's cut from its one-row state table, or None (no table, no row, no cut)."""
    if not wh.table_exists(schema, table):
        return None
    rows = wh.fetchall(f"SELECT {column} FROM {wh.dialect.table(schema, table)}")
    return rows[0][0] if len(rows) == 1 else None


def _earliest(*cuts: datetime | None) -> datetime | None:
    known = [c for c in cuts if c is not None]
    return min(known) if known else None


def retraction_horizons(
    wh: Warehouse, schemas: SchemasConfig, entity_types: Iterable[str], models: Iterable[str]
) -> list[Horizon]:
    """What every reader with a state has read: per model, and for identifiers per entity type
    (a type without new rows does not move its cut, and must not hold the others back)."""
    # imported here: the DAG factory imports the layers, and parsing a DAG must stay cheap
    from airflow_provider_nexus.resolution.resolve import state_table_names

    final_cut = _cut(wh, schemas.core, FINAL_STATE, "core_high")
    types = tuple(entity_types)
    horizons: list[Horizon] = []
    for model in models:
        if model != RESOLVED_MODEL:
            if final_cut is not None:
                horizons.append(Horizon(model, final_cut))
            continue
        for entity_type in types:
            resolved = _cut(wh, schemas.resolution, state_table_names(entity_type)["state"], "loaded_high")
            until = _earliest(final_cut, resolved)
            if until is not None:
                horizons.append(Horizon(model, until, entity_type=entity_type))
        if final_cut is not None:  # types no longer configured: only the final layer read them
            horizons.append(Horizon(model, final_cut, other_than=types))
    return horizons


def prune_retracted(
    wh: Warehouse, schemas: SchemasConfig, entity_types: Iterable[str], models: Iterable[str]
) -> dict[str, int]:
    """Delete replaced rows that every reader has read past; rows found per model.

    What it deletes is at or before the cut of every reader of those rows, and each reader only
    reads copies stamped after its own cut (a full run reads none), so it may run at any time.
    Each horizon is one DELETE, atomic on its own.
    """
    d = wh.dialect
    present = set(wh.tables(schemas.core))
    pruned: dict[str, int] = {}
    for h in retraction_horizons(wh, schemas, entity_types, models):
        if retracted_table_name(h.model) not in present:
            continue
        table = d.table(schemas.core, retracted_table_name(h.model))
        old = f"{d.quote(RETRACTED_AT)} <= {d.literal(h.until)}"
        if h.entity_type is not None:
            old += f" AND entity_type = {d.literal(h.entity_type)}"
        elif h.other_than:
            old += f" AND (entity_type IS NULL OR entity_type NOT IN ({d.literal_list(list(h.other_than))}))"
        # counted first, to report it; a concurrent core run only adds copies newer than `until`
        count = int(wh.scalar(f"SELECT count(*) FROM {table} WHERE {old}") or 0)
        if count:
            wh.execute(f"DELETE FROM {table} WHERE {old}")
            log.info("%s: %d replaced row(s) read by every reader pruned (up to %s)", table, count, h.until)
        pruned[h.model] = pruned.get(h.model, 0) + count
    return pruned


__all__ = ["Horizon", "prune_retracted", "retraction_horizons"]
