"""A killed or timed-out task stops its warehouse statement and commits nothing of it.

Airflow stops a task in two ways, and both are driven here through the real mechanisms rather
than mocks: a kill sends SIGTERM, whose handler calls the operator's ``on_kill`` while the
statement waits (mimicked by installing the same handler Airflow's task runner installs); an
``execution_timeout`` raises ``AirflowTaskTimeout`` from SIGALRM (Airflow's own ``timeout``
context manager is used). The statements are real, on DuckDB and on the PostgreSQL server.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowTaskTimeout
from airflow.sdk.execution_time.timeout import timeout

from airflow_provider_nexus.airflow_run import airflow_env, run_dag_test
from airflow_provider_nexus.config import SchemasConfig
from airflow_provider_nexus.errors import WarehouseCancelledError
from airflow_provider_nexus.layers.common import RunContext
from airflow_provider_nexus.operators.base import NexusBaseOperator
from airflow_provider_nexus.warehouse import Warehouse

#: The `warehouse_conn` fixture: connection id, schemas, a reader of rows.
WarehouseConn = tuple[str, SchemasConfig, Callable[[str], list[tuple[Any, ...]]]]
#: Statements that run for minutes unless stopped, so a test that passes proves they were.
ENDLESS = {
    "duckdb": "SELECT count(*) FROM range(200000000000) t(i) WHERE i % 7 = 3",
    "postgres": "SELECT pg_sleep(600)",
}


def _operator(conn_id: str, schemas: SchemasConfig) -> NexusBaseOperator:
    return NexusBaseOperator(task_id="probe", conn_id=conn_id, schemas=schemas)


def _engine(conn_id: str) -> str:
    return "postgres" if conn_id.endswith("postgres") else "duckdb"


@contextmanager
def _killed_while_running(op: NexusBaseOperator, wh: Warehouse, statement: str) -> Iterator[None]:
    """SIGTERM this process once `statement` waits on the engine, with the handler Airflow's task
    runner installs (it calls the task's on_kill and returns)."""
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: op.on_kill())

    def kill_when_running() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (wh.running and wh.executed[-1] == statement):
            time.sleep(0.01)
        os.kill(os.getpid(), signal.SIGTERM)

    killer = threading.Thread(target=kill_when_running, daemon=True)
    killer.start()
    try:
        yield
    finally:
        killer.join()
        signal.signal(signal.SIGTERM, previous)


def _prepare(wh: Warehouse, schemas: SchemasConfig) -> str:
    wh.ensure_schema(schemas.core)
    probe = wh.dialect.table(schemas.core, "cancel_probe")
    wh.execute(f"CREATE TABLE {probe} (x INTEGER)")
    return probe


def test_killed_task_cancels_the_running_statement_and_rolls_back(
    warehouse_conn: WarehouseConn,
) -> None:
    conn_id, schemas, _ = warehouse_conn
    statement = ENDLESS[_engine(conn_id)]
    op = _operator(conn_id, schemas)
    with op.warehouse() as wh:
        probe = _prepare(wh, schemas)
        with (
            pytest.raises(WarehouseCancelledError, match="cancelled because the task was killed"),
            _killed_while_running(op, wh, statement),
            wh.transaction(),
        ):
            wh.execute(f"INSERT INTO {probe} VALUES (1)")
            wh.execute(statement)
        # the transaction rolled back and the session goes on (the task still releases its locks)
        assert wh.scalar(f"SELECT count(*) FROM {probe}") == 0
        assert not wh.running
    # the SQL that ran is still shown, the kill included
    assert statement in op.compiled_sql


def test_on_kill_without_a_running_statement_does_nothing(
    warehouse_conn: WarehouseConn,
) -> None:
    conn_id, schemas, _ = warehouse_conn
    op = _operator(conn_id, schemas)
    op.on_kill()  # before execute opened anything
    with op.warehouse() as wh:
        op.on_kill()  # between statements: nothing to stop, and the next statement is unaffected
        assert wh.scalar("SELECT 41 + 1") == 42


@pytest.mark.parametrize("warehouse_conn", ["postgres"], indirect=True)
def test_timeout_on_postgres_stops_the_statement_on_the_server_and_releases_the_lock(
    warehouse_conn: WarehouseConn,
) -> None:
    conn_id, schemas, read = warehouse_conn
    op = _operator(conn_id, schemas)
    run = RunContext(run_id="timed_out")
    with op.warehouse() as wh:
        probe = _prepare(wh, schemas)
        backend = wh.scalar("SELECT pg_backend_pid()")
        # the exception Airflow raises is the one reported, not a failed ROLLBACK's
        with (
            pytest.raises(AirflowTaskTimeout),
            op.exclusive(wh, "source:crm", run),
            timeout(0.5),
            wh.transaction(),
        ):
            wh.execute(f"INSERT INTO {probe} VALUES (1)")
            wh.execute(ENDLESS["postgres"])
        # without the cancel the server would run pg_sleep(600) to its end, holding its locks
        state = read(f"SELECT state FROM pg_stat_activity WHERE pid = {int(backend)}")
        assert state and state[0][0] != "active"
        assert wh.scalar(f"SELECT count(*) FROM {probe}") == 0
        assert wh.scalar(f"SELECT count(*) FROM {wh.dialect.table(schemas.core, 'nexus_locks')}") == 0


