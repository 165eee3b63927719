"""Raw layer: copy this run's new rows of a source into nexus_raw.<source>__<table>.

Files are tracked in a ledger (path, size, mtime) so each file is read once unless it changes;
landed tables are read from their synced-at watermark minus the lookback. Rows are merged on the
declared key and only rows that are new or changed get this run's `_ingested_at`, so a lookback
re-read costs nothing downstream.
"""

from __future__ import annotations

import datetime as dt
import glob
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from airflow_provider_nexus.config import RawFileTable, RawSourceTable, SchemasConfig, SourceConfig
from airflow_provider_nexus.dialects.base import SOURCE_ROW, utc_naive
from airflow_provider_nexus.errors import NexusConfigError, NexusDataError, NexusError
from airflow_provider_nexus.layers.common import PendingWrites, RunContext, failures_told_apart, iso
from airflow_provider_nexus.state import LoadedFile, StateStore
from airflow_provider_nexus.warehouse import Warehouse

log = logging.getLogger(__name__)

INGESTED_AT = "_ingested_at"
ROW_HASH = "_row_hash"
SOURCE_FILE = "_source_file"
#: Columns of the raw table Nexus adds, and the staged position of a file's row (not kept).
_SYSTEM_COLUMNS = (INGESTED_AT, ROW_HASH, SOURCE_ROW)


@dataclass
class RawTableResult:
    table: str
    read: int = 0
    written: int = 0
    files: int = 0
    #: Rows found behind the lookback window (loaded, and reported).
    late: int = 0
    synced_high: dt.datetime | None = None
    #: A landed table's ``schema.table`` as found (the config may leave the schema out).
    landed: str | None = None

    def counts(self) -> dict[str, Any]:
        out: dict[str, Any] = {"read": self.read, "written": self.written, "files": self.files, "late": self.late}
        if self.landed:
            out["landed"] = self.landed
        return out


def raw_table_name(source: str, table: str) -> str:
    return f"{source}__{table}"


def load_source(
    wh: Warehouse,
    source: SourceConfig,
    schemas: SchemasConfig,
    data_dir: Path,
    lookback: dt.timedelta,
    run: RunContext,
) -> dict[str, Any]:
    """Load every raw table of one source in one transaction; return the window as XCom."""
    state = StateStore(wh, schemas.core)
    state.ensure()
    wh.ensure_schema(schemas.raw)
    low = state.get(source.name, "raw")
    # The ingestion clock only moves forward, even if the host clock stepped back.
    ingested_at = run.now if low is None or run.now > low else low + dt.timedelta(microseconds=1)
    results: list[RawTableResult] = []
    writes = PendingWrites(wh)
    try:
        for table, spec in source.raw.items():
            if isinstance(spec, RawFileTable):
                result = _load_files(wh, writes, state, source.name, table, spec, schemas, data_dir, ingested_at, run)
            else:
                result = _load_table(wh, writes, state, source, table, spec, schemas, lookback, ingested_at, run)
            results.append(result)
    except BaseException:
        writes.cleanup()
        raise
    written = sum(r.written for r in results)
    if written:
        writes.call(lambda: state.set(source.name, "raw", ingested_at, run.run_id, run.now))
    writes.apply()
    high = ingested_at if written else low
    return {
        "source": source.name,
        "low": iso(low),
        "high": iso(high),
        "rows": written,
        "tables": {r.table: r.counts() for r in results},
    }


# -- files -----------------------------------------------------------------------------------


