"""Shared fixtures: a real DuckDB session, the mini pipeline, connections through env vars."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from airflow_provider_nexus.dialects.duckdb import DuckDBDialect
from airflow_provider_nexus.warehouse import Warehouse

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture
def duck() -> Iterator[Warehouse]:
    """A Warehouse over an in-memory DuckDB."""
    con = duckdb.connect()
    try:
        yield Warehouse(DuckDBDialect(), con)
    finally:
        con.close()


@pytest.fixture
def mini_project(tmp_path: Path) -> Path:
    """A copy of tests/fixtures/mini that a test may change freely."""
    target = tmp_path / "mini"
    shutil.copytree(FIXTURES / "mini", target)
    return target


@pytest.fixture
def duckdb_conn(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, Path]:
    """An Airflow connection (through AIRFLOW_CONN_*) to a DuckDB file of this test."""
    path = tmp_path / "warehouse.duckdb"
    conn_id = "nexus_test_duckdb"
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({"conn_type": "duckdb", "host": str(path)}))
    return conn_id, path
