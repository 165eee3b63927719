"""A task renews its claim on a source or layer while it runs, and stops if the claim is lost.

Real connections on DuckDB and on the PostgreSQL server. The renewal interval is shortened to a
fraction of a second (the shipped one is minutes); everything else is what a task runs.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_nexus import state as state_module
from airflow_provider_nexus.config import SchemasConfig
from airflow_provider_nexus.errors import NexusBusyError, WarehouseCancelledError
from airflow_provider_nexus.layers.common import RunContext, utcnow
from airflow_provider_nexus.operators.base import NexusBaseOperator
from airflow_provider_nexus.operators.resolution import NexusResolutionOperator
from airflow_provider_nexus.state import StateStore
from airflow_provider_nexus.warehouse import Warehouse

WarehouseConn = tuple[str, SchemasConfig, Callable[[str], list[tuple[Any, ...]]]]
#: Statements that run for minutes unless stopped.
ENDLESS = {
    "duckdb": "SELECT count(*) FROM range(200000000000) t(i) WHERE i % 7 = 3",
    "postgres": "SELECT pg_sleep(600)",
}


@pytest.fixture
def fast_renewal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(state_module, "LOCK_RENEWAL", dt.timedelta(seconds=0.05))


def _claims(wh: Warehouse, schemas: SchemasConfig) -> list[tuple[Any, ...]]:
    return wh.fetchall(f"SELECT scope, run_id, acquired_at FROM {wh.dialect.table(schemas.core, 'nexus_locks')}")


def _wait_for(condition: Callable[[], bool], seconds: float = 20.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


def _succeeds(action: Callable[[], None]) -> bool:
    try:
        action()
    except Exception:
        return False
    return True


def test_a_running_task_renews_its_claim(warehouse_conn: WarehouseConn, fast_renewal: None) -> None:
    conn_id, schemas, _ = warehouse_conn
    op = NexusBaseOperator(task_id="probe", conn_id=conn_id, schemas=schemas)
    claimed = utcnow() - dt.timedelta(minutes=20)  # as if the task had been running that long
    run = RunContext(run_id="r1", now=claimed)
    with op.warehouse() as wh:
        with op.exclusive(wh, "source:shop", run):
            assert _claims(wh, schemas)[0][:2] == ("source:shop", "adhoc/r1")
            # renewed by the task's own thread, on a connection of its own
            assert _wait_for(lambda: state_module._as_datetime(_claims(wh, schemas)[0][2]) > claimed)
            # so a run arriving now finds it live, although it was taken 20 minutes ago
            later = StateStore(wh, schemas.core)
            with pytest.raises(NexusBusyError, match="being processed by run 'adhoc/r1'"):
                later._acquire("source:shop", "adhoc/r2", claimed + state_module.LOCK_TIMEOUT)
        assert _claims(wh, schemas) == []  # released, and the renewals stopped with it
        time.sleep(0.2)
        assert _claims(wh, schemas) == []


def test_a_task_whose_claim_was_taken_over_stops_its_statements(
    warehouse_conn: WarehouseConn, fast_renewal: None
) -> None:
    """A claim left unrenewed past LOCK_TIMEOUT (its renewals failed) is another run's to take:
    the task that held it must not go on writing beside that run."""
    conn_id, schemas, _ = warehouse_conn
    op = NexusBaseOperator(task_id="probe", conn_id=conn_id, schemas=schemas)
    engine = "postgres" if conn_id.endswith("postgres") else "duckdb"
    locks = None
    with op.warehouse() as wh:
        with pytest.raises(WarehouseCancelledError, match="claim on final was taken over by another run"):
            with op.exclusive(wh, "final", RunContext(run_id="r1", now=utcnow())):
                locks = wh.dialect.table(schemas.core, "nexus_locks")
                # what a takeover does (DuckDB may refuse it while a renewal of the row commits)
                assert _wait_for(lambda: _succeeds(lambda: wh.execute(f"UPDATE {locks} SET run_id = 'other/r2'")))
                wh.execute(ENDLESS[engine])  # stopped by the renewal that finds the claim gone
        with pytest.raises(WarehouseCancelledError, match=r"no more .* statements run in this task"):
            wh.execute("SELECT 1")  # nor does anything after it
    with Warehouse.open(conn_id) as wh:
        assert wh.fetchall(f"SELECT scope, run_id FROM {locks}") == [("final", "other/r2")]  # left to its holder


def test_resolution_reads_its_watermark_under_its_claim(warehouse_conn: WarehouseConn) -> None:
    """While another run holds resolution, this one neither reads nor writes anything, not even
    to find that nothing is pending (a watermark read before the claim could be a run behind)."""
    conn_id, schemas, _ = warehouse_conn
    op = NexusResolutionOperator(task_id="resolve_person", conn_id=conn_id, schemas=schemas, entity_type="person")
    with Warehouse.open(conn_id) as wh:
        held = StateStore(wh, schemas.core)
        held.ensure()
        held._acquire("resolution:person", "other/r0", utcnow())
    with pytest.raises(NexusBusyError, match="resolution:person is being processed by run 'other/r0'"):
        op.execute({"run_id": "r1"})
    assert "nexus_locks" in op.compiled_sql
    assert "max(high_watermark)" not in op.compiled_sql
