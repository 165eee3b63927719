"""Core event log: the union of every source's models, normalised, merged on `id`.

Each source is read from its own core watermark up to its committed source-layer watermark, so a
source that failed this run simply contributes nothing and catches up on its next success.
Rows get this run's `_loaded_at`, the cursor identity resolution reads from.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from airflow_provider_nexus.config import EntityTypeConfig, SchemasConfig, SourceConfig
from airflow_provider_nexus.errors import NexusConfigError
from airflow_provider_nexus.layers.common import (
    EVENT_CHILD_MODELS,
    MODEL_COLUMNS,
    RETRACTED_AT,
    PendingWrites,
    Retraction,
    RunContext,
    ensure_indexes,
    ensure_model_table,
    iso,
    replace_model_rows,
    retracted_table_name,
)
from airflow_provider_nexus.layers.retention import prune_retracted
from airflow_provider_nexus.layers.source import REJECTED, ensure_rejected_table, set_aside_rejects
from airflow_provider_nexus.state import StateStore
from airflow_provider_nexus.templates import TemplateEngine
from airflow_provider_nexus.warehouse import Warehouse

log = logging.getLogger(__name__)

CORE_MODELS = ("events", "identifiers", "traits", "memberships")
_EXTRA_COLUMNS: dict[str, list[tuple[str, str]]] = {
    "identifiers": [("identifier_value_raw", "text"), ("_loaded_at", "timestamp")],
    "memberships": [("_loaded_at", "timestamp")],
    "events": [("_loaded_at", "timestamp")],
    "traits": [("_loaded_at", "timestamp")],
}

#: Keys incremental runs look core rows up by: replacing a re-emitted event's rows, the rows of a
#: changed identifier, edge group or event (identity resolution and final tables).
_EVENT_ROW = ("event_id", "source")
CORE_INDEXES: dict[str, list[tuple[str, ...]]] = {
    "events": [("id",)],
    "identifiers": [
        ("id",),
        _EVENT_ROW,
        ("edge_id", "source", "entity_type"),
        ("identifier_value", "identifier_type", "entity_type"),
    ],
    "traits": [("id",), _EVENT_ROW, ("edge_id", "source", "entity_type")],
    "memberships": [
        ("id",),
        _EVENT_ROW,
        ("person_identifier_value", "person_identifier_type"),
        ("group_identifier_value", "group_identifier_type"),
    ],
}


def ensure_core_indexes(wh: Warehouse, schema: str) -> None:
    """Secondary indexes of the core tables (engines that have them; see Dialect.create_index).
    Replaced-row copies are read and pruned by the time they were replaced."""
    for model, keys in CORE_INDEXES.items():
        ensure_indexes(wh, schema, f"nexus_{model}", keys, load_time="_loaded_at")
        if wh.table_exists(schema, retracted_table_name(model)):
            ensure_indexes(wh, schema, retracted_table_name(model), [], load_time=RETRACTED_AT)


def normalizers(entity_types: dict[str, EntityTypeConfig]) -> dict[str, str]:
    """identifier type -> normaliser name; explicit config first, then by the type's name."""
    chosen: dict[str, str] = {}
    for entity, config in entity_types.items():
        for identifier in config.identifiers:
            kind = config.normalize.get(identifier) or _default_normalizer(identifier)
            previous = chosen.setdefault(identifier, kind)
            if previous != kind:
                raise NexusConfigError(
                    f"identifier type {identifier!r} is normalised as {previous!r} and as {kind!r} "
                    f"(entity type {entity!r}); use one normaliser per identifier type"
                )
    return chosen


def _default_normalizer(identifier: str) -> str:
    for hint in ("email", "phone", "domain"):
        if hint in identifier:
            return hint
    return "trim"


def render_core_model(
    engine: TemplateEngine,
    model: str,
    inputs: list[dict[str, Any]],
    entity_types: dict[str, EntityTypeConfig],
    run: RunContext,
) -> str:
    return engine.render(f"core/{model}.sql", inputs=inputs, normalizers=normalizers(entity_types), loaded_at=run.now)