@pytest.mark.parametrize("warehouse_conn", ["postgres"], indirect=True)
def test_killed_task_stops_a_streaming_copy(
    warehouse_conn: WarehouseConn,
) -> None:
    """A raw load streams files into COPY from Python; a kill stops it like any statement."""
    from airflow_provider_nexus.dialects.postgres import _copy_rows

    conn_id, schemas, _ = warehouse_conn
    op = _operator(conn_id, schemas)
    give_up = time.monotonic() + 60

    def endless_file() -> Iterator[list[Any]]:  # a file that never ends (a backstop stops it)
        while time.monotonic() < give_up:
            yield ["a value"]

    with op.warehouse() as wh:
        probe = _prepare(wh, schemas)
        wh.execute("CREATE TEMP TABLE copy_stage (v TEXT, file TEXT)")
        shown = 'COPY "copy_stage" ("v", "file") FROM STDIN -- endless.ndjson'
        with (
            pytest.raises(WarehouseCancelledError, match="cancelled because the task was killed"),
            _killed_while_running(op, wh, shown),
            wh.transaction(),
        ):
            wh.execute(f"INSERT INTO {probe} VALUES (1)")
            _copy_rows(wh, wh.dialect, "copy_stage", ["v"], endless_file(), "endless.ndjson", "file")
        assert time.monotonic() < give_up, "the COPY ran on until its input ended"
        assert wh.scalar(f"SELECT count(*) FROM {probe}") == 0
        assert wh.scalar("SELECT 41 + 1") == 42


#: DuckDB statements a timeout's signal stops at once, and one it would leave running for minutes
#: (a CREATE TABLE AS of an aggregate checks the signal only at its end).
DUCKDB_UNDER_TIMEOUT = {
    "stopped_by_the_signal": ENDLESS["duckdb"],
    "only_stopped_by_the_watchdog": "CREATE TEMP TABLE endless AS " + ENDLESS["duckdb"],
}


@pytest.mark.parametrize("warehouse_conn", ["duckdb"], indirect=True)
@pytest.mark.parametrize("kind", DUCKDB_UNDER_TIMEOUT)
def test_timeout_on_duckdb_stops_the_statement_and_rolls_back(
    kind: str,
    warehouse_conn: WarehouseConn,
) -> None:
    conn_id, schemas, _ = warehouse_conn
    op = _operator(conn_id, schemas)
    with op.warehouse() as wh:
        probe = _prepare(wh, schemas)
        # a backstop, so that a statement nothing stopped fails this test instead of hanging it
        backstop = threading.Timer(60, wh.connection.interrupt)
        started = time.monotonic()
        try:
            with pytest.raises(WarehouseCancelledError, match=r"cancelled|interrupted"), timeout(0.5), wh.transaction():
                wh.execute(f"INSERT INTO {probe} VALUES (1)")
                backstop.start()
                wh.execute(DUCKDB_UNDER_TIMEOUT[kind])
        finally:
            backstop.cancel()
        assert time.monotonic() - started < 30, "the timed-out statement ran on"
        assert wh.scalar(f"SELECT count(*) FROM {probe}") == 0
        assert wh.scalar("SELECT 41 + 1") == 42  # the session goes on


# -- through Airflow's task runner (dag.test() in a child process) ---------------------------

_PROBE_DAG = '''
import datetime as dt

from airflow.sdk import DAG

from airflow_provider_nexus.operators.base import NexusBaseOperator


class LongStatementOperator(NexusBaseOperator):
    """What a DAG that reuses the Nexus base operator for its own SQL looks like."""

    def execute(self, context):
        with self.warehouse() as wh, wh.transaction():
            wh.execute({insert})
            wh.execute({statement})


with DAG(dag_id="{dag_id}", schedule=None, start_date=dt.datetime(2024, 1, 1), catchup=False):
    LongStatementOperator(
        task_id="long", conn_id="nexus_probe", retries=0, execution_timeout={timeout}
    )
'''


def _sleepers(read: Callable[[str], list[tuple[Any, ...]]]) -> list[tuple[Any, ...]]:
    return read(
        "SELECT pid FROM pg_stat_activity WHERE state = 'active' AND query = 'SELECT pg_sleep(600)'"
        " AND pid <> pg_backend_pid()"
    )


