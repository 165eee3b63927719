"""Source event log: render a source's own templates over the current raw batch.

Each model's SELECT is staged, checked against its contract (columns, ids, declared entity
types, identifier and trait names), and merged on `id` into nexus_source.<source>__<model>, all
models of the source in one transaction with the source watermark.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from airflow_provider_nexus.config import EntityTypeConfig, SchemasConfig, SourceConfig
from airflow_provider_nexus.dialects.base import Dialect
from airflow_provider_nexus.errors import NexusDataError, NexusTemplateError
from airflow_provider_nexus.layers.common import (
    EVENT_CHILD_MODELS,
    MODEL_COLUMNS,
    PendingWrites,
    RunContext,
    ensure_model_table,
    failures_told_apart,
    iso,
    replace_model_rows,
    sql_type,
)
from airflow_provider_nexus.layers.raw import INGESTED_AT, raw_table_name
from airflow_provider_nexus.state import StateStore
from airflow_provider_nexus.templates import TemplateEngine
from airflow_provider_nexus.warehouse import Warehouse

log = logging.getLogger(__name__)

REJECTED = "nexus_rejected_rows"
#: Models a source may leave out even when its flags enable them.
OPTIONAL_MODELS = {"traits"}


def template_name(source: str, model: str) -> str:
    return f"sources/{source}/{model}.sql"


def render_source_model(
    engine: TemplateEngine,
    source: SourceConfig,
    model: str,
    schemas: SchemasConfig,
    low: dt.datetime | None,
    high: dt.datetime | None,
) -> str:
    """The model's SELECT over the raw rows with `low < _ingested_at <= high`."""
    d = engine.dialect

    def batch(table: str) -> str:
        if table not in source.raw:
            raise NexusTemplateError(
                f"{template_name(source.name, model)}: batch({table!r}) names no raw table of source "
                f"{source.name!r} (raw tables: {', '.join(source.raw)})"
            )
        conds = []
        if low is not None:
            conds.append(f"{d.quote(INGESTED_AT)} > {d.literal(low)}")
        if high is not None:
            conds.append(f"{d.quote(INGESTED_AT)} <= {d.literal(high)}")
        where = f" WHERE {' AND '.join(conds)}" if conds else ""
        return f"(SELECT * FROM {raw(table)}{where})"

    def raw(table: str) -> str:
        return d.table(schemas.raw, raw_table_name(source.name, table))

    return engine.render(template_name(source.name, model), source=source.name, batch=batch, raw=raw, model=model)


def build_source(
    wh: Warehouse,
    engine: TemplateEngine,
    source: SourceConfig,
    entity_types: dict[str, EntityTypeConfig],
    schemas: SchemasConfig,
    run: RunContext,
    high: dt.datetime | None = None,
) -> dict[str, Any]:
    """Build every model of one source for the raw rows not yet processed; return a summary."""
    state = StateStore(wh, schemas.core)
    state.ensure()
    wh.ensure_schema(schemas.source)
    low = None if run.full_refresh else state.get(source.name, "source")
    raw_high = state.get(source.name, "raw")
    high = raw_high if high is None or (raw_high is not None and raw_high < high) else high
    summary: dict[str, Any] = {"source": source.name, "low": iso(low), "high": iso(high), "models": {}}
    if high is None or (low is not None and high <= low):
        log.info("source %s: nothing new since %s", source.name, low)
        summary["high"] = iso(low)
        summary["rows"] = 0
        return summary
    rendered: dict[str, str] = {}
    for model in source.models():
        if model in OPTIONAL_MODELS and not engine.exists(template_name(source.name, model)):
            log.info("source %s has no %s template; it emits no %s", source.name, model, model)
            continue
        rendered[model] = render_source_model(engine, source, model, schemas, low, high)
        wh.show_rendered(template_name(source.name, model), rendered[model])
    rejected = ensure_rejected_table(wh, schemas.source)
    writes = PendingWrites(wh)
    try:
        for model, select_sql in rendered.items():
            summary["models"][model] = _stage_model(
                wh, writes, source, model, select_sql, entity_types, schemas, rejected, run
            )
    except BaseException:
        writes.cleanup()
        raise
    writes.call(lambda: state.set(source.name, "source", high, run.run_id, run.now))
    writes.apply()
    summary["rows"] = sum(m["written"] for m in summary["models"].values())
    return summary


def ensure_rejected_table(wh: Warehouse, schema: str) -> str:
    d = wh.dialect
    target = d.table(schema, REJECTED)
    wh.execute(
        f"CREATE TABLE IF NOT EXISTS {target} (source {d.text_type}, model {d.text_type}, row_id {d.text_type}, "
        f"reason {d.text_type}, run_id {d.text_type}, rejected_at {d.timestamp_type})"
    )
    return target