def build_core(
    wh: Warehouse,
    engine: TemplateEngine,
    sources: list[SourceConfig],
    entity_types: dict[str, EntityTypeConfig],
    schemas: SchemasConfig,
    run: RunContext,
) -> dict[str, Any]:
    state = StateStore(wh, schemas.core)
    state.ensure()
    wh.ensure_schema(schemas.core)
    windows: dict[str, dict[str, Any]] = {}
    for source in sources:
        low = None if run.full_refresh else state.get(source.name, "core")
        high = state.get(source.name, "source")
        if high is not None and (low is None or high > low):
            windows[source.name] = {"low": low, "high": high}
    summary: dict[str, Any] = {
        "sources": {name: {"low": iso(w["low"]), "high": iso(w["high"])} for name, w in windows.items()},
        "models": {},
    }
    rejected = ensure_rejected_table(wh, schemas.source)
    writes = PendingWrites(wh)
    try:
        batch_events = None
        for model in CORE_MODELS:  # events first: the other models' writes look at them
            summary["models"][model] = _stage_model(
                wh, writes, engine, model, sources, windows, entity_types, schemas, rejected, run, batch_events
            )
            if model == "events" and summary["models"][model]["written"]:
                batch_events = wh.dialect.quote(_stage_table("events"))
    except BaseException:
        writes.cleanup()
        raise
    for name, window in windows.items():
        writes.call(_advance(state, name, window["high"], run))
    writes.apply()
    # After the first load, not before it: building an index over loaded rows is cheaper than
    # maintaining it row by row; later runs maintain them.
    ensure_core_indexes(wh, schemas.core)
    summary["rows"] = sum(m["written"] for m in summary["models"].values())
    try:
        summary["pruned"] = prune_retracted(wh, schemas, entity_types, CORE_MODELS)
    except Exception:  # housekeeping: the batch is committed, and the next run prunes again
        log.warning("core: pruning replaced-row copies failed; they are kept until a later run", exc_info=True)
        summary["pruned"] = {}
    return summary


def _advance(state: StateStore, source: str, high: Any, run: RunContext) -> Callable[[], None]:
    return lambda: state.set(source, "core", high, run.run_id, run.now)


#: Identifiers that normalise to nothing (' ', '()-') cannot link anything.
_UNUSABLE = {
    "identifiers": [("identifier_value IS NULL", "empty after normalisation")],
    "memberships": [("person_identifier_value IS NULL OR group_identifier_value IS NULL", "empty after normalisation")],
}


def _stage_model(
    wh: Warehouse,
    writes: PendingWrites,
    engine: TemplateEngine,
    model: str,
    sources: list[SourceConfig],
    windows: dict[str, dict[str, Any]],
    entity_types: dict[str, EntityTypeConfig],
    schemas: SchemasConfig,
    rejected: str,
    run: RunContext,
    batch_events: str | None = None,
) -> dict[str, int]:
    """Stage one model's batch from the source layer and queue its write. `batch_events`: core's
    staged events of this batch, for the models whose rows hang off events."""
    d = wh.dialect
    columns = [name for name, _ in MODEL_COLUMNS[model]] + [name for name, _ in _EXTRA_COLUMNS[model]]
    target = ensure_model_table(wh, schemas.core, f"nexus_{model}", model, _EXTRA_COLUMNS[model])
    inputs = [
        {"source": s.name, "relation": d.table(schemas.source, f"{s.name}__{model}"), **windows[s.name]}
        for s in sources
        if s.name in windows and model in s.models() and wh.table_exists(schemas.source, f"{s.name}__{model}")
    ]
    if run.full_refresh and windows:
        # A rebuild from the source layer: rows of the refreshed sources that it no longer gives
        # (an id formula changed in a template) must go, not sit beside their replacements.
        refreshed = d.literal_list(sorted(windows))
        writes.sql(f"DELETE FROM {target} WHERE source IN ({refreshed})")
    if not inputs:
        return {"written": 0, "rejected": 0}
    stage = _stage_table(model)
    writes.temp_table(stage)
    select_sql = render_core_model(engine, model, inputs, entity_types, run)
    wh.show_rendered(f"core/{model}.sql", select_sql)
    wh.execute(d.create_temp_table_as(stage, select_sql))
    aside = set_aside_rejects(wh, writes, stage, model, "source", _UNUSABLE.get(model, []), rejected, run)
    events = aside.events
    if model in EVENT_CHILD_MODELS and batch_events is not None:
        events = _with_emptied_events(wh, writes, model, inputs, batch_events, events or d.quote(stage)) or events
    written = wh.count(d.quote(stage))
    # Replaced rows are kept for incremental readers. A full refresh replaces everything: those
    # readers then see their old rows gone unannounced and rebuild in full, so nothing is copied.
    retracted = None
    if not run.full_refresh:
        extra = [*_EXTRA_COLUMNS[model], (RETRACTED_AT, "timestamp")]
        table = ensure_model_table(wh, schemas.core, retracted_table_name(model), model, extra)
        retracted = Retraction(table, run.now)
    writes.call(lambda: replace_model_rows(wh, model, target, d.quote(stage), columns, retracted, events))
    return {"written": written, "rejected": aside.rejected}


