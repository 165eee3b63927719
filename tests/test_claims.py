"""A task renews its claim on a source or layer while it runs, and stops when it may have lost it.

Real connections to the PostgreSQL server (a DuckDB file keeps other processes out by itself, so
DuckDB claims are not renewed; checked too). The renewal interval is shortened to a fraction of
a second (the shipped one is minutes); everything else is what a task runs.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from airflow_provider_nexus import state as state_module
from airflow_provider_nexus.config import SchemasConfig
from airflow_provider_nexus.errors import NexusBusyError, WarehouseCancelledError
from airflow_provider_nexus.layers.common import RunContext, utcnow
from airflow_provider_nexus.operators.base import NexusBaseOperator
from airflow_provider_nexus.operators.resolution import NexusResolutionOperator
from airflow_provider_nexus.state import StateStore, renewing
from airflow_provider_nexus.warehouse import Warehouse

WarehouseConn = tuple[str, SchemasConfig, Callable[[str], list[tuple[Any, ...]]]]
#: Runs for minutes unless stopped; the session's statement_timeout ends it if the test fails.
ENDLESS = "SELECT pg_sleep(600)"
on_postgres = pytest.mark.parametrize("warehouse_conn", ["postgres"], indirect=True)


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


@contextmanager
def _bounded(wh: Warehouse) -> Iterator[None]:
    """A test that fails must not wait ten minutes on ENDLESS."""
    wh.execute("SET statement_timeout = '30s'")
    yield


@on_postgres
def test_a_running_task_renews_its_claim(warehouse_conn: WarehouseConn, fast_renewal: None) -> None:
    conn_id, schemas, _ = warehouse_conn
    op = NexusBaseOperator(task_id="probe", conn_id=conn_id, schemas=schemas)
    claimed = utcnow() - dt.timedelta(minutes=20)  # as if the task had been running that long
    with op.warehouse() as wh:
        with op.exclusive(wh, "source:shop", RunContext(run_id="r1", now=claimed)):
            assert _claims(wh, schemas)[0][:2] == ("source:shop", "adhoc/r1")
            # renewed by the task's own thread, on a connection of its own
            assert _wait_for(lambda: state_module._as_datetime(_claims(wh, schemas)[0][2]) > claimed)
            # so a run arriving once the first claim time is stale finds the claim live
            arrival = claimed + state_module.LOCK_TIMEOUT + dt.timedelta(seconds=1)
            with pytest.raises(NexusBusyError, match="being processed by run 'adhoc/r1'"):
                StateStore(wh, schemas.core)._acquire("source:shop", "other/r2", arrival)
        assert _claims(wh, schemas) == []  # released, and the renewals stopped with it
        time.sleep(0.2)
        assert _claims(wh, schemas) == []


@on_postgres
def test_a_task_whose_claim_was_taken_over_stops_its_statements(
    warehouse_conn: WarehouseConn, fast_renewal: None
) -> None:
    """A claim left unrenewed past LOCK_TIMEOUT is another run's to take: the task that held it
    must not go on writing beside that run."""
    conn_id, schemas, _ = warehouse_conn
    op = NexusBaseOperator(task_id="probe", conn_id=conn_id, schemas=schemas)
    with op.warehouse() as wh, _bounded(wh):
        with pytest.raises(WarehouseCancelledError, match="claim on final is no longer held by this run"):
            with op.exclusive(wh, "final", RunContext(run_id="r1", now=utcnow())):
                with Warehouse.open(conn_id) as other:  # a run for which the claim is long stale
                    later = utcnow() + 2 * state_module.LOCK_TIMEOUT
                    StateStore(other, schemas.core)._acquire("final", "other/r2", later)
                wh.execute(ENDLESS)  # stopped by the renewal that finds the claim gone
        with pytest.raises(WarehouseCancelledError, match=r"no more .* statements run in this task"):
            wh.execute("SELECT 1")  # nor does anything after it
        locks = wh.dialect.table(schemas.core, "nexus_locks")
    with Warehouse.open(conn_id) as wh:
        assert wh.fetchall(f"SELECT scope, run_id FROM {locks}") == [("final", "other/r2")]  # left to its holder


@on_postgres
def test_renewals_that_keep_failing_stop_the_task_before_its_claim_can_be_taken(
    warehouse_conn: WarehouseConn, monkeypatch: pytest.MonkeyPatch
) -> None:
    """New connections fail (a rotated password, a full connection limit) while the task's own
    still works: the task stops one renewal interval before its claim would go stale."""
    monkeypatch.setattr(state_module, "LOCK_TIMEOUT", dt.timedelta(seconds=0.5))
    conn_id, schemas, _ = warehouse_conn

    def unreachable() -> Any:
        raise ConnectionError("the warehouse refuses new connections")

    with Warehouse.open(conn_id) as wh, _bounded(wh):
        state = StateStore(wh, schemas.core)
        state.ensure()
        started = time.monotonic()
        with (
            pytest.raises(WarehouseCancelledError, match="claim on final could not be renewed"),
            state.lock("final", "dag/r1", utcnow()),
            renewing(unreachable, schemas.core, "final", "dag/r1", wh.stop, every=dt.timedelta(seconds=0.1)),
        ):
            wh.execute(ENDLESS)
        assert time.monotonic() - started < 0.5 + 5  # one interval before the claim went stale
    with Warehouse.open(conn_id) as wh:  # the stopped session released nothing; the claim goes stale
        assert [c[:2] for c in _claims(wh, schemas)] == [("final", "dag/r1")]


@pytest.mark.parametrize("warehouse_conn", ["duckdb"], indirect=True)
def test_duckdb_claims_are_not_renewed(warehouse_conn: WarehouseConn, fast_renewal: None) -> None:
    """A DuckDB file admits one writing process, which a task holds for its whole run; an
    in-memory database would see no claim at all from a second connection."""
    conn_id, schemas, _ = warehouse_conn
    op = NexusBaseOperator(task_id="probe", conn_id=conn_id, schemas=schemas)
    claimed = utcnow() - dt.timedelta(minutes=20)
    with op.warehouse() as wh, op.exclusive(wh, "core", RunContext(run_id="r1", now=claimed)):
        time.sleep(0.3)
        assert state_module._as_datetime(_claims(wh, schemas)[0][2]) == claimed


def test_a_retry_of_the_same_run_restarts_its_claim_time(duck: Warehouse) -> None:
    """A retry re-enters its run's claim; the time starts again, or another run could take the
    claim before the retry's first renewal."""
    state = StateStore(duck, "nexus_core")
    state.ensure()
    first = dt.datetime(2024, 1, 1)
    state._acquire("core", "dag/r1", first)
    state._acquire("core", "dag/r1", first + dt.timedelta(hours=3))
    assert duck.fetchall("SELECT run_id, acquired_at FROM nexus_core.nexus_locks") == [
        ("dag/r1", first + dt.timedelta(hours=3))
    ]


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
