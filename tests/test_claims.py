"""A task renews its claim on a source or layer while it runs, and stops if the claim is lost.

Real connections on DuckDB and on the PostgreSQL server. The renewal interval is shortened to a
fraction of a second (the shipped one is minutes); everything else is what a task runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_nexus.config import SchemasConfig
from airflow_provider_nexus.errors import NexusBusyError
from airflow_provider_nexus.layers.common import utcnow
from airflow_provider_nexus.operators.resolution import NexusResolutionOperator
from airflow_provider_nexus.state import StateStore
from airflow_provider_nexus.warehouse import Warehouse

WarehouseConn = tuple[str, SchemasConfig, Callable[[str], list[tuple[Any, ...]]]]
#: Statements that run for minutes unless stopped.
ENDLESS = {
    "duckdb": "SELECT count(*) FROM range(200000000000) t(i) WHERE i % 7 = 3",
    "postgres": "SELECT pg_sleep(600)",
}


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