def _stage_table(model: str) -> str:
    """The scratch table a model's batch is staged in (the other models' writes read the events')."""
    return f"nexus_core_{model}"


def _with_emptied_events(
    wh: Warehouse, writes: PendingWrites, model: str, inputs: list[dict[str, Any]], batch_events: str, events: str
) -> str | None:
    """The events whose `model` rows this batch replaces, when more than those of the staged rows
    (`events`): events re-emitted in this batch (`batch_events`, core's staged events) that no
    longer have any row of `model` in the source layer (all rejected there, say), so their rows
    in core go too. None when there are no such events.

    A source's first load replaces nothing, so only sources read before are looked at; of their
    events, only those without a staged row are looked up in the source tables.
    """
    d = wh.dialect
    earlier = [item for item in inputs if item["low"] is not None]
    if not earlier:
        return None
    candidates = f"nexus_core_{model}_unstaged"
    writes.temp_table(candidates)
    wh.execute(
        d.create_temp_table_as(
            candidates,
            f"SELECT e.source, e.id AS event_id FROM {batch_events} e "
            f"WHERE e.source IN ({d.literal_list([item['source'] for item in earlier])}) "
            f"AND NOT EXISTS (SELECT 1 FROM {events} s WHERE s.source = e.source AND s.event_id = e.id)",
        )
    )
    if not wh.count(d.quote(candidates)):
        return None
    parts = []
    for item in earlier:
        src = d.literal(item["source"])
        # a semi-join on the candidates first: the source table is probed, never hashed whole
        parts.append(
            f"SELECT u.source, u.event_id FROM {d.quote(candidates)} u LEFT JOIN (SELECT DISTINCT c.event_id "
            f"FROM {item['relation']} c WHERE c.event_id IN (SELECT event_id FROM {d.quote(candidates)} "
            f"WHERE source = {src})) k ON k.event_id = u.event_id WHERE u.source = {src} AND k.event_id IS NULL"
        )
    emptied = f"nexus_core_{model}_emptied"
    writes.temp_table(emptied)
    wh.execute(d.create_temp_table_as(emptied, " UNION ALL ".join(parts)))
    if not wh.count(d.quote(emptied)):
        return None
    union = f"nexus_core_{model}_replaced_events"  # not set_aside_rejects' `_events` table
    writes.temp_table(union)
    wh.execute(
        d.create_temp_table_as(
            union, f"SELECT source, event_id FROM {events} UNION ALL SELECT source, event_id FROM {d.quote(emptied)}"
        )
    )
    return d.quote(union)


__all__ = ["CORE_MODELS", "REJECTED", "build_core", "normalizers", "render_core_model"]