def _sigterm_task_when_sleeping(read: Callable[[str], list[tuple[Any, ...]]]) -> threading.Thread:
    """A thread that sends SIGTERM to the dag.test() child once its statement runs, as a worker kill does."""
    import psutil

    def kill() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not _sleepers(read):
            time.sleep(0.1)
        for child in psutil.Process().children(recursive=True):
            if "airflow_provider_nexus.airflow_run" in " ".join(child.cmdline()):
                child.send_signal(signal.SIGTERM)

    return threading.Thread(target=kill, daemon=True)


def _run_probe_dag(
    how: str, conn_id: str, probe: str, statement: str, tmp_path: Any, killer: threading.Thread | None = None
) -> dict[str, Any]:
    """dag.test() of a DAG whose one task inserts into `probe` and runs `statement`, in a child
    process, with a 3 s execution_timeout or none (`how`); its result."""
    dags = tmp_path / "dags"
    dags.mkdir()
    dag_id = f"nexus_cancel_{how}"
    limit = "dt.timedelta(seconds=3)" if how == "execution_timeout" else "None"
    (dags / "probe.py").write_text(
        _PROBE_DAG.format(
            insert=repr(f"INSERT INTO {probe} VALUES (1)"), statement=repr(statement), dag_id=dag_id, timeout=limit
        )
    )
    # the child reaches the warehouse through the connection the fixture defined
    env = airflow_env(
        tmp_path / "home", dags, {"AIRFLOW_CONN_NEXUS_PROBE": os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"]}
    )
    if killer is not None:
        killer.start()
    result = run_dag_test(env, dag_id, dt.datetime(2024, 1, 2, tzinfo=dt.UTC), timeout=300)
    if killer is not None:
        killer.join()
    assert result["tasks"] == {"long": "failed"}, result.get("log", "")[-4000:]
    return result


@pytest.mark.airflow
@pytest.mark.parametrize("warehouse_conn", ["postgres"], indirect=True)
@pytest.mark.parametrize("how", ["execution_timeout", "killed"])
def test_airflow_stops_the_postgres_statement_of_a_timed_out_or_killed_task(
    how: str,
    warehouse_conn: WarehouseConn,
    tmp_path: Any,
) -> None:
    conn_id, schemas, read = warehouse_conn
    with Warehouse.open(conn_id) as wh:
        probe = _prepare(wh, schemas)
    killer = _sigterm_task_when_sleeping(read) if how == "killed" else None
    result = _run_probe_dag(how, conn_id, probe, ENDLESS["postgres"], tmp_path, killer)
    expected = "AirflowTaskTimeout" if how == "execution_timeout" else "cancelled because the task was killed"
    assert expected in result["log"]
    # nothing still runs on the server for the task, and its insert was rolled back
    assert _sleepers(read) == []
    assert read(f"SELECT count(*) FROM {probe}") == [(0,)]


@pytest.mark.airflow
@pytest.mark.parametrize("warehouse_conn", ["duckdb"], indirect=True)
def test_airflow_stops_the_duckdb_statement_of_a_timed_out_task(
    warehouse_conn: WarehouseConn,
    tmp_path: Any,
) -> None:
    """A statement DuckDB would run for many minutes despite the timeout's signal."""
    conn_id, schemas, read = warehouse_conn
    with Warehouse.open(conn_id) as wh:
        probe = _prepare(wh, schemas)
    started = time.monotonic()
    result = _run_probe_dag(
        "execution_timeout", conn_id, probe, DUCKDB_UNDER_TIMEOUT["only_stopped_by_the_watchdog"], tmp_path
    )
    assert time.monotonic() - started < 120, "the timed-out statement ran on"
    # the watchdog's reason, or DuckDB's own word when the signal stopped the statement after all
    assert re.search(r"cancelled because the task's timeout passed|interrupted while it ran", result["log"])
    assert read(f"SELECT count(*) FROM {probe}") == [(0,)]


_KILLED_WORKER = """
import sys
from airflow_provider_nexus.warehouse import Warehouse
with Warehouse.open(sys.argv[1]) as wh:
    wh.execute("SELECT pg_sleep(600)")
"""


@pytest.mark.parametrize("warehouse_conn", ["postgres"], indirect=True)
def test_postgres_stops_the_statement_of_a_worker_killed_outright(
    warehouse_conn: WarehouseConn,
) -> None:
    """SIGKILL runs no handler; the session asks the server to notice that its client is gone."""
    conn_id, _, read = warehouse_conn
    worker = subprocess.Popen([sys.executable, "-c", _KILLED_WORKER, conn_id])
    try:
        deadline = time.monotonic() + 120
        while not _sleepers(read) and worker.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _sleepers(read), "the worker's statement never started"
    finally:
        worker.kill()
        worker.wait()
    # without the check the server would run pg_sleep(600) to its end
    deadline = time.monotonic() + 60
    while _sleepers(read) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _sleepers(read) == []
