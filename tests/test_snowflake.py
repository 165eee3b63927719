"""The Snowflake dialect on fakesnow (Snowflake SQL on DuckDB), through the real SnowflakeHook.

The five operators one by one, the demo DAG end to end through ``dag.test()`` with parity against
DuckDB, and the file staging. fakesnow's mistranslations and their work-arounds (in the tests,
never in the dialect) are listed in tests/fakesnow_support.py.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import fakesnow_support  # the [test] extra installs fakesnow and the Snowflake provider
import pytest

from airflow_provider_nexus.config import SchemasConfig
from airflow_provider_nexus.dialects import get_dialect
from airflow_provider_nexus.dialects.snowflake import SnowflakeDialect
from airflow_provider_nexus.operators import (
    NexusCoreOperator,
    NexusFinalOperator,
    NexusRawOperator,
    NexusResolutionOperator,
    NexusSourceOperator,
)
from airflow_provider_nexus.warehouse import Warehouse

ENTITY_TYPES = {
    "person": {"identifiers": ["email", "phone", "customer_id"], "traits": ["name"]},
    "group": {"identifiers": ["domain"], "traits": ["company_name"]},
}
SOURCE = {
    "name": "shop",
    "raw": {"orders": {"path": "orders_*.csv", "key": "order_id"}},
    "persons": True,
    "groups": True,
    "memberships": True,
}
CONN_ID = "nexus_test_snowflake"


def _context(run_id: str) -> dict[str, Any]:
    return {"run_id": run_id}


@pytest.fixture
def snowflake_conn(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps(fakesnow_support.CONNECTION))
    fakesnow_support.apply_workarounds(monkeypatch.setattr)
    db_path = tmp_path / "fs"
    db_path.mkdir()
    with fakesnow_support.patch(db_path):
        yield CONN_ID


def test_dialect_is_registered_for_the_conn_type() -> None:
    d = get_dialect("snowflake")
    assert isinstance(d, SnowflakeDialect)
    assert d.supports_merge and d.supports_qualify and d.supports_create_or_replace
    assert not d.transactional_ddl
    assert d.timestamp_type == "TIMESTAMP_NTZ" and d.double_type == "DOUBLE"


def test_fragments() -> None:
    d = SnowflakeDialect()
    assert d.regexp_replace("x", "[^0-9]", "") == "REGEXP_REPLACE(x, '[^0-9]', '')"
    assert d.regexp_matches("x", "^noreply@") == "(REGEXP_INSTR(x, '^noreply@') > 0)"
    # Snowflake documents no inline flags: the built-in (?i) noise pattern goes as its parameter
    assert d.regexp_matches("x", "(?i)^n/?a$") == "(REGEXP_INSTR(x, '^n/?a$', 1, 1, 0, 'i') > 0)"
    assert d.string_literal("^www\\.") == "'^www\\\\.'"  # backslash is an escape in Snowflake literals
    assert d.binary_collate("v") == "v"
    assert d.type_name('"c"') == "'VARCHAR'"
    assert d.create_temp_table_as("t", "SELECT 1") == 'CREATE OR REPLACE TEMPORARY TABLE "T" AS SELECT 1'


def test_names_are_quoted_in_the_case_an_unquoted_reference_finds() -> None:
    """Snowflake folds unquoted names to upper case and keeps quoted ones as written: a column
    made as "source" is not found by the templates' unquoted `source`. Plain names are quoted in
    upper case; others keep their case."""
    d = SnowflakeDialect()
    assert d.table("nexus_core", "nexus_events") == '"NEXUS_CORE"."NEXUS_EVENTS"'
    assert d.quote("_loaded_at") == '"_LOADED_AT"'
    assert d.quote("Mixed Case") == '"Mixed Case"' and d.quote("a-b") == '"a-b"'
    assert d.quote('x"y') == '"x""y"'


def _folded_names_quoted_lower(statements: list[str]) -> set[str]:
    """Quoted identifiers in `statements` that real Snowflake would not match with an unquoted
    reference to the same name (plain lower-case names)."""
    import re

    import sqlglot
    from sqlglot import exp

    found = set()
    for sql in statements:
        if sql.lstrip().startswith("--"):
            continue
        for tree in sqlglot.parse(sql, read="snowflake"):
            for ident in tree.find_all(exp.Identifier) if tree else ():
                if ident.quoted and re.fullmatch(r"[a-z_][a-z0-9_$]*", ident.this):
                    found.add(ident.this)
    return found


def test_publish_swaps_existing_tables_and_renames_new_ones() -> None:
    class FakeWarehouse:
        def __init__(self) -> None:
            self.sql: list[str] = []

        def table_exists(self, schema: str, table: str) -> bool:
            return table == "old"

        def execute(self, sql: str) -> None:
            self.sql.append(sql)

    wh = FakeWarehouse()
    SnowflakeDialect().publish_tables(wh, "s", [("old__new", "old"), ("fresh__new", "fresh")])  # type: ignore[arg-type]
    assert wh.sql == [
        'ALTER TABLE "S"."OLD" SWAP WITH "S"."OLD__NEW"',
        'DROP TABLE IF EXISTS "S"."OLD__NEW"',
        'ALTER TABLE "S"."FRESH__NEW" RENAME TO "S"."FRESH"',
    ]


def test_operators_one_by_one_on_fakesnow(
    snowflake_conn: str, mini_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn_id = snowflake_conn
    schemas = SchemasConfig()
    executed: list[str] = []
    run = Warehouse._run

    def recording(self: Warehouse, sql: str, params: Any) -> Any:
        executed.append(sql)
        return run(self, sql, params)

    monkeypatch.setattr(Warehouse, "_run", recording)
    common = {"conn_id": conn_id, "template_dirs": [str(mini_project / "sql")], "schemas": schemas}

    raw = NexusRawOperator(task_id="raw", source=SOURCE, data_dir=mini_project / "data", **common)
    window = raw.execute(_context("r1"))
    assert window["source"] == "shop" and window["rows"] == 5 and window["low"] is None and window["high"]

    source = NexusSourceOperator(task_id="source", source=SOURCE, entity_types=ENTITY_TYPES, **common)
    summary = source.execute(_context("r1"))
    assert summary["models"]["events"]["written"] == 5
    assert summary["models"]["identifiers"]["rejected"] == 4

    core = NexusCoreOperator(task_id="core", sources=[SOURCE], entity_types=ENTITY_TYPES, **common)
    assert core.execute(_context("r1"))["models"]["identifiers"]["written"] == 16

    for entity_type, expected in (("person", 3), ("group", 2)):
        resolution = NexusResolutionOperator(task_id=f"resolve_{entity_type}", entity_type=entity_type, **common)
        result = resolution.execute(_context("r1"))
        assert result["entities"] == expected, result

    final = NexusFinalOperator(task_id="final", entity_types=ENTITY_TYPES, **common)
    tables = final.execute(_context("r1"))["tables"]
    assert tables["nexus_persons"] == 3 and tables["nexus_groups"] == 2 and tables["nexus_memberships"] == 4
    # fakesnow (DuckDB) matches names case-insensitively; Snowflake would not
    assert _folded_names_quoted_lower(executed) == set(), "quoted lower-case names real Snowflake would not find"

    with Warehouse.open(conn_id) as wh:
        rows = wh.fetchall(
            f'SELECT "email", "phone", "customer_id", "name" FROM "{schemas.final}"."nexus_persons" ORDER BY "email"'
        )
    assert rows == [
        ("ann@example.org", "14155550100", "c3", "Ann B"),
        ("bob@example.org", "14155550199", "c4", "Bobby"),
        ("carl@example.org", None, "c5", "Carl"),
    ]


def test_stage_files_csv_ndjson_parquet(snowflake_conn: str, tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    a.write_text("ID,Name\n1,x\n2,\n")
    b.write_text("id,extra\n3,e\n")
    nd = tmp_path / "c.ndjson"
    nd.write_text('{"id": 1, "flag": true, "obj": {"k": 1}}\n\n{"id": 2, "other": null}\n')
    pqf = tmp_path / "d.parquet"
    pq.write_table(pa.table({"Id": [1, 2], "Amount": [1.5, None]}), pqf)

    with Warehouse.open(snowflake_conn) as wh:
        d = wh.dialect
        d.stage_files(wh, "stg_csv", [str(a), str(b)], "csv", "_source_file")
        # each row's position in its file, so a key repeated in one file keeps its last row
        assert wh.relation_columns('"stg_csv"') == ["id", "name", "extra", "_source_file", "_source_row"]
        rows = wh.fetchall('SELECT "id", "name", "extra", "_source_file", "_source_row" FROM "stg_csv" ORDER BY "id"')
        assert rows == [("1", "x", None, str(a), 1), ("2", None, None, str(a), 2), ("3", None, "e", str(b), 1)]

        d.stage_files(wh, "stg_nd", [str(nd)], "ndjson", "_source_file")
        rows = wh.fetchall('SELECT "id", "flag", "obj", "other" FROM "stg_nd" ORDER BY "id"')
        assert rows == [("1", "true", '{"k": 1}', None), ("2", None, None, None)]

        d.stage_files(wh, "stg_pq", [str(pqf)], "parquet", "_source_file")
        rows = wh.fetchall('SELECT "id", "amount", "_source_file" FROM "stg_pq" ORDER BY "id"')
        assert rows == [(1, 1.5, str(pqf)), (2, None, str(pqf))]


@pytest.mark.airflow
def test_demo_dag_on_fakesnow_equals_duckdb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The demo DAG through real Airflow (`dag.test()` in a child process) on Snowflake over
    fakesnow, batch by batch, ends with DuckDB's final rows, ids included.

    The config differs from the DuckDB one only in its connection. The child process gets the
    fakesnow patch through tests/fakesnow_site/sitecustomize.py; this process opens the fakesnow
    files only between DAG runs (landing the billing rows, reading the result), because DuckDB lets
    one process at a time hold a database file.
    """
    from test_e2e_airflow import REPO, SPEC, WAREHOUSE_CONN_ID, Project, _diff

    from airflow_provider_nexus.demo.generator import batch_times

    db_path = tmp_path / "fakesnow"
    db_path.mkdir()
    connection = json.dumps(fakesnow_support.CONNECTION)
    fakesnow_support.apply_workarounds(monkeypatch.setattr)
    monkeypatch.setenv(f"AIRFLOW_CONN_{WAREHOUSE_CONN_ID.upper()}", connection)
    python_path = [str(fakesnow_support.SITE_DIR), *filter(None, [os.environ.get("PYTHONPATH")])]
    child_env = {"NEXUS_FAKESNOW_DB": str(db_path), "PYTHONPATH": os.pathsep.join(python_path)}

    config_file = REPO / "dags" / "configs" / "nexus_demo.yml"
    duck = Project(tmp_path / "duckdb", config_file)
    snow = Project(
        tmp_path / "snowflake",
        config_file,
        connection=connection,
        session=lambda: fakesnow_support.patch(db_path),
        extra_env=child_env,
    )
    for batch, when in enumerate(batch_times(SPEC)):
        for project in (duck, snow):
            project.deliver(batch)
            project.run(when)
    expected, got = duck.snapshot(only_final=True), snow.snapshot(only_final=True)
    assert expected[f"{duck.config.schemas.final}.nexus_persons"], "no persons were built"
    assert expected == got, _diff(expected, got)


def test_golden_snowflake_sql_quotes_names_as_snowflake_folds_them() -> None:
    """Every template's checked-in Snowflake SQL (source, core, final) names plain identifiers in
    the case an unquoted reference resolves to."""
    golden = sorted((Path(__file__).parent / "golden" / "snowflake").rglob("*.sql"))
    assert golden, "no golden Snowflake SQL found"
    assert _folded_names_quoted_lower([p.read_text(encoding="utf-8") for p in golden]) == set()