def _load_files(
    wh: Warehouse,
    writes: PendingWrites,
    state: StateStore,
    source: str,
    table: str,
    spec: RawFileTable,
    schemas: SchemasConfig,
    data_dir: Path,
    ingested_at: dt.datetime,
    run: RunContext,
) -> RawTableResult:
    result = RawTableResult(table)
    pattern = spec.path if Path(spec.path).is_absolute() else str(data_dir / spec.path)
    matched = sorted(glob.glob(pattern, recursive=True))
    known = {} if run.full_refresh else state.loaded_files_of(source, table)
    new_files: list[LoadedFile] = []
    for path in matched:
        st = Path(path).stat()
        seen = LoadedFile(path, st.st_size, st.st_mtime)
        if known.get(path) != seen:
            new_files.append(seen)
    if not new_files:
        log.info("%s.%s: no new files matching %s", source, table, pattern)
        return result
    result.files = len(new_files)
    # An empty file (a delivery still being written, an export with nothing in it) has no header
    # to read: it is recorded as loaded with no rows, and read again once it changes.
    readable = [f for f in new_files if f.size > 0]
    if not readable:
        writes.call(lambda: state.record_files(source, table, [(f, 0) for f in new_files], run.run_id, run.now))
        return result
    stage = f"nexus_stage_{source}__{table}"
    writes.temp_table(stage)
    names = ", ".join(Path(f.path).name for f in new_files[:5])
    # a file the driver or a Python reader cannot parse (ValueError: bad UTF-8, Arrow's invalid
    # data) is the data's fault; a file gone or a connection lost is worth a retry
    with failures_told_apart(
        wh,
        NexusDataError,
        f"source {source!r}, raw table {table!r}: cannot read files ({names})",
        also_permanent=(ValueError,),
    ):
        wh.dialect.stage_files(wh, stage, [f.path for f in readable], spec.file_format(), SOURCE_FILE)
    d = wh.dialect
    # Per-file row counts for the ledger, before de-duplication.
    counts = dict(wh.fetchall(f"SELECT {d.quote(SOURCE_FILE)}, count(*) FROM {d.quote(stage)} GROUP BY 1"))
    result.read = sum(int(v) for v in counts.values())
    # A key delivered twice in one batch: the later file wins (files sort by name = delivery
    # order), and inside one file the later row, where the dialect's staging keeps the order.
    row_order = d.staged_row_order()
    order_by = [d.quote(SOURCE_FILE), *([row_order] if row_order else [])]
    result.written = _merge_stage(
        wh, writes, source, table, spec.key_columns(), stage, schemas, ingested_at, order_by=order_by
    )
    ledger = [(f, int(counts.get(f.path, 0))) for f in new_files]
    writes.call(lambda: state.record_files(source, table, ledger, run.run_id, run.now))
    return result


# -- landed tables -----------------------------------------------------------------------------


def _load_table(
    wh: Warehouse,
    writes: PendingWrites,
    state: StateStore,
    source: SourceConfig,
    table: str,
    spec: RawSourceTable,
    schemas: SchemasConfig,
    lookback: dt.timedelta,
    ingested_at: dt.datetime,
    run: RunContext,
) -> RawTableResult:
    d = wh.dialect
    result = RawTableResult(table)
    schema_name, _, table_name = spec.table.rpartition(".")
    if not schema_name:  # a bare name is looked up where the session finds it
        try:
            schema_name = str(wh.scalar("SELECT current_schema()"))
        except Exception as exc:
            if isinstance(exc, NexusError) or not d.is_permanent_error(exc):
                raise  # the session failed, not the question: a retry may succeed
            raise NexusConfigError(
                f"source {source.name!r}, raw table {table!r}: name the landed table's schema "
                f"(schema.table); this {d.name} session has no current schema to find {spec.table} in"
            ) from exc
    if not wh.table_exists(schema_name, table_name):
        raise NexusConfigError(f"source {source.name!r}, raw table {table!r}: landed table {spec.table} does not exist")
    landed = d.table(schema_name, table_name)
    result.landed = f"{schema_name}.{table_name}"
    layer = f"raw:{table}"
    synced_wm = None if run.full_refresh else state.get(source.name, layer)
    synced = d.quote(spec.synced_at)
    where = ""
    if synced_wm is not None:
        # Inclusive lower bound minus the lookback: rows sharing the boundary timestamp and rows
        # committed late with an earlier timestamp are re-read; the merge below absorbs them.
        # Rows without a synced-at fit no window, so they are re-read every run (and reported).
        where = f"WHERE {synced} >= {d.literal(synced_wm - lookback)} OR {synced} IS NULL"
    stage = f"nexus_stage_{source.name}__{table}"
    writes.temp_table(stage)
    wh.execute(d.create_temp_table_as(stage, f"SELECT * FROM {landed} {where}"))
    target_name = raw_table_name(source.name, table)
    if synced_wm is not None and wh.table_exists(schemas.raw, target_name):
        result.late = _pick_up_late_rows(
            wh, landed, stage, spec, synced_wm - lookback, d.table(schemas.raw, target_name)
        )
        if result.late:
            log.warning(
                "source %s, raw table %s: %d row(s) arrived with %s older than the lookback window (%s); "
                "they were loaded now. Consider a longer lookback.",
                source.name,
                table,
                result.late,
                spec.synced_at,
                lookback,
            )
    result.read = wh.count(d.quote(stage))
    if not result.read:
        return result
    high_value, unsynced = wh.fetchone(
        f"SELECT max({synced}), count(CASE WHEN {synced} IS NULL THEN 1 END) FROM {d.quote(stage)}"
    ) or (None, 0)
    where_from = f"source {source.name!r}, raw table {table!r} ({spec.table}.{spec.synced_at})"
    high = _as_watermark(high_value, where_from)
    if unsynced:
        log.warning("%s: %d row(s) have no synced-at; they are re-read on every run", where_from, unsynced)
    if high is not None and high > run.now:
        # A clock ahead of ours, or a bad value: a watermark that far ahead would put every
        # later update behind the window. Keeping it at the run's time re-reads those rows instead.
        log.warning("%s: synced-at values up to %s are later than this run's time %s", where_from, high, run.now)
        high = run.now
    result.synced_high = high
    result.written = _merge_stage(
        wh,
        writes,
        source.name,
        table,
        spec.key_columns(),
        stage,
        schemas,
        ingested_at,
        order_by=[d.quote(spec.synced_at)],
    )
    if high is not None and (synced_wm is None or high > synced_wm):
        writes.call(lambda: state.set(source.name, layer, high, run.run_id, run.now))
    return result


