"""Each operator on its own, with plain keyword arguments (no YAML), on a real DuckDB file.

The operators are executed directly with a minimal context, the way an existing DAG would run
them one by one; the connection comes from an AIRFLOW_CONN_* variable as in a deployment.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from airflow_provider_nexus.config import SchemasConfig
from airflow_provider_nexus.operators import (
    NexusCoreOperator,
    NexusFinalOperator,
    NexusRawOperator,
    NexusResolutionOperator,
    NexusSourceOperator,
)

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


def _context(run_id: str) -> dict[str, Any]:
    return {"run_id": run_id}


def _common(conn_id: str, project: Path, schemas: SchemasConfig | None = None) -> dict[str, Any]:
    return {"conn_id": conn_id, "template_dirs": [str(project / "sql")], "schemas": schemas}


def test_operators_one_by_one(warehouse_conn: tuple[str, SchemasConfig, Any], mini_project: Path) -> None:
    conn_id, schemas, read = warehouse_conn
    common = _common(conn_id, mini_project, schemas)
    raw = NexusRawOperator(task_id="raw", source=SOURCE, data_dir=mini_project / "data", **common)
    window = raw.execute(_context("r1"))
    assert window["source"] == "shop" and window["rows"] == 5 and window["low"] is None and window["high"]
    assert "CREATE TABLE" in raw.compiled_sql and ("read_csv" in raw.compiled_sql or "COPY" in raw.compiled_sql)

    source = NexusSourceOperator(task_id="source", source=SOURCE, entity_types=ENTITY_TYPES, **common)
    summary = source.execute(_context("r1"))
    assert summary["models"]["events"]["written"] == 5
    assert summary["models"]["identifiers"]["rejected"] == 4  # the empty email and phones
    assert "shop__orders" in source.compiled_sql
    # the rendered templates come first, inside the 4096 characters Airflow keeps by default
    assert source.compiled_sql.startswith("-- sources/shop/events.sql\n")
    assert "-- sources/shop/identifiers.sql\n" in source.compiled_sql[:4096]
    assert "-- every statement this task ran, in order" in source.compiled_sql

    core = NexusCoreOperator(task_id="core", sources=[SOURCE], entity_types=ENTITY_TYPES, **common)
    assert core.execute(_context("r1"))["models"]["identifiers"]["written"] == 16
    assert core.compiled_sql.startswith("-- core/events.sql\n")

    for entity_type, expected in (("person", 3), ("group", 2)):
        resolution = NexusResolutionOperator(task_id=f"resolve_{entity_type}", entity_type=entity_type, **common)
        result = resolution.execute(_context("r1"))
        assert result["entities"] == expected, result
    # nothing added to or replaced in core since: the next run's resolution is a no-op
    again = NexusResolutionOperator(task_id="resolve_person", entity_type="person", **common)
    assert again.execute(_context("r2")) == {"entity_type": "person", "new": 0}

    final = NexusFinalOperator(task_id="final", entity_types=ENTITY_TYPES, **common)
    tables = final.execute(_context("r1"))["tables"]
    assert tables["nexus_persons"] == 3 and tables["nexus_groups"] == 2 and tables["nexus_memberships"] == 4

    # ann@example.org and the 10-digit 4155550100 of c3 normalise to the same phone: one person.
    rows = read(f"SELECT email, phone, customer_id, name FROM {schemas.final}.nexus_persons ORDER BY email")
    assert rows == [
        ("ann@example.org", "14155550100", "c3", "Ann B"),
        ("bob@example.org", "14155550199", "c4", "Bobby"),
        ("carl@example.org", None, "c5", "Carl"),
    ]


def test_operator_template_fields_and_render_in_execute(duckdb_conn: tuple[str, Path], mini_project: Path) -> None:
    conn_id, _ = duckdb_conn
    op = NexusSourceOperator(task_id="s", source=SOURCE, entity_types=ENTITY_TYPES, **_common(conn_id, mini_project))
    assert "conn_id" in op.template_fields and "compiled_sql" in op.template_fields
    assert op.template_fields_renderers["compiled_sql"] == "sql"
    assert op.compiled_sql == ""  # nothing is rendered at construction time


def test_bad_kwargs_fail_at_construction_with_the_key() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="raw"):
        NexusRawOperator(task_id="r", conn_id="x", source={"name": "shop"})
    with pytest.raises(ValueError, match="not a safe identifier"):
        NexusResolutionOperator(task_id="r", conn_id="x", entity_type="Person; drop")


def test_unknown_connection_type_lists_supported(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow_provider_nexus.errors import NexusConfigError

    monkeypatch.setenv("AIRFLOW_CONN_ODD", '{"conn_type": "oracle", "host": "h"}')
    op = NexusCoreOperator(task_id="c", conn_id="odd", sources=[SOURCE], entity_types=ENTITY_TYPES)
    with pytest.raises(
        NexusConfigError,
        match=r"no Nexus dialect for connection type 'oracle'; supported: .*duckdb, .*postgres, .*snowflake",
    ):
        op.execute(_context("r1"))


def _with_conf(run_id: str, conf: dict[str, Any]) -> dict[str, Any]:
    # execute() is called directly here, so the DAG run is a plain object carrying the conf.
    return {"run_id": run_id, "dag_run": SimpleNamespace(conf=conf)}


def test_run_conf_selects_sources_and_rejects_unknown_names(duckdb_conn: tuple[str, Path], mini_project: Path) -> None:
    from airflow.sdk.exceptions import AirflowSkipException

    from airflow_provider_nexus.errors import NexusConfigError

    conn_id, _ = duckdb_conn
    common = {**_common(conn_id, mini_project), "known_sources": ["shop", "crm"]}
    raw = NexusRawOperator(task_id="raw", source=SOURCE, data_dir=mini_project / "data", **common)
    with pytest.raises(AirflowSkipException, match="not in this run's conf"):
        raw.execute(_with_conf("r1", {"sources": ["crm"]}))
    with pytest.raises(NexusConfigError, match=r"unknown source\(s\) 'shopp'; this pipeline's sources: shop, crm"):
        raw.execute(_with_conf("r1", {"sources": ["shopp"]}))
    assert raw.execute(_with_conf("r1", {"sources": ["shop"]}))["rows"] == 5


def test_a_second_run_cannot_take_a_held_source(duckdb_conn: tuple[str, Path], mini_project: Path) -> None:
    import datetime as dt

    from airflow_provider_nexus.errors import NexusBusyError
    from airflow_provider_nexus.state import LOCK_TIMEOUT, StateStore
    from airflow_provider_nexus.warehouse import Warehouse

    conn_id, _ = duckdb_conn
    raw = NexusRawOperator(
        task_id="raw", source=SOURCE, data_dir=mini_project / "data", **_common(conn_id, mini_project)
    )
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    with Warehouse.open(conn_id) as wh:
        state = StateStore(wh, "nexus_core")
        state.ensure()
        state._acquire("source:shop", "other_run", now)
    with pytest.raises(NexusBusyError, match="source:shop is being processed by run 'other_run'"):
        raw.execute(_context("r1"))
    # Nothing was written while the other run held the source.
    with Warehouse.open(conn_id) as wh:
        assert not wh.table_exists("nexus_raw", "shop__orders")
        # A lock older than the timeout belongs to a dead run and is taken over.
        wh.execute(f"UPDATE nexus_core.nexus_locks SET acquired_at = {wh.dialect.literal(now - LOCK_TIMEOUT * 2)}")
    assert raw.execute(_context("r1"))["rows"] == 5
    with Warehouse.open(conn_id) as wh:
        assert wh.count("nexus_core.nexus_locks") == 0  # released after the task


def test_lock_holds_where_no_primary_key_is_enforced(duck: Any) -> None:
    """Snowflake, BigQuery, Redshift and Databricks do not enforce keys: two runs may both insert
    a claim. The one that sees another run's claim withdraws; the holder is never doubled."""
    import datetime as dt

    from airflow_provider_nexus.errors import NexusBusyError
    from airflow_provider_nexus.state import StateStore

    now = dt.datetime(2024, 1, 1)
    state = StateStore(duck, "nexus_core")
    state.ensure()
    claims = "SELECT run_id FROM nexus_core.nexus_locks ORDER BY run_id"
    # both inserts landed, as an unenforced key allows
    for run in ("run_a", "run_b"):
        duck.execute(f"INSERT INTO nexus_core.nexus_locks VALUES ('source:s', '{run}', TIMESTAMP '2024-01-01')")
    with pytest.raises(NexusBusyError, match="being processed by run 'run_a'"):
        state._acquire("source:s", "run_b", now)
    assert duck.fetchall(claims) == [("run_a",)]
    with state.lock("source:s", "run_a", now):  # the holder re-enters (a retry of the same run)
        assert duck.fetchall(claims) == [("run_a",)]
    with state.lock("source:s", "run_b", now):
        assert duck.fetchall(claims) == [("run_b",)]
    assert duck.fetchall(claims) == []


