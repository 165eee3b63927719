"""Durable per-source, per-layer watermarks, kept in the warehouse itself.

XCom only carries a run's window to downstream tasks of the same run; the state table is the
memory between runs. A layer writes its new watermark inside the same transaction as the rows it
covers, so a task killed half-way leaves the old watermark and no partial rows.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass

from airflow_provider_nexus.dialects.base import utc_naive
from airflow_provider_nexus.errors import NexusBusyError, NexusError
from airflow_provider_nexus.layers.common import utcnow
from airflow_provider_nexus.warehouse import Warehouse

log = logging.getLogger(__name__)

WATERMARKS = "nexus_watermarks"
LOADED_FILES = "nexus_loaded_files"
LOCKS = "nexus_locks"
#: A claim not renewed for this long is taken over: its task died without releasing it.
LOCK_TIMEOUT = dt.timedelta(minutes=30)
#: How often a running task renews its claim (`renewing`), well inside LOCK_TIMEOUT so that a
#: few failed renewals in a row (a warehouse briefly unreachable) do not lose it.
LOCK_RENEWAL = dt.timedelta(minutes=5)


@dataclass(frozen=True)
class LoadedFile:
    path: str
    size: int
    mtime: float


class StateStore:
    def __init__(self, wh: Warehouse, schema: str) -> None:
        self.wh = wh
        self.schema = schema
        d = wh.dialect
        self.watermarks = d.table(schema, WATERMARKS)
        self.loaded_files = d.table(schema, LOADED_FILES)
        self.locks = d.table(schema, LOCKS)

    def ensure(self) -> None:
        d = self.wh.dialect
        self.wh.ensure_schema(self.schema)
        self.wh.execute(
            f"CREATE TABLE IF NOT EXISTS {self.watermarks} ("
            f"source {d.text_type} NOT NULL, layer {d.text_type} NOT NULL, "
            f"high_watermark {d.timestamp_type}, run_id {d.text_type}, updated_at {d.timestamp_type})"
        )
        self.wh.execute(
            f"CREATE TABLE IF NOT EXISTS {self.loaded_files} ("
            f"source {d.text_type} NOT NULL, raw_table {d.text_type} NOT NULL, path {d.text_type} NOT NULL, "
            f"size {d.bigint_type}, mtime {d.double_type}, rows_read {d.bigint_type}, "
            f"run_id {d.text_type}, loaded_at {d.timestamp_type})"
        )
        self.wh.execute(
            # no PRIMARY KEY: several warehouses do not enforce one (BigQuery refuses it without
            # NOT ENFORCED); `lock` does not rely on it
            f"CREATE TABLE IF NOT EXISTS {self.locks} (scope {d.text_type} NOT NULL, "
            # acquired_at: when the claim was taken or last renewed
            f"run_id {d.text_type} NOT NULL, acquired_at {d.timestamp_type})"
        )

    # -- one run at a time per scope ---------------------------------------------------------
    @contextmanager
    def lock(self, scope: str, run_id: str, now: dt.datetime) -> Iterator[None]:
        """Hold `scope` (a source, or a layer) for this run; another run gets a retryable error.

        Claiming is insert-then-look, so it holds where primary keys are not enforced (Snowflake,
        BigQuery, Redshift, Databricks): a run inserts its row if the scope has none, then reads
        the scope's rows; if another run's row is there too, it withdraws its own and backs off.
        A run's read follows its own insert, so two runs can both back off but never both hold.
        A retry of the same run re-enters; a claim not renewed for LOCK_TIMEOUT (its task was
        killed) is taken over. A task that runs longer keeps its claim with `renewing`.
        """
        self._acquire(scope, run_id, now)
        try:
            yield
        except BaseException:
            # the task's own error is the one to report, even when its session is gone
            try:
                self._release(scope, run_id)
            except Exception:
                log.warning(
                    "could not release %s for run %r; another run takes it over after %s",
                    scope,
                    run_id,
                    LOCK_TIMEOUT,
                    exc_info=True,
                )
            raise
        self._release(scope, run_id)

    def renew(self, scope: str, run_id: str, now: dt.datetime) -> bool:
        """Move the claim's time to `now`; False if `run_id` no longer holds `scope`."""
        d = self.wh.dialect
        mine = f"scope = {d.literal(scope)} AND run_id = {d.literal(run_id)}"
        self.wh.execute(f"UPDATE {self.locks} SET acquired_at = {d.literal(now)} WHERE {mine}")
        return bool(self.wh.fetchall(f"SELECT 1 FROM {self.locks} WHERE {mine}"))

    def _release(self, scope: str, run_id: str, attempts: int = 3) -> None:
        d = self.wh.dialect
        sql = f"DELETE FROM {self.locks} WHERE scope = {d.literal(scope)} AND run_id = {d.literal(run_id)}"
        for attempt in range(attempts):
            try:
                self.wh.execute(sql)
                return
            except NexusError:
                raise  # the session was stopped or cancelled: trying again cannot help
            except Exception:
                # warehouses that refuse concurrent DML on one table (BigQuery, Delta without
                # row-level concurrency) may refuse this beside another task's claim or renewal
                if attempt == attempts - 1:
                    raise
                time.sleep(1 + attempt)

    def _acquire(self, scope: str, run_id: str, now: dt.datetime, attempts: int = 3) -> None:
        d = self.wh.dialect
        where_scope = f"scope = {d.literal(scope)}"
        try:
            self.wh.execute(
                f"INSERT INTO {self.locks} (scope, run_id, acquired_at) "
                f"SELECT {d.literal(scope)}, {d.literal(run_id)}, {d.literal(now)} "
                f"WHERE NOT EXISTS (SELECT 1 FROM {self.locks} WHERE {where_scope})"
            )
        except Exception:
            # A concurrent insert won a key the engine enforces: the scope then has a row. With
            # none, the insert failed for another reason (privileges, the table), which is the error.
            if self.wh.in_transaction or not self.wh.fetchall(f"SELECT 1 FROM {self.locks} WHERE {where_scope}"):
                raise
        rows = self.wh.fetchall(f"SELECT run_id, acquired_at FROM {self.locks} WHERE {where_scope}")
        others = [(holder, at) for holder, at in rows if holder != run_id]
        if not others:
            if rows:  # a retry of the same run: the claim's time restarts with it
                self.renew(scope, run_id, now)
                return
            if attempts <= 0:  # released and re-taken as fast as we look: let the task retry
                raise NexusBusyError(f"{scope} could not be claimed (contended); this task will retry.")
            return self._acquire(scope, run_id, now, attempts - 1)
        if len(others) < len(rows):  # we raced another run: withdraw, never hold together
            self.wh.execute(f"DELETE FROM {self.locks} WHERE {where_scope} AND run_id = {d.literal(run_id)}")
        holder_run, acquired_at = min(others, key=lambda row: str(row[0]))
        stale_before = now - LOCK_TIMEOUT
        if len(others) == 1 and acquired_at is not None and _as_datetime(acquired_at) < stale_before:
            # still stale at the update: a renewal that landed since the read keeps the claim
            self.wh.execute(
                f"UPDATE {self.locks} SET run_id = {d.literal(run_id)}, acquired_at = {d.literal(now)} "
                f"WHERE {where_scope} AND run_id = {d.literal(holder_run)} "
                f"AND acquired_at < {d.literal(stale_before)}"
            )
            if [r[0] for r in self.wh.fetchall(f"SELECT run_id FROM {self.locks} WHERE {where_scope}")] == [run_id]:
                return
        raise NexusBusyError(
            f"{scope} is being processed by run {holder_run!r} (since {acquired_at}); two runs never write "
            f"the same source or layer at once. This task will retry (a claim not renewed for {LOCK_TIMEOUT} "
            "is taken over: its task died)."
        )

    # -- watermarks --------------------------------------------------------------------------
    def get(self, source: str, layer: str) -> dt.datetime | None:
        d = self.wh.dialect
        value = self.wh.scalar(
            f"SELECT max(high_watermark) FROM {self.watermarks} "
            f"WHERE source = {d.literal(source)} AND layer = {d.literal(layer)}"
        )
        return value if value is None else _as_datetime(value)

    def all(self) -> dict[tuple[str, str], dt.datetime | None]:
        rows = self.wh.fetchall(f"SELECT source, layer, high_watermark FROM {self.watermarks}")
        return {(r[0], r[1]): r[2] for r in rows}

    def set(self, source: str, layer: str, high: dt.datetime, run_id: str, now: dt.datetime) -> None:
        """Replace the watermark; call inside the transaction of the write it covers."""
        d = self.wh.dialect
        where = f"source = {d.literal(source)} AND layer = {d.literal(layer)}"
        self.wh.execute(f"DELETE FROM {self.watermarks} WHERE {where}")
        self.wh.execute(
            f"INSERT INTO {self.watermarks} (source, layer, high_watermark, run_id, updated_at) VALUES "
            f"({d.literal(source)}, {d.literal(layer)}, {d.literal(high)}, {d.literal(run_id)}, {d.literal(now)})"
        )

    def reset(self, source: str, layer: str) -> None:
        d = self.wh.dialect
        self.wh.execute(
            f"DELETE FROM {self.watermarks} WHERE source = {d.literal(source)} AND layer = {d.literal(layer)}"
        )

    # -- file ledger ---------------------------------------------------------------------------
    def loaded_files_of(self, source: str, raw_table: str) -> dict[str, LoadedFile]:
        d = self.wh.dialect
        rows = self.wh.fetchall(
            f"SELECT path, size, mtime FROM {self.loaded_files} "
            f"WHERE source = {d.literal(source)} AND raw_table = {d.literal(raw_table)}"
        )
        return {r[0]: LoadedFile(r[0], int(r[1]), float(r[2])) for r in rows}

    def record_files(
        self, source: str, raw_table: str, files: list[tuple[LoadedFile, int]], run_id: str, now: dt.datetime
    ) -> None:
        d = self.wh.dialect
        for file, rows_read in files:
            self.wh.execute(
                f"DELETE FROM {self.loaded_files} WHERE source = {d.literal(source)} "
                f"AND raw_table = {d.literal(raw_table)} AND path = {d.literal(file.path)}"
            )
            self.wh.execute(
                f"INSERT INTO {self.loaded_files} VALUES ({d.literal(source)}, {d.literal(raw_table)}, "
                f"{d.literal(file.path)}, {d.literal(file.size)}, {d.literal(file.mtime)}, {d.literal(rows_read)}, "
                f"{d.literal(run_id)}, {d.literal(now)})"
            )