def _as_watermark(value: Any, where_from: str) -> dt.datetime | None:
    """A synced-at value as Nexus keeps timestamps (naive UTC); an error for a column of another type."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return utc_naive(value)
    if isinstance(value, dt.date):
        return dt.datetime.combine(value, dt.time())
    raise NexusDataError(
        f"{where_from}: the synced-at column holds {type(value).__name__} values (such as {value!r}); "
        "it must be a timestamp or date column. Nothing was loaded."
    )


def _pick_up_late_rows(
    wh: Warehouse, landed: str, stage: str, spec: RawSourceTable, bound: dt.datetime, target: str
) -> int:
    """Rows older than the window whose key the raw table has never seen: load them, and say so.

    A key that is new to raw but carries an old synced-at was committed later than the lookback
    allows. Re-reading only the window would lose it silently; this anti-join finds it.
    """
    d = wh.dialect
    synced = d.quote(spec.synced_at)
    keys = spec.key_columns()
    match = " AND ".join(f"r.{d.quote(k)} = l.{d.quote(k)}" for k in keys)
    before = wh.count(d.quote(stage))
    wh.execute(
        f"INSERT INTO {d.quote(stage)} SELECT * FROM {landed} AS l WHERE l.{synced} < {d.literal(bound)} "
        f"AND NOT EXISTS (SELECT 1 FROM {target} AS r WHERE {match})"
    )
    return wh.count(d.quote(stage)) - before


# -- merge -----------------------------------------------------------------------------------


def _merge_stage(
    wh: Warehouse,
    writes: PendingWrites,
    source: str,
    table: str,
    keys: list[str],
    stage: str,
    schemas: SchemasConfig,
    ingested_at: dt.datetime,
    order_by: list[str],
) -> int:
    """Stage the merge of a batch into the raw table on `keys`; return rows new or changed.

    The DELETE and INSERT are queued on `writes`, to run in the layer's transaction.
    """
    d = wh.dialect
    stage_q = d.quote(stage)
    columns = wh.relation_columns(d.quote(stage))
    missing = [k for k in keys if k not in columns]
    if missing:
        raise NexusDataError(
            f"source {source!r}, raw table {table!r}: key column(s) {', '.join(missing)} missing from the "
            f"input (columns found: {', '.join(columns)})"
        )
    # Nexus writes these itself: an input column of that name would be dropped without a word
    # (the staged row position is Nexus's own only where its staging added it for the order)
    reserved = [c for c in (INGESTED_AT, ROW_HASH) if c in columns]
    if SOURCE_ROW in columns and d.quote(SOURCE_ROW) not in order_by:
        reserved.append(SOURCE_ROW)
    if reserved:
        raise NexusDataError(
            f"source {source!r}, raw table {table!r}: the input has column(s) {', '.join(reserved)}, "
            "which Nexus reserves for the raw layer; rename them in the input"
        )
    data_cols = [c for c in columns if c not in _SYSTEM_COLUMNS]
    content_cols = [c for c in data_cols if c not in (SOURCE_FILE,)]
    key_list = ", ".join(d.quote(k) for k in keys)
    null_key = " OR ".join(f"{d.quote(k)} IS NULL" for k in keys)
    null_keys = int(wh.scalar(f"SELECT count(*) FROM {stage_q} WHERE {null_key}") or 0)
    if null_keys:
        where = ""
        if SOURCE_FILE in columns:
            files = [
                str(r[0])
                for r in wh.fetchall(
                    f"SELECT DISTINCT {d.quote(SOURCE_FILE)} FROM {stage_q} WHERE {null_key} ORDER BY 1 LIMIT 5"
                )
            ]
            where = f" in {', '.join(files)}"
        raise NexusDataError(
            f"source {source!r}, raw table {table!r}: {null_keys} row(s) have a null key ({', '.join(keys)}){where}; "
            "nothing was loaded"
        )
    row_hash = d.hash_hex(d.key_text([d.quote(c) for c in content_cols]))
    dedup = f"nexus_dedup_{source}__{table}"
    writes.temp_table(dedup)
    wh.execute(
        d.create_temp_table_as(
            dedup,
            f"SELECT *, {row_hash} AS {d.quote(ROW_HASH)} FROM ("
            f"SELECT *, row_number() OVER (PARTITION BY {key_list} ORDER BY "
            f"{', '.join(f'{o} DESC NULLS LAST' for o in order_by)}) AS nexus_rn "
            f"FROM {stage_q}) AS s WHERE nexus_rn = 1",
        )
    )
    target_name = raw_table_name(source, table)
    target = d.table(schemas.raw, target_name)
    cols_sql = ", ".join(d.quote(c) for c in data_cols)
    if not wh.table_exists(schemas.raw, target_name):
        wh.execute(
            f"CREATE TABLE {target} AS SELECT {cols_sql}, {d.quote(ROW_HASH)}, "
            f"CAST(NULL AS {d.timestamp_type}) AS {d.quote(INGESTED_AT)} FROM {d.quote(dedup)} WHERE 1 = 0"
        )
    else:
        existing = set(wh.columns(schemas.raw, target_name))
        for col in data_cols:
            if col not in existing:  # schema drift: a new column in the input is added, never dropped
                col_type = wh.scalar(f"SELECT {d.type_name(d.quote(col))} FROM {d.quote(dedup)} LIMIT 1") or d.text_type
                wh.execute(f"ALTER TABLE {target} ADD COLUMN {d.quote(col)} {col_type}")
    match = " AND ".join(f"t.{d.quote(k)} = s.{d.quote(k)}" for k in keys)
    changed = f"nexus_changed_{source}__{table}"
    writes.temp_table(changed)
    wh.execute(
        d.create_temp_table_as(
            changed,
            f"SELECT s.* FROM {d.quote(dedup)} AS s WHERE NOT EXISTS (SELECT 1 FROM {target} AS t "
            f"WHERE {match} AND t.{d.quote(ROW_HASH)} = s.{d.quote(ROW_HASH)})",
        )
    )
    written = wh.count(d.quote(changed))
    if written:
        writes.sql(d.delete_matching_keys(target, d.quote(changed), keys))
        writes.sql(
            f"INSERT INTO {target} ({cols_sql}, {d.quote(ROW_HASH)}, {d.quote(INGESTED_AT)}) "
            f"SELECT {cols_sql}, {d.quote(ROW_HASH)}, {d.literal(ingested_at)} FROM {d.quote(changed)}"
        )
    log.info("%s.%s: %d row(s) new or changed", source, table, written)
    return written
