"""OpenLineage: every Nexus task names the tables it reads and writes, and lineage never fails one.

The dataset names come from each warehouse's real Airflow hook (its `get_openlineage_database_info`),
read from a connection defined through an environment variable: no warehouse is contacted, so
Snowflake and BigQuery need no fake here. The last test runs the demo DAG through `dag.test()`
with Airflow's OpenLineage provider writing its events to a file, and reads them.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_nexus.config import SchemasConfig, load_config
from airflow_provider_nexus.factory import build_dag
from airflow_provider_nexus.lineage import FileSet, TaskTables, WarehouseTable, operator_lineage
from airflow_provider_nexus.operators.base import NexusBaseOperator

REPO = Path(__file__).resolve().parent.parent
FINAL = TaskTables([WarehouseTable("nexus_core", "nexus_identifiers")], [WarehouseTable("nexus_final", "nexus_events")])


def _names(datasets: list[Any]) -> list[tuple[str, str]]:
    return [(d.namespace, d.name) for d in datasets]


def _connection(monkeypatch: pytest.MonkeyPatch, conn_id: str, value: dict[str, Any] | str) -> str:
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", value if isinstance(value, str) else json.dumps(value))
    return conn_id


def test_duckdb_tables_are_named_by_their_database_file(duckdb_conn: tuple[str, Path]) -> None:
    conn_id, path = duckdb_conn
    lineage = operator_lineage(conn_id, None, FINAL, sql="SELECT 1")
    namespace = f"duckdb://{path}"
    # DuckDB names a file's catalog after its stem: `warehouse.nexus_final.nexus_events` in its own SQL
    assert _names(lineage.inputs) == [(namespace, "warehouse.nexus_core.nexus_identifiers")]
    assert _names(lineage.outputs) == [(namespace, "warehouse.nexus_final.nexus_events")]
    assert lineage.job_facets["sql"].query == "SELECT 1"


def _parsed_by_openlineage(conn_id: str, dialect: str) -> list[tuple[str, str]]:
    """What the OpenLineage provider's own SQL parser names FINAL's tables with the same hook:
    the names other operators report for them, which Nexus's must equal for the graphs to join."""
    from airflow.providers.openlineage.sqlparser import SQLParser

    from airflow_provider_nexus.dialects import dialect_for_connection

    hook = dialect_for_connection(conn_id).make_hook(conn_id)
    info = hook.get_openlineage_database_info(hook.get_connection(conn_id))
    parsed = SQLParser(dialect=dialect).generate_openlineage_metadata_from_sql(
        "INSERT INTO nexus_final.nexus_events SELECT * FROM nexus_core.nexus_identifiers",
        hook=hook,
        database_info=info,
        use_connection=False,
    )
    return _names(parsed.inputs) + _names(parsed.outputs)


def test_postgres_tables_follow_the_openlineage_naming_spec(monkeypatch: pytest.MonkeyPatch) -> None:
    conn_id = _connection(monkeypatch, "nexus_lineage_pg", "postgres://postgres@db.internal:6432/analytics")
    lineage = operator_lineage(conn_id, None, FINAL)
    assert _names(lineage.outputs) == [("postgres://db.internal:6432", "analytics.nexus_final.nexus_events")]
    assert _names(lineage.inputs) + _names(lineage.outputs) == _parsed_by_openlineage(conn_id, "postgres")
    assert lineage.job_facets == {}  # no SQL before the task ran


def test_snowflake_tables_are_named_by_account_and_database(monkeypatch: pytest.MonkeyPatch) -> None:
    conn_id = _connection(
        monkeypatch,
        "nexus_lineage_sf",
        {
            "conn_type": "snowflake",
            "login": "nexus",
            "password": "secret",
            "schema": "public",
            "extra": {"account": "myorg-acct1", "database": "ANALYTICS", "warehouse": "compute_wh"},
        },
    )
    lineage = operator_lineage(conn_id, None, FINAL)
    [(namespace, name)] = _names(lineage.outputs)
    assert namespace.startswith("snowflake://") and "myorg-acct1" in namespace
    # Nexus's names are unquoted lower-case names there, which Snowflake stores in upper case
    assert name == "ANALYTICS.NEXUS_FINAL.NEXUS_EVENTS"
    assert _names(lineage.inputs) + _names(lineage.outputs) == _parsed_by_openlineage(conn_id, "snowflake")


def test_bigquery_tables_are_named_by_project_and_dataset(monkeypatch: pytest.MonkeyPatch) -> None:
    # no credentials at all: the project is read from the extras, with no credentials lookup
    conn_id = _connection(
        monkeypatch, "nexus_lineage_bq", {"conn_type": "google_cloud_platform", "extra": {"project": "acme-data"}}
    )
    lineage = operator_lineage(conn_id, "bigquery", FINAL)
    assert _names(lineage.outputs) == [("bigquery", "acme-data.nexus_final.nexus_events")]