def test_a_claim_names_the_dag_as_well_as_the_run(duckdb_conn: tuple[str, Path], mini_project: Path) -> None:
    """Two DAGs of one config (the factory's and one using its task group) get the same
    scheduled run ids; a claim of the other DAG's run must still keep this one out."""
    import datetime as dt

    from airflow_provider_nexus.errors import NexusBusyError
    from airflow_provider_nexus.state import StateStore
    from airflow_provider_nexus.warehouse import Warehouse

    conn_id, _ = duckdb_conn
    raw = NexusRawOperator(
        task_id="raw", source=SOURCE, data_dir=mini_project / "data", **_common(conn_id, mini_project)
    )
    with Warehouse.open(conn_id) as wh:
        state = StateStore(wh, "nexus_core")
        state.ensure()
        state._acquire("source:shop", "nightly/r1", dt.datetime.now(dt.UTC).replace(tzinfo=None))
    with pytest.raises(NexusBusyError, match="being processed by run 'nightly/r1'"):
        raw.execute(_context("r1"))


def test_a_failed_release_does_not_hide_the_task_error(duck: Any) -> None:
    import datetime as dt

    from airflow_provider_nexus.state import StateStore

    state = StateStore(duck, "nexus_core")
    state.ensure()
    with (
        pytest.raises(ValueError, match="the task's own error"),
        state.lock("source:s", "run_a", dt.datetime(2024, 1, 1)),
    ):
        duck.execute("DROP TABLE nexus_core.nexus_locks")  # the release will fail (a lost session, say)
        raise ValueError("the task's own error")


