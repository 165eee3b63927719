"""What every layer needs: the run it belongs to, and idempotent writes."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from airflow_provider_nexus.errors import NexusError, WarehouseStatementError
from airflow_provider_nexus.warehouse import Warehouse

#: Standard columns of the source and core models, with their types (names of Dialect attributes).
MODEL_COLUMNS: dict[str, list[tuple[str, str]]] = {
    "events": [
        ("id", "text"),
        ("occurred_at", "timestamp"),
        ("event_name", "text"),
        ("event_description", "text"),
        ("event_type", "text"),
        ("source", "text"),
        ("value", "double"),
        ("value_unit", "text"),
        ("_ingested_at", "timestamp"),
    ],
    "identifiers": [
        ("id", "text"),
        ("event_id", "text"),
        ("edge_id", "text"),
        ("entity_type", "text"),
        ("identifier_type", "text"),
        ("identifier_value", "text"),
        ("role", "text"),
        ("source", "text"),
        ("occurred_at", "timestamp"),
        ("_ingested_at", "timestamp"),
    ],
    "traits": [
        ("id", "text"),
        ("event_id", "text"),
        ("edge_id", "text"),
        ("entity_type", "text"),
        ("trait_name", "text"),
        ("trait_value", "text"),
        ("source", "text"),
        ("occurred_at", "timestamp"),
        ("_ingested_at", "timestamp"),
    ],
    "memberships": [
        ("id", "text"),
        ("event_id", "text"),
        ("person_identifier_type", "text"),
        ("person_identifier_value", "text"),
        ("group_identifier_type", "text"),
        ("group_identifier_value", "text"),
        ("role", "text"),
        ("source", "text"),
        ("occurred_at", "timestamp"),
        ("_ingested_at", "timestamp"),
    ],
}


@dataclass(frozen=True)
class RunContext:
    """One run of a task: its id and the moment it stamps on what it writes (naive UTC)."""

    run_id: str
    now: dt.datetime = field(default_factory=lambda: utcnow())
    full_refresh: bool = False


class PendingWrites:
    """Writes collected while a layer stages its batch, applied together in one transaction.

    Staging (temp tables, CREATE TABLE IF NOT EXISTS, ALTER TABLE) runs before the transaction,
    so on engines whose DDL commits implicitly (Snowflake, BigQuery) a layer's rows and its
    watermark still land atomically, and on the others the transaction holds locks briefly.
    """

    def __init__(self, wh: Warehouse) -> None:
        self.wh = wh
        self._steps: list[Callable[[], object]] = []
        self._temp_tables: list[str] = []

    def sql(self, statement: str) -> None:
        self._steps.append(lambda: self.wh.execute(statement))

    def call(self, step: Callable[[], object]) -> None:
        self._steps.append(step)

    def temp_table(self, name: str) -> None:
        """Drop this temp table once the writes are applied (or abandoned)."""
        self._temp_tables.append(name)

    def apply(self) -> None:
        try:
            with self.wh.transaction():
                for step in self._steps:
                    step()
        finally:
            self.cleanup()

    def cleanup(self) -> None:
        for name in self._temp_tables:
            try:
                self.wh.execute(self.wh.dialect.drop_table(self.wh.dialect.quote(name), temp=True))
            except Exception:  # a broken session must not hide the error that broke it
                pass
        self._temp_tables.clear()


@contextmanager
def failures_told_apart(
    wh: Warehouse, permanent: type[NexusError], what: str, *, also_permanent: tuple[type, ...] = ()
) -> Iterator[None]:
    """Raise a driver's error from the block as `permanent` (a fail-fast error) when the SQL or
    the data is at fault, which a retry cannot fix, else as a WarehouseStatementError, which
    Airflow retries; either way "`what`: <the driver's message>". Errors of ours (NexusError: a
    cancelled statement, a file's bad line) pass through as they are."""
    try:
        yield
    except NexusError:
        raise
    except Exception as exc:
        message = f"{what}: {exc}"
        if wh.dialect.is_permanent_error(exc) or isinstance(exc, also_permanent):
            raise permanent(message) from exc
        raise WarehouseStatementError(f"{message} (the warehouse, not the data, failed: a retry may succeed)") from exc


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def sql_type(wh: Warehouse, kind: str) -> str:
    d = wh.dialect
    return {"text": d.text_type, "timestamp": d.timestamp_type, "double": d.double_type, "bigint": d.bigint_type}[kind]


def ensure_model_table(
    wh: Warehouse, schema: str, table: str, model: str, extra: Sequence[tuple[str, str]] = ()
) -> str:
    """Create a standard model table if missing; return its quoted name."""
    d = wh.dialect
    target = d.table(schema, table)
    cols = ", ".join(f"{d.quote(name)} {sql_type(wh, kind)}" for name, kind in [*MODEL_COLUMNS[model], *extra])
    wh.execute(f"CREATE TABLE IF NOT EXISTS {target} ({cols})")
    return target


#: PostgreSQL keeps 63 bytes of a name; longer index names are shortened with a hash suffix.
_MAX_INDEX_NAME = 63


def index_name(table: str, columns: Sequence[str]) -> str:
    name = f"{table}__{'__'.join(columns)}"
    if len(name) > _MAX_INDEX_NAME:  # truncation alone could give two indexes one name
        name = f"{name[: _MAX_INDEX_NAME - 9]}_{hashlib.md5(name.encode()).hexdigest()[:8]}"
    return name


def ensure_indexes(
    wh: Warehouse, schema: str, table: str, keys: Sequence[Sequence[str]], load_time: str | None = None
) -> None:
    """Create the secondary indexes that keyed lookups into `table` need, where the engine has
    them: one per key, and a block-range index on its load-time column. Idempotent."""
    d = wh.dialect
    target = d.table(schema, table)
    specs = [(tuple(key), False) for key in keys] + ([((load_time,), True)] if load_time else [])
    for columns, block_range in specs:
        sql = d.create_index(target, index_name(table, columns), columns, block_range=block_range)
        if sql:
            wh.execute(sql)


#: Models whose rows hang off an event: re-emitting an event replaces all its rows as a unit.
EVENT_CHILD_MODELS = ("identifiers", "traits", "memberships")


#: Column a retracted copy of a core row adds: when the row was replaced.
RETRACTED_AT = "_retracted_at"
#: The final layer's state row (in the core schema): how far core and resolution had got.
FINAL_STATE = "nexus_final_state"


@dataclass(frozen=True)
class Retraction:
    """Where replaced core rows are copied, and the moment stamped on them (the run's `now`)."""

    table: str
    at: dt.datetime


def retracted_table_name(model: str) -> str:
    return f"nexus_{model}_retracted"


def iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def from_iso(value: str | None) -> dt.datetime | None:
    return None if value in (None, "") else dt.datetime.fromisoformat(str(value)).replace(tzinfo=None)


def replace_by_key(wh: Warehouse, target: str, staged: str, keys: Sequence[str], columns: Sequence[str]) -> int:
    """Idempotent write: rows of `staged` replace rows of `target` with the same key.

    Delete-then-insert inside the caller's transaction works on every engine and never doubles a
    row when a window is re-read.
    """
    d = wh.dialect
    if not keys:
        raise ValueError("replace_by_key needs at least one key column")
    wh.execute(d.delete_matching_keys(target, staged, keys))
    cols = ", ".join(d.quote(c) for c in columns)
    wh.execute(f"INSERT INTO {target} ({cols}) SELECT {cols} FROM {staged}")
    return wh.count(staged)


def replace_model_rows(
    wh: Warehouse,
    model: str,
    target: str,
    staged: str,
    columns: Sequence[str],
    retracted: Retraction | None = None,
    events: str | None = None,
) -> int:
    """Write a batch of a model: events by id; the other models event by event.

    When a source re-emits an event (a re-synced row), the identifiers, traits and memberships it
    had before are replaced by the new set, so a changed email or a dropped trait does not linger
    and a batch history ends equal to a one-shot build of the latest data. With `retracted`, the
    rows about to be replaced are first copied there, so incremental readers downstream
    (resolution, final tables) can undo what they had derived from them. `events`, a relation of
    (source, event_id), names the re-emitted events when `staged` no longer holds them all (rows
    rejected on the way).
    """
    d = wh.dialect
    events = events or staged
    if d.row_locator:
        return _replace_by_locator(wh, model, target, staged, columns, retracted, events)
    if retracted is not None:
        cols = ", ".join(d.quote(c) for c in columns)
        copy = f"SELECT {', '.join(f't.{d.quote(c)}' for c in columns)}, {d.literal(retracted.at)} FROM {target} t"
        # One SELECT per key, the second skipping what the first took: under an OR the two
        # subqueries cannot become joins (PostgreSQL then probes them row by row once the staged
        # keys outgrow work_mem).
        selects = [f"{copy} WHERE {d.key_in('t', staged, ['id'])}"]
        if model in EVENT_CHILD_MODELS:
            selects.append(
                f"{copy} WHERE {d.key_in('t', events, ['source', 'event_id'])} "
                f"AND NOT EXISTS (SELECT 1 FROM {staged} s WHERE s.{d.quote('id')} = t.{d.quote('id')})"
            )
        wh.execute(f"INSERT INTO {retracted.table} ({cols}, {d.quote(RETRACTED_AT)}) {' UNION ALL '.join(selects)}")
    if model in EVENT_CHILD_MODELS:  # rows without an event id match nothing (NULL never equals)
        wh.execute(d.delete_matching_keys(target, events, ["source", "event_id"]))
    return replace_by_key(wh, target, staged, ["id"], columns)


def _replace_by_locator(
    wh: Warehouse,
    model: str,
    target: str,
    staged: str,
    columns: Sequence[str],
    retracted: Retraction | None,
    events: str,
) -> int:
    """replace_model_rows on an engine with row locators: the rows to replace are found once, by
    their key columns alone, then copied and deleted by locator. One transaction (the caller's,
    when there is one) keeps the locators valid from the first statement to the last, and rolls
    the scratch table back with everything else on a failure."""
    d = wh.dialect
    keys = [(staged, ["id"])] + ([(events, ["source", "event_id"])] if model in EVENT_CHILD_MODELS else [])
    cols = ", ".join(d.quote(c) for c in columns)
    scratch = f"nexus_replaced_{model}"
    found = d.quote(scratch)
    located = " UNION ".join(
        f"SELECT t.{d.row_locator} AS located FROM {target} t WHERE {d.key_in('t', relation, k)}"
        for relation, k in keys
    )
    of_found = f"{d.row_locator} IN (SELECT located FROM {found})"
    with wh.transaction():
        wh.execute(d.create_temp_table_as(scratch, located))
        if retracted is not None:
            wh.execute(
                f"INSERT INTO {retracted.table} ({cols}, {d.quote(RETRACTED_AT)}) "
                f"SELECT {cols}, {d.literal(retracted.at)} FROM {target} WHERE {of_found}"
            )
        wh.execute(f"DELETE FROM {target} WHERE {of_found}")
        wh.execute(d.drop_table(found, temp=True))
        wh.execute(f"INSERT INTO {target} ({cols}) SELECT {cols} FROM {staged}")
    return wh.count(staged)