def test_files_are_named_by_path(duckdb_conn: tuple[str, Path], tmp_path: Path) -> None:
    lineage = operator_lineage(duckdb_conn[0], None, TaskTables([FileSet(str(tmp_path / "crm" / "*.csv"))], []))
    assert _names(lineage.inputs) == [("file", str(tmp_path / "crm" / "*.csv"))]


def test_no_lineage_without_a_stable_name_or_a_connection(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    memory = _connection(monkeypatch, "nexus_lineage_memory", {"conn_type": "duckdb", "host": ":memory:"})
    assert operator_lineage(memory, None, FINAL) is None
    # a connection that does not exist: a warning, never an exception, and once per process
    with caplog.at_level(logging.WARNING, logger="airflow_provider_nexus.lineage"):
        assert operator_lineage("nexus_lineage_missing", None, FINAL) is None
        assert operator_lineage("nexus_lineage_missing", None, FINAL) is None
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "nexus_lineage_missing" in warnings[0].getMessage()


def test_the_sql_facet_is_cut_at_a_statement_end() -> None:
    from airflow_provider_nexus.lineage import shown_sql

    sql = "".join(f"INSERT INTO t VALUES ({n});\n" for n in range(10_000))
    shown = shown_sql(sql, limit=1000)
    assert 900 < len(shown) <= 1000 and shown.endswith(";") and sql.startswith(shown)
    assert shown_sql("SELECT 1", limit=1000) == "SELECT 1"


def test_an_optional_model_without_a_template_is_not_reported(
    duckdb_conn: tuple[str, Path], mini_project: Path
) -> None:
    from airflow_provider_nexus.operators import NexusCoreOperator, NexusSourceOperator

    (mini_project / "sql" / "sources" / "shop" / "traits.sql").unlink()
    source = {"name": "shop", "raw": {"orders": {"path": "orders_*.csv", "key": "order_id"}}, "persons": True}
    common = {"conn_id": duckdb_conn[0], "template_dirs": [str(mini_project / "sql")]}
    entity_types = {"person": {"identifiers": ["email"]}}
    task = NexusSourceOperator(task_id="source", source=source, entity_types=entity_types, **common)
    outputs = {d.name for d in task.get_openlineage_facets_on_start().outputs}
    shop = "warehouse.nexus_source.shop__"
    assert outputs == {f"{shop}events", f"{shop}identifiers", "warehouse.nexus_source.nexus_rejected_rows"}
    core = NexusCoreOperator(task_id="core", sources=[source], entity_types=entity_types, **common)
    assert {d.name for d in core.get_openlineage_facets_on_start().inputs} == {f"{shop}events", f"{shop}identifiers"}


class _Broken(NexusBaseOperator):
    def lineage_tables(self) -> TaskTables:
        raise RuntimeError("config gone")


def test_an_operator_whose_tables_cannot_be_listed_reports_no_lineage(
    duckdb_conn: tuple[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    task = _Broken(task_id="broken", conn_id=duckdb_conn[0])
    assert task.get_openlineage_facets_on_complete(None) is None
    assert task.get_openlineage_facets_on_start() is None
    # the task SDK's structured logger writes to the console, not through `logging`
    assert "could not list the tables of broken" in capsys.readouterr().out


def test_each_layer_reads_what_the_layer_before_it_writes(duckdb_conn: tuple[str, Path]) -> None:
    """Through the factory's DAG: the lineage of the whole pipeline is one connected graph."""
    config = load_config(REPO / "dags" / "configs" / "nexus_demo.yml")
    config = config.model_copy(update={"warehouse": config.warehouse.model_copy(update={"conn_id": duckdb_conn[0]})})
    dag = build_dag(config)
    lineage = {t.task_id: t.get_openlineage_facets_on_start() for t in dag.tasks if isinstance(t, NexusBaseOperator)}
    inputs = {t: {d.name for d in lin.inputs} for t, lin in lineage.items()}
    outputs = {t: {d.name for d in lin.outputs} for t, lin in lineage.items()}
    schemas: SchemasConfig = config.schemas

    def table(schema: str, name: str) -> str:
        return f"warehouse.{schema}.{name}"

    for source in config.sources:
        raw, src = f"raw.{source.name}", f"source.{source.name}"
        assert outputs[raw] == inputs[src] and outputs[raw]
        assert {table(schemas.source, f"{source.name}__{m}") for m in source.models()} <= outputs[src]
        assert {table(schemas.source, f"{source.name}__{m}") for m in source.models()} <= inputs["core"]
        files = [d.name for d in lineage[raw].inputs if d.namespace == "file"]
        landed = [d.name for d in lineage[raw].inputs if d.namespace != "file"]
        assert len(files) + len(landed) == len(source.raw)
        assert all(Path(f).is_absolute() for f in files)
    identifiers = table(schemas.core, "nexus_identifiers")
    assert identifiers in outputs["core"]
    for entity_type in config.entity_types:
        resolved = f"resolution.{entity_type}"
        # core writes the identifiers and the copies of those it replaced; resolution reads both
        assert inputs[resolved] == {identifiers, table(schemas.core, "nexus_identifiers_retracted")} <= outputs["core"]
        assert table(schemas.resolution, f"nexus_{entity_type}_identity_map") in outputs[resolved]
        assert table(schemas.resolution, f"nexus_{entity_type}_identity_map") in inputs["final"]
    assert table(schemas.final, "nexus_persons") in outputs["final"]


def test_one_task_per_layer_reports_every_source(duckdb_conn: tuple[str, Path]) -> None:
    config = load_config(REPO / "dags" / "configs" / "nexus_demo.yml")
    warehouse = config.warehouse.model_copy(update={"conn_id": duckdb_conn[0]})
    dag = build_dag(config.model_copy(update={"warehouse": warehouse, "granularity": "layer"}))
    raw = dag.get_task("raw").get_openlineage_facets_on_start()
    source = dag.get_task("source").get_openlineage_facets_on_start()
    raw_tables = {d.name for d in raw.outputs}
    assert raw_tables == {d.name for d in source.inputs}
    expected = {f"warehouse.{config.schemas.raw}.{s.name}__{t}" for s in config.sources for t in s.raw}
    assert raw_tables == expected


@pytest.mark.airflow
def test_airflow_emits_the_lineage_of_every_task(tmp_path: Path) -> None:
    """The demo DAG under `dag.test()`, with the OpenLineage provider writing events to a file."""
    from test_e2e_airflow import SPEC, Project

    events_file = tmp_path / "openlineage.jsonl"
    transport = {"type": "file", "log_file_path": str(events_file), "append": True}
    project = Project(
        tmp_path / "project",
        REPO / "dags" / "configs" / "nexus_demo.yml",
        extra_env={
            "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(transport),
            "AIRFLOW__OPENLINEAGE__NAMESPACE": "nexus-tests",
        },
    )
    project.deliver(0)
    project.run(dt.datetime(2024, 1, 1, tzinfo=dt.UTC) + dt.timedelta(days=SPEC.batches))

    events = [json.loads(line) for line in events_file.read_text().splitlines() if line.strip()]
    # every table reported is one the run left in the warehouse (DuckDB names its catalog `warehouse`)
    _, tables = project.query(
        "SELECT table_catalog || '.' || table_schema || '.' || table_name FROM information_schema.tables"
    )
    reported = {
        d["name"]
        for e in events
        if e["eventType"] == "COMPLETE"
        for d in e.get("inputs", []) + e.get("outputs", [])
        if d["namespace"] != "file"
    }
    assert reported and reported <= {t for (t,) in tables}, sorted(reported - {t for (t,) in tables})
    complete = {
        e["job"]["name"].split(".", 1)[1]: e for e in events if e["eventType"] == "COMPLETE" and "." in e["job"]["name"]
    }
    namespace = f"duckdb://{project.warehouse}"
    schemas = project.config.schemas
    final = complete.get("final")
    assert final is not None, sorted(complete)
    outputs = {(d["namespace"], d["name"]) for d in final["outputs"]}
    assert (namespace, f"warehouse.{schemas.final}.nexus_persons") in outputs
    assert "nexus_persons" in final["job"]["facets"]["sql"]["query"]
    crm = complete["raw.crm"]
    assert {d["namespace"] for d in crm["inputs"]} == {"file"}
    raw_contacts = (namespace, f"warehouse.{schemas.raw}.crm__contacts")
    assert raw_contacts in {(d["namespace"], d["name"]) for d in crm["outputs"]}
    person = complete["resolution.person"]
    assert (namespace, f"warehouse.{schemas.core}.nexus_identifiers") in {
        (d["namespace"], d["name"]) for d in person["inputs"]
    }


def test_a_landed_table_named_without_schema_is_reported_where_it_was_found(duckdb_conn: tuple[str, Path]) -> None:
    import duckdb

    from airflow_provider_nexus.operators import NexusRawOperator

    conn_id, path = duckdb_conn
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE customers AS SELECT 1 AS id, TIMESTAMP '2024-01-01' AS synced_at")
    con.close()
    source = {"name": "billing", "raw": {"customers": {"table": "customers", "key": "id"}}, "persons": True}
    raw = NexusRawOperator(task_id="raw", conn_id=conn_id, source=source)
    before = raw.get_openlineage_facets_on_start()
    assert before.inputs == []  # the session's schema is not known yet
    assert raw.execute({"run_id": "r1"})["rows"] == 1
    after = raw.get_openlineage_facets_on_complete(None)
    assert [d.name for d in after.inputs] == ["warehouse.main.customers"]
    assert [d.name for d in after.outputs] == ["warehouse.nexus_raw.billing__customers"]
    assert "billing__customers" in after.job_facets["sql"].query