def test_a_claim_that_cannot_be_written_is_not_reported_as_contention(duck: Any) -> None:
    import datetime as dt

    from airflow_provider_nexus.errors import NexusBusyError
    from airflow_provider_nexus.state import StateStore

    state = StateStore(duck, "nexus_core")
    state.ensure()
    duck.execute("DROP TABLE nexus_core.nexus_locks")
    duck.execute(
        "CREATE TABLE nexus_core.nexus_locks (scope VARCHAR NOT NULL, run_id VARCHAR NOT NULL CHECK (run_id <> 'r'), "
        "acquired_at TIMESTAMP)"
    )
    with pytest.raises(Exception, match=r"(?i)constraint") as info:
        state._acquire("source:s", "r", dt.datetime(2024, 1, 1))
    assert not isinstance(info.value, NexusBusyError)


def test_run_conf_full_refresh_must_be_a_boolean(duckdb_conn: tuple[str, Path], mini_project: Path) -> None:
    from types import SimpleNamespace

    from airflow_provider_nexus.errors import NexusConfigError

    conn_id, _ = duckdb_conn
    raw = NexusRawOperator(
        task_id="raw", source=SOURCE, data_dir=mini_project / "data", **_common(conn_id, mini_project)
    )
    context = {"run_id": "r1", "dag_run": SimpleNamespace(conf={"full_refresh": "false"})}
    with pytest.raises(NexusConfigError, match="'full_refresh' must be true or false, got 'false'"):
        raw.execute(context)


def test_unreachable_warehouse_is_a_clear_retryable_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    from airflow_provider_nexus.errors import WarehouseUnavailableError

    # Port 1 on the loopback: nothing listens there, so the connection is refused at once.
    monkeypatch.setenv("AIRFLOW_CONN_NOWHERE", "postgres://postgres@127.0.0.1:1/test")
    op = NexusCoreOperator(task_id="c", conn_id="nowhere", sources=[SOURCE], entity_types=ENTITY_TYPES)
    with pytest.raises(WarehouseUnavailableError, match="postgres warehouse of connection 'nowhere'") as info:
        op.execute(_context("r1"))
    assert not isinstance(info.value, AirflowFailException)  # Airflow will retry it