def _stage_model(
    wh: Warehouse,
    writes: PendingWrites,
    source: SourceConfig,
    model: str,
    select_sql: str,
    entity_types: dict[str, EntityTypeConfig],
    schemas: SchemasConfig,
    rejected: str,
    run: RunContext,
) -> dict[str, int]:
    d = wh.dialect
    where = f"source {source.name!r}, model {model!r} ({template_name(source.name, model)})"
    raw_stage = f"nexus_src_{source.name}_{model}_raw"
    writes.temp_table(raw_stage)
    with failures_told_apart(wh, NexusDataError, f"{where}: the rendered SELECT failed"):
        wh.execute(d.create_temp_table_as(raw_stage, f"SELECT * FROM ({select_sql}) AS m"))
    have = wh.relation_columns(d.quote(raw_stage))
    expected = [name for name, _ in MODEL_COLUMNS[model]]
    missing = [c for c in expected if c not in have]
    if missing:
        raise NexusDataError(
            f"{where}: missing column(s) {', '.join(missing)}; a {model} model returns {', '.join(expected)}"
        )
    stage = f"nexus_src_{source.name}_{model}"
    writes.temp_table(stage)
    casts = ", ".join(
        f"CAST({d.quote(name)} AS {sql_type(wh, kind)}) AS {d.quote(name)}" for name, kind in MODEL_COLUMNS[model]
    )
    wrong_type = f"{where}: a column has a value of the wrong type (for example a malformed timestamp)"
    with failures_told_apart(wh, NexusDataError, wrong_type):
        wh.execute(d.create_temp_table_as(stage, f"SELECT {casts} FROM {d.quote(raw_stage)}"))
    stage_q = d.quote(stage)
    _check_ids(wh, stage_q, where)
    _check_contract(wh, stage_q, model, source, entity_types, where)
    aside = set_aside_rejects(wh, writes, stage, model, d.literal(source.name), reject_rules(d, model), rejected, run)
    target = ensure_model_table(wh, schemas.source, f"{source.name}__{model}", model)
    written = wh.count(stage_q)
    if run.full_refresh:  # a rebuild from raw: rows the templates no longer give must go too
        writes.sql(f"DELETE FROM {target} WHERE TRUE")
    writes.call(lambda: replace_model_rows(wh, model, target, stage_q, expected, events=aside.events))
    log.info("%s: %d row(s) staged, %d rejected", where, written, aside.rejected)
    return {"written": written, "rejected": aside.rejected}


def _check_ids(wh: Warehouse, stage: str, where: str) -> None:
    nulls = wh.scalar(f"SELECT count(*) FROM {stage} WHERE id IS NULL OR id = ''")
    if nulls:
        raise NexusDataError(f"{where}: {nulls} row(s) have a null or empty id")
    dups = wh.fetchall(f"SELECT id, count(*) FROM {stage} GROUP BY id HAVING count(*) > 1 ORDER BY id LIMIT 5")
    if dups:
        shown = ", ".join(f"{r[0]} (x{r[1]})" for r in dups)
        raise NexusDataError(f"{where}: duplicated id(s) in the batch: {shown}; make the template's id unique per row")


def _check_contract(
    wh: Warehouse, stage: str, model: str, source: SourceConfig, entity_types: dict[str, EntityTypeConfig], where: str
) -> None:
    d = wh.dialect
    if model not in ("identifiers", "traits"):
        return
    allowed = source.emitted_entity_types()
    found = [r[0] for r in wh.fetchall(f"SELECT DISTINCT entity_type FROM {stage} ORDER BY 1")]
    # a NULL entity type is no contract breach: the reject rules set the row aside with its reason
    found = [t for t in found if t is not None]
    undeclared = [str(t) for t in found if t not in allowed]
    if undeclared:
        raise NexusDataError(
            f"{where}: emits entity type(s) {', '.join(undeclared)} that the source does not declare "
            f"(declared: {', '.join(allowed) or 'none'})"
        )
    column = "identifier_type" if model == "identifiers" else "trait_name"
    for entity in found:
        declared = entity_types[entity].identifiers if model == "identifiers" else entity_types[entity].traits
        names = [
            r[0]
            for r in wh.fetchall(
                f"SELECT DISTINCT {column} FROM {stage} WHERE entity_type = {d.literal(entity)} AND {column} IS NOT NULL ORDER BY 1"
            )
        ]
        unknown = [str(n) for n in names if n not in declared]
        if unknown:
            kind = "identifier type" if model == "identifiers" else "trait"
            raise NexusDataError(
                f"{where}: {kind}(s) {', '.join(unknown)} of entity type {entity!r} are not declared under "
                f"entity_types.{entity} (declared: {', '.join(declared) or 'none'})"
            )