@contextmanager
def renewing(
    open_warehouse: Callable[[], AbstractContextManager[Warehouse]],
    schema: str,
    scope: str,
    run_id: str,
    on_lost: Callable[[str], None],
    every: dt.timedelta | None = None,
) -> Iterator[None]:
    """Renew `run_id`'s claim on `scope` every `every` (LOCK_RENEWAL) while the body runs.

    The renewals run on a thread with a connection of their own (the task's connection is busy
    with its statements and is not shared across threads), opened at the first renewal and
    opened again after an error; each renewal commits at once. `on_lost` is called with the
    reason, and the renewals stop, when the task must write no more: a renewal finds the claim
    no longer this run's (it went unrenewed for LOCK_TIMEOUT and another run took it), or the
    renewals have failed for so long that the claim may be taken before the next one.
    """
    every = every or LOCK_RENEWAL
    # the last moment a failed renewal may still be retried: one interval before the claim is stale
    give_up_after = (LOCK_TIMEOUT - every).total_seconds()
    stop = threading.Event()

    def renew_until_stopped() -> None:
        last_renewed = time.monotonic()
        with ExitStack() as session:
            wh: Warehouse | None = None
            while not stop.wait(every.total_seconds()):
                try:
                    if wh is None:
                        wh = session.enter_context(open_warehouse())
                    held = StateStore(wh, schema).renew(scope, run_id, utcnow())
                except Exception:
                    wh = None
                    try:
                        session.close()  # open a fresh connection for the next try
                    except Exception:
                        log.debug("closing the renewal connection failed", exc_info=True)
                    if time.monotonic() - last_renewed >= give_up_after:
                        if not stop.is_set():
                            on_lost(f"its claim on {scope} could not be renewed for {LOCK_TIMEOUT - every}")
                        return
                    log.warning(
                        "could not renew the claim on %s for run %r; trying again in %s",
                        scope,
                        run_id,
                        every,
                        exc_info=True,
                    )
                    continue
                if not held:
                    if not stop.is_set():  # not a claim this run has just released
                        on_lost(f"its claim on {scope} is no longer held by this run (another run took it over)")
                    return
                last_renewed = time.monotonic()

    renewer = threading.Thread(target=renew_until_stopped, name=f"nexus-claim-{scope}", daemon=True)
    renewer.start()
    try:
        yield
    finally:
        stop.set()
        # a renewal under way ends with its statement; a daemon thread never holds the task up
        renewer.join(timeout=60)


def _as_datetime(value: object) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return utc_naive(value)
    return dt.datetime.fromisoformat(str(value))
