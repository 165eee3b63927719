"""A small session over a DB-API connection from a standard Airflow hook.

It runs statements one by one, groups them in transactions, and remembers what ran so the
operator can show the SQL in the Airflow UI.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import sqlparse

from airflow_provider_nexus.dialects import Dialect, dialect_for_connection, get_dialect
from airflow_provider_nexus.errors import NexusError, WarehouseCancelledError, WarehouseUnavailableError

log = logging.getLogger(__name__)

#: How long after a due alarm the watchdog cancels a statement the alarm did not stop.
ALARM_GRACE_SECONDS = 1.0


def split_statements(sql: str) -> list[str]:
    """Split a rendered script into statements, ignoring semicolons inside strings/comments.

    sqlparse costs milliseconds per statement (about a tenth of a 1% increment's time on
    DuckDB), so it runs only where needed: text without a semicolon is one statement, and only a
    statement that starts with a comment can be nothing but comments.
    """
    out = []
    for stmt in sqlparse.split(sql) if ";" in sql else [sql]:
        stripped = stmt.strip().rstrip(";").strip()
        if not stripped:
            continue
        if not stripped.startswith(("--", "/*")) or sqlparse.format(stripped, strip_comments=True).strip():
            out.append(stripped)
    return out


class Warehouse:
    """Execute SQL on one connection; `transaction()` makes a group of writes atomic."""

    def __init__(self, dialect: Dialect, connection: Any, hook: Any = None) -> None:
        self.dialect = dialect
        self.connection = connection
        self.hook = hook
        self.executed: list[str] = []
        #: template name -> its rendered SQL, as this task ran it (`show_rendered`)
        self.rendered: dict[str, str] = {}
        self._in_transaction = False
        #: a statement is waiting on the engine (cancel() has something to stop)
        self._running = False
        #: why cancel() stopped the running statement, until its error is raised
        self._cancelled_because: str | None = None
        #: why stop() ended this session's writing: every later statement but ROLLBACK fails
        self._stopped_because: str | None = None

    # -- opening ---------------------------------------------------------------------------
    @classmethod
    @contextmanager
    def open(cls, conn_id: str, dialect: str | Dialect | None = None) -> Iterator[Warehouse]:
        """Open the warehouse behind an Airflow connection through its standard hook."""
        if dialect is None:
            resolved = dialect_for_connection(conn_id)
        elif isinstance(dialect, str):
            resolved = get_dialect(dialect)
        else:
            resolved = dialect
        hook = resolved.make_hook(conn_id)
        try:
            conn = resolved.connect(hook)
        except NexusError:
            raise
        except Exception as exc:
            # Unreachable host, bad credentials, missing file: say which connection, keep it retryable.
            raise WarehouseUnavailableError(
                f"cannot open the {resolved.name} warehouse of connection {conn_id!r}: {type(exc).__name__}: {exc}"
            ) from exc
        try:
            yield cls(resolved, conn, hook)
        finally:
            conn.close()

    # -- running ---------------------------------------------------------------------------
    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        """Run every statement of `sql` (a script is split on statement boundaries)."""
        statements = [sql] if params is not None else split_statements(sql)
        for stmt in statements:
            self._run(stmt, params)

    def execute_statement(self, sql: str) -> None:
        """Run exactly one statement, skipping the script splitter (hot loops use this)."""
        self._run(sql, None)

    def fetchall(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        cur = self._run(sql, params)
        rows = cur.fetchall()
        return [tuple(r) for r in rows]

    def fetchone(self, sql: str, params: Sequence[Any] | None = None) -> tuple[Any, ...] | None:
        rows = self.fetchall(sql, params)
        return rows[0] if rows else None

    def scalar(self, sql: str, params: Sequence[Any] | None = None) -> Any:
        row = self.fetchone(sql, params)
        return None if row is None else row[0]

    def _run(self, sql: str, params: Sequence[Any] | None) -> Any:
        started = time.perf_counter()
        cur = self.dialect.cursor(self.connection)
        with self.statement(sql):
            if params is None:
                cur.execute(sql)
            else:
                cur.execute(sql, list(params))
        elapsed = time.perf_counter() - started
        if elapsed > 1.0:
            log.info("statement took %.1fs: %s", elapsed, sql.split("\n", 1)[0][:120])
        return cur

    @contextmanager
    def statement(self, shown: str) -> Iterator[None]:
        """Around the driver calls of one statement (`shown` is what the UI lists): cancel() can
        stop it while it runs, and the engine's errors come out as ours. Statements that do not
        go through `execute` (a COPY streamed from a file) use it directly."""
        self.executed.append(shown)
        self._running = True  # before the check below, so a stop() in between cancels it
        if self._stopped_because is not None and shown != "ROLLBACK":
            self._running = False
            raise WarehouseCancelledError(
                f"no more {self.dialect.name} statements run in this task because {self._stopped_because}"
            )
        watchdog = self._watch_alarm()
        try:
            with self.dialect.translate_errors():
                yield
        except Exception as exc:
            reason, self._cancelled_because = self._cancelled_because, None
            if reason is None:
                raise
            raise WarehouseCancelledError(
                f"the {self.dialect.name} statement was cancelled because {reason}; "
                "its transaction is rolled back, nothing of it was committed"
            ) from exc
        except BaseException:
            # A timeout or signal raised inside the driver's wait: the engine may still be running
            # the statement (PostgreSQL runs it to its end, holding its locks, even once the
            # connection is closed), so stop it and leave the connection usable for the rollback.
            self._abandon()
            raise
        else:
            self._cancelled_because = None  # the statement ended before the cancel reached it
            if self._stopped_because is not None and shown != "ROLLBACK":
                # stop() came as the statement started, too early for the engine to cancel it
                raise WarehouseCancelledError(
                    f"the task stopped after this {self.dialect.name} statement because {self._stopped_because}"
                )
        finally:
            self._running = False
            if watchdog is not None:
                watchdog.cancel()

    def _watch_alarm(self) -> threading.Timer | None:
        """On engines a SIGALRM may not stop (`Dialect.needs_alarm_watchdog`), arm a thread that
        cancels the statement about to run if it still runs once a pending timeout is due.

        A one-shot real-time alarm with a Python handler is what a timeout looks like: Airflow's
        execution_timeout, or its `timeout` context manager. Signals reach only the main thread.
        """
        if not self.dialect.needs_alarm_watchdog or threading.current_thread() is not threading.main_thread():
            return None
        if not hasattr(signal, "getitimer"):  # Windows: no alarms
            return None
        remaining, interval = signal.getitimer(signal.ITIMER_REAL)
        if remaining <= 0 or interval > 0 or not callable(signal.getsignal(signal.SIGALRM)):
            return None
        watchdog = threading.Timer(remaining + ALARM_GRACE_SECONDS, self.cancel, args=("the task's timeout passed",))
        watchdog.daemon = True
        watchdog.start()
        return watchdog

    def cancel(self, reason: str) -> bool:
        """Stop the statement running now, if any (a killed task's on_kill calls this); True if
        the engine was asked. The statement then fails with WarehouseCancelledError naming
        `reason`, and the open transaction rolls back as on any error."""
        if not self._running:
            return False
        self._cancelled_because = reason
        try:
            asked = self.dialect.cancel(self.connection)
        except Exception:
            log.warning("could not ask %s to cancel the running statement", self.dialect.name, exc_info=True)
            asked = False
        if not asked:
            self._cancelled_because = None
        return asked

    def stop(self, reason: str) -> None:
        """End this session's work from another thread: cancel the running statement and fail
        every later one but a ROLLBACK, each with WarehouseCancelledError naming `reason`."""
        self._stopped_because = reason
        self.cancel(reason)

    def _abandon(self) -> None:
        self._cancelled_because = None
        try:
            if self.dialect.cancel(self.connection):
                self.dialect.settle_after_cancel(self.connection)
                log.warning("cancelled the interrupted %s statement", self.dialect.name)
        except Exception:
            log.warning("could not cancel the interrupted %s statement", self.dialect.name, exc_info=True)

    def check_cancelled(self) -> None:
        """Raise if cancel() was asked to stop the running statement. A statement that streams
        its input from Python (COPY) calls this between writes: the driver sees the server's error
        only once the stream ends, and a stream ended normally could load part of its input."""
        if self._cancelled_because is not None:
            raise WarehouseCancelledError(f"the input stream was stopped because {self._cancelled_because}")

    @property
    def running(self) -> bool:
        """A statement is waiting on the engine now."""
        return self._running

    @property
    def in_transaction(self) -> bool:
        return self._in_transaction

    @contextmanager
    def transaction(self) -> Iterator[Warehouse]:
        """All writes inside commit together or not at all (nested calls join the outer one)."""
        if self._in_transaction or not self.dialect.supports_transactions:
            yield self
            return
        self._run("BEGIN TRANSACTION", None)
        self._in_transaction = True
        try:
            yield self
        except BaseException:
            self._in_transaction = False
            try:
                self._run("ROLLBACK", None)
            except Exception:
                # the error that ended the transaction is the one to report; an engine that
                # cannot roll back here does so when the connection closes
                log.warning("ROLLBACK failed after an error", exc_info=True)
            raise
        self._in_transaction = False
        try:
            self._run("COMMIT", None)
        except BaseException:
            try:  # a refused COMMIT (a stopped session) must not leave the transaction open
                self._run("ROLLBACK", None)
            except Exception:
                log.warning("ROLLBACK failed after a failed COMMIT", exc_info=True)
            raise

    # -- catalog ---------------------------------------------------------------------------
    def ensure_schema(self, schema: str) -> None:
        self.dialect.ensure_schema(self, schema)

    def columns(self, schema: str, table: str) -> list[str]:
        return self.dialect.list_columns(self, schema, table)

    def tables(self, schema: str) -> list[str]:
        """Tables and views of `schema`, sorted."""
        return self.dialect.list_tables(self, schema)

    def views(self, schema: str) -> list[str]:
        return self.dialect.list_views(self, schema)

    def relation_columns(self, relation: str) -> list[str]:
        """Column names of any relation (temp tables included), lower-cased."""
        cur = self._run(f"SELECT * FROM {relation} WHERE 1 = 0", None)
        return [str(c[0]).lower() for c in cur.description]

    def table_exists(self, schema: str, table: str) -> bool:
        return bool(self.columns(schema, table))

    def count(self, relation: str) -> int:
        return int(self.scalar(f"SELECT count(*) FROM {relation}") or 0)

    def executed_sql(self) -> str:
        return ";\n\n".join(self.executed) + (";" if self.executed else "")

    def show_rendered(self, template: str, sql: str) -> None:
        """Record `sql`, rendered from `template`, to be shown ahead of the statements (`shown_sql`)."""
        self.rendered[template] = sql

    def shown_sql(self) -> str:
        """What a task shows as the SQL that ran: the rendered templates first (Airflow keeps only
        the first `[core] max_templated_field_length` characters, 4096 by default), then every
        statement in the order it ran."""
        if not self.rendered:
            return self.executed_sql()
        templates = "\n\n".join(f"-- {name}\n{sql.strip()};" for name, sql in self.rendered.items())
        return f"{templates}\n\n-- every statement this task ran, in order\n\n{self.executed_sql()}"
