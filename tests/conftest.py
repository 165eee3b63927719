"""Shared fixtures: a real DuckDB session, the mini pipeline, connections through env vars."""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from airflow_provider_nexus.config import SchemasConfig
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


# -- PostgreSQL ------------------------------------------------------------------------------

POSTGRES_URI = os.environ.get("NEXUS_TEST_POSTGRES_URI", "postgresql://postgres@127.0.0.1:5432/test")


def postgres_connect() -> Any:
    """A psycopg connection to the test server; skip if unreachable, unless CI is set (then fail)."""
    try:
        import psycopg

        return psycopg.connect(POSTGRES_URI, autocommit=True, connect_timeout=5)
    except Exception as exc:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            raise RuntimeError(f"PostgreSQL at {POSTGRES_URI} is unreachable and CI is set: {exc}") from exc
        pytest.skip(f"no PostgreSQL server at {POSTGRES_URI}: {exc}")


def unique_schemas() -> SchemasConfig:
    tag = "t" + uuid.uuid4().hex[:10]
    return SchemasConfig(
        raw=f"{tag}_raw",
        source=f"{tag}_source",
        core=f"{tag}_core",
        resolution=f"{tag}_resolution",
        final=f"{tag}_final",
    )


@pytest.fixture(params=["duckdb", "postgres"])
def backend(request: pytest.FixtureRequest) -> Iterator[tuple[Warehouse, SchemasConfig]]:
    """The same test on DuckDB (in memory) and on the PostgreSQL server, in schemas of its own."""
    if request.param == "duckdb":
        con = duckdb.connect()
        try:
            yield Warehouse(DuckDBDialect(), con), SchemasConfig()
        finally:
            con.close()
        return
    from airflow_provider_nexus.dialects.postgres import PostgresDialect

    con = postgres_connect()
    con.execute("SET TIME ZONE 'UTC'")
    schemas = unique_schemas()
    try:
        yield Warehouse(PostgresDialect(), con), schemas
    finally:
        if con.info.transaction_status != 0:  # a failed test may leave a transaction open
            con.rollback()
        for schema in (schemas.raw, schemas.source, schemas.core, schemas.resolution, schemas.final, "landing"):
            con.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        con.close()


@pytest.fixture(params=["duckdb", "postgres"])
def warehouse_conn(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, SchemasConfig, Any]]:
    """(conn_id, schemas, reader) of an Airflow connection to DuckDB or PostgreSQL.

    `reader(sql)` returns rows, opened fresh each call (DuckDB read-only, so the operators keep
    the write lock).
    """
    conn_id = f"nexus_test_{request.param}"
    if request.param == "duckdb":
        path = tmp_path / "warehouse.duckdb"
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({"conn_type": "duckdb", "host": str(path)}))

        def read_duckdb(sql: str) -> list[tuple[Any, ...]]:
            con = duckdb.connect(str(path), read_only=True)
            try:
                return con.execute(sql).fetchall()
            finally:
                con.close()

        yield conn_id, SchemasConfig(), read_duckdb
        return
    con = postgres_connect()
    schemas = unique_schemas()
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", POSTGRES_URI.replace("postgresql://", "postgres://", 1))

    def read_postgres(sql: str) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in con.execute(sql).fetchall()]

    try:
        yield conn_id, schemas, read_postgres
    finally:
        for schema in (schemas.raw, schemas.source, schemas.core, schemas.resolution, schemas.final):
            con.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        con.close()