def test_one_task_for_several_sources_commits_those_that_succeed(
    duckdb_conn: tuple[str, Path], mini_project: Path
) -> None:
    """A failing source does not stop the others; the task fails at the end, naming it, and is
    retried only when a retry could help."""
    import datetime as dt

    from airflow_provider_nexus.errors import SourcesFailedError, SourcesRejectedError
    from airflow_provider_nexus.state import StateStore
    from airflow_provider_nexus.warehouse import Warehouse

    conn_id, _ = duckdb_conn
    common = _common(conn_id, mini_project)
    missing = {"name": "billing", "raw": {"customers": {"table": "landing.customers", "key": "id"}}, "persons": True}
    other = {**SOURCE, "name": "shop2"}
    raw = NexusRawOperator(task_id="raw", sources=[missing, SOURCE], data_dir=mini_project / "data", **common)
    pushed: dict[str, Any] = {}
    ti = SimpleNamespace(xcom_push=lambda key, value: pushed.update({key: value}))
    with pytest.raises(
        SourcesRejectedError, match=r"1 of 2 sources failed \(billing: NexusConfigError: .*landing.customers"
    ):
        raw.execute({"run_id": "r1", "ti": ti})
    # the committed source's window is pushed all the same, for the source task (all_done)
    windows = pushed["return_value"]["sources"]
    assert set(windows) == {"shop"} and windows["shop"]["rows"] == 5
    with Warehouse.open(conn_id) as wh:
        state = StateStore(wh, "nexus_core")
        assert state.get("shop", "raw") is not None and state.get("billing", "raw") is None
        assert wh.count("nexus_raw.shop__orders") == 5
        assert wh.count("nexus_core.nexus_locks") == 0  # both claims released
        # a source another run holds fails retryably (it may be free on the retry)
        state._acquire("source:shop2", "other_run", dt.datetime.now(dt.UTC).replace(tzinfo=None))
    both = NexusRawOperator(task_id="raw2", sources=[other, SOURCE], data_dir=mini_project / "data", **common)
    with pytest.raises(SourcesFailedError, match="shop2: NexusBusyError") as failed:
        both.execute(_context("r2"))
    assert not isinstance(failed.value, SourcesRejectedError)
    # the source layer builds each source up to its window in the raw task's XCom
    source = NexusSourceOperator(
        task_id="source", sources=[SOURCE], entity_types=ENTITY_TYPES, raw_task_id="raw", **common
    )
    pulled: list[str] = []
    ti = SimpleNamespace(xcom_pull=lambda task_ids: pulled.append(task_ids) or {"sources": windows})
    result = source.execute({"run_id": "r1", "ti": ti})
    assert pulled == ["raw"] and result["sources"]["shop"]["high"] == windows["shop"]["high"]
    assert result["sources"]["shop"]["models"]["events"]["written"] == 5
    assert source.compiled_sql.startswith("-- source shop\n\n-- sources/shop/events.sql")


def test_a_killed_task_starts_no_further_source(
    duckdb_conn: tuple[str, Path], mini_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Airflow calls on_kill from its signal handler; here it is called right after the first
    source's load (between statements, where no statement is running to cancel). Each source
    also claims and writes at its own time, not the task's start."""
    import airflow_provider_nexus.layers.raw as raw_layer
    from airflow_provider_nexus.errors import WarehouseCancelledError

    conn_id, _ = duckdb_conn
    sources = [{**SOURCE, "name": name} for name in ("first", "second", "third")]
    raw = NexusRawOperator(
        task_id="raw", sources=sources, data_dir=mini_project / "data", **_common(conn_id, mini_project)
    )
    load, times = raw_layer.load_source, []

    def load_then_kill(wh: Any, source: Any, schemas: Any, data_dir: Any, lookback: Any, run: Any) -> Any:
        times.append(run.now)
        window = load(wh, source, schemas, data_dir, lookback, run)
        if source.name == "second":
            raw.on_kill()
        return window

    monkeypatch.setattr(raw_layer, "load_source", load_then_kill)
    with pytest.raises(WarehouseCancelledError, match="killed; not started: third"):
        raw.execute(_context("r1"))
    assert len(times) == 2 and times[1] > times[0]


def test_source_and_sources_are_exclusive() -> None:
    from airflow_provider_nexus.errors import NexusConfigError

    with pytest.raises(NexusConfigError, match="either 'source'"):
        NexusRawOperator(task_id="raw", conn_id="x", source=SOURCE, sources=[SOURCE])
    with pytest.raises(NexusConfigError, match="'shop' more than once"):
        NexusRawOperator(task_id="raw", conn_id="x", sources=[SOURCE, SOURCE])