#: Longest key or identifier kept: they are looked up through B-tree indexes, whose entries
#: PostgreSQL caps at about 2,700 bytes (512 characters of up to 4 bytes each fit). Emails are at
#: most 254 characters; a longer value is not an identifier.
MAX_KEY_LENGTH = 512
#: The indexed text columns of each model.
_INDEXED = {
    "events": ["id"],
    "identifiers": ["id", "event_id", "edge_id", "identifier_value"],
    "traits": ["id", "event_id", "edge_id"],
    "memberships": ["id", "event_id", "person_identifier_value", "group_identifier_value"],
}


def _too_long(model: str) -> tuple[str, str]:
    columns = _INDEXED[model]
    return (
        " OR ".join(f"LENGTH({c}) > {MAX_KEY_LENGTH}" for c in columns),
        f"{' or '.join(columns)} longer than {MAX_KEY_LENGTH} characters",
    )


def blank(d: Dialect, column: str) -> str:
    """`column` is null, empty or made of blank characters only (see `BLANK_CHARACTERS`).

    Trimming a set of characters is several times slower than a plain TRIM, so it runs only for
    a value that is empty or starts with one of them."""
    starts_blank = d.is_blank_character(f"SUBSTR({column}, 1, 1)")
    return (
        f"({column} IS NULL OR CASE WHEN {column} = '' OR {starts_blank} "
        f"THEN {d.trim_characters(column, d.blank_characters_sql())} = '' ELSE FALSE END)"
    )


def reject_rules(d: Dialect, model: str) -> list[tuple[str, str]]:
    """(condition, reason) of the rows of `model` the source layer sets aside."""
    rules: dict[str, list[tuple[str, str]]] = {
        "events": [("occurred_at IS NULL", "null occurred_at"), _too_long("events")],
        "identifiers": [
            (blank(d, "identifier_value"), "null or empty identifier_value"),
            _too_long("identifiers"),
            ("identifier_type IS NULL", "null identifier_type"),
            ("entity_type IS NULL", "null entity_type"),
        ],
        "traits": [
            ("trait_name IS NULL", "null trait_name"),
            ("entity_type IS NULL", "null entity_type"),
            _too_long("traits"),
        ],
        "memberships": [
            (blank(d, "person_identifier_value"), "null person identifier"),
            (blank(d, "group_identifier_value"), "null group identifier"),
            _too_long("memberships"),
        ],
    }
    return rules.get(model, [])


@dataclass(frozen=True)
class SetAside:
    """What set_aside_rejects did: rows rejected, and for a model whose rows hang off events,
    the relation of the batch's events taken before any row left the stage (or None when none
    did: the stage itself then names them)."""

    rejected: int
    events: str | None


def set_aside_rejects(
    wh: Warehouse,
    writes: PendingWrites,
    stage: str,
    model: str,
    source_sql: str,
    rules: list[tuple[str, str]],
    rejected: str,
    run: RunContext,
) -> SetAside:
    """Move rows that cannot be used out of `stage`; queue them for the rejected-rows table."""
    d = wh.dialect
    stage_q = d.quote(stage)
    holding = f"{stage}_rejects"
    events: str | None = None
    total = 0
    for condition, reason in rules:
        count = int(wh.scalar(f"SELECT count(*) FROM {stage_q} WHERE {condition}") or 0)
        if not count:
            continue
        if not total:
            writes.temp_table(holding)
            wh.execute(d.create_temp_table_as(holding, f"SELECT * FROM {rejected} WHERE 1 = 0"))
            if model in EVENT_CHILD_MODELS:
                # A re-emitted event replaces all its earlier rows, even when its new rows are
                # all rejected: otherwise the old ones (an email since removed) would linger.
                events = f"{stage}_events"
                writes.temp_table(events)
                wh.execute(
                    d.create_temp_table_as(
                        events, f"SELECT DISTINCT source, event_id FROM {stage_q} WHERE event_id IS NOT NULL"
                    )
                )
                events = d.quote(events)
        total += count
        wh.execute(
            f"INSERT INTO {d.quote(holding)} SELECT {source_sql}, {d.literal(model)}, id, {d.literal(reason)}, "
            f"{d.literal(run.run_id)}, {d.literal(run.now)} FROM {stage_q} WHERE {condition}"
        )
        wh.execute(f"DELETE FROM {stage_q} WHERE {condition}")
    if total:
        writes.sql(f"INSERT INTO {rejected} SELECT * FROM {d.quote(holding)}")
    return SetAside(total, events)
