"""Incremental-correctness scenarios through real Airflow (`dag.test()` in a fresh process per run).

Each scenario drives the demo pipeline through failures, partial runs, run-conf options or late
data, then checks what the warehouse holds against what it must hold: no partial rows and no
moved watermark after a failed write, other sources unaffected by a failing one, and in the end
the same customer model as one clean build of the same batches.

Faults are injected without touching product code: a `sitecustomize.py` on the child's
PYTHONPATH wraps `StateStore.set` and `replace_model_rows` and raises while the JSON file named by
NEXUS_TEST_FAULTS exists, for the sources, layers and tables it lists.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import sqlite3
import textwrap
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from test_e2e_airflow import REPO, SPEC, Project, _diff

from airflow_provider_nexus.airflow_run import (
    airflow_env,
    ensure_metadata_db,
    run_dag_test,
)
from airflow_provider_nexus.demo.generator import batch_times

pytestmark = pytest.mark.airflow

CONFIG = REPO / "dags" / "configs" / "nexus_demo.yml"
SOURCES = ("crm", "billing", "product", "support")
#: Delivery times of the demo batches; the scenarios use the first two.
T0, T1 = batch_times(SPEC)[:2]
HOUR = dt.timedelta(hours=1)
CORE_MODELS = ("nexus_events", "nexus_identifiers", "nexus_traits", "nexus_memberships")

# -- fault injection -------------------------------------------------------------------------

SITECUSTOMIZE = '''
"""Test-only fault injection (tests/test_scenarios.py); inert unless $NEXUS_TEST_FAULTS exists.

Faults (a JSON list):
  {"kind": "watermark", "source": "crm" | "*", "layer": "source"}
      StateStore.set raises before writing that watermark (after the layer's rows were written
      in the same transaction).
  {"kind": "write", "table": "billing__identifiers"}
      replace_model_rows writes the rows of a target whose name contains `table`, then raises.
"""
import json
import os


class InjectedFault(RuntimeError):
    pass


def _faults():
    path = os.environ.get("NEXUS_TEST_FAULTS")
    if not path or not os.path.exists(path):
        return []
    with open(path) as fh:
        return json.load(fh)


def _install():
    from airflow_provider_nexus import state
    from airflow_provider_nexus.layers import core, source

    original_set = state.StateStore.set

    def set_watermark(self, source_name, layer, high, run_id, now):
        for fault in _faults():
            if fault["kind"] == "watermark" and fault["source"] in (source_name, "*") and fault["layer"] == layer:
                raise InjectedFault(f"injected fault: before the watermark of {source_name}/{layer}")
        return original_set(self, source_name, layer, high, run_id, now)

    state.StateStore.set = set_watermark

    for module in (core, source):

        def replace_model_rows(wh, model, target, staged, columns, *args, _original=module.replace_model_rows, **kwargs):
            written = _original(wh, model, target, staged, columns, *args, **kwargs)
            for fault in _faults():
                if fault["kind"] == "write" and fault["table"] in target:
                    raise InjectedFault(f"injected fault: after writing {written} row(s) into {target}")
            return written

        module.replace_model_rows = replace_model_rows


_install()
'''


# -- projects --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def airflow_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated Airflow metadata database, copied into each project (saves a migration per project)."""
    home = tmp_path_factory.mktemp("airflow_template")
    ensure_metadata_db(airflow_env(home, home / "dags"))
    return home / "airflow.db"


class Scenario(Project):
    """A Project with retries off, a pre-migrated Airflow database and optional fault injection."""

    def __init__(
        self,
        root: Path,
        airflow_db: Path,
        postgres_uri: str | None = None,
        faults: bool = False,
        yaml_edits: dict[str, str] | None = None,
    ) -> None:
        super().__init__(root, CONFIG, postgres_uri=postgres_uri)
        config_path = root / "dags" / "configs" / CONFIG.name
        text = config_path.read_text()
        for old, new in (yaml_edits or {}).items():
            assert old in text, f"{old!r} is no longer in {CONFIG.name}; update this test"
            text = text.replace(old, new)
        # A failed task must fail the run now, not wait a minute for its retry.
        config_path.write_text(text + "\nretries: 0\n")
        home = Path(self.env["AIRFLOW_HOME"])
        home.mkdir(parents=True, exist_ok=True)
        shutil.copy(airflow_db, home / "airflow.db")
        self.fault_file = root / "faults.json"
        if faults:
            site = root / "fault_injection"
            site.mkdir()
            (site / "sitecustomize.py").write_text(textwrap.dedent(SITECUSTOMIZE))
            existing = self.env.get("PYTHONPATH")
            self.env["PYTHONPATH"] = str(site) + (f":{existing}" if existing else "")
            self.env["NEXUS_TEST_FAULTS"] = str(self.fault_file)

    def inject(self, *faults: dict[str, str]) -> None:
        self.fault_file.write_text(json.dumps(list(faults)))

    def heal(self) -> None:
        self.fault_file.unlink(missing_ok=True)

    def attempt(self, when: dt.datetime, conf: dict[str, Any] | None = None) -> dict[str, Any]:
        """A run that may fail (Project.run insists on success)."""
        return run_dag_test(self.env, self.config.dag_id, when, conf)

    # -- reading state ---------------------------------------------------------------------
    def tables(self, schema: str) -> list[str]:
        _, rows = self.query(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = ? ORDER BY 1", [schema]
        )
        return [r[0] for r in rows]

    def rows(self, schema: str, table: str, where: str = "") -> list[tuple[Any, ...]]:
        """Every row, every column (processing timestamps included), sorted."""
        if table not in self.tables(schema):
            return []
        _, rows = self.query(f'SELECT * FROM "{schema}"."{table}" {where}')
        return sorted(rows, key=repr)

    def layer_rows(self, schema: str, prefix: str = "") -> dict[str, list[tuple[Any, ...]]]:
        return {t: self.rows(schema, t) for t in self.tables(schema) if t.startswith(prefix)}

    def watermarks(self) -> dict[tuple[str, str], tuple[Any, Any]]:
        """(source, layer) -> (high watermark, run id)."""
        if "nexus_watermarks" not in self.tables(self.config.schemas.core):
            return {}
        _, rows = self.query(
            f'SELECT source, layer, high_watermark, run_id FROM "{self.config.schemas.core}".nexus_watermarks'
        )
        return {(r[0], r[1]): (r[2], r[3]) for r in rows}

    def xcom(self, run_id: str, task_id: str) -> Any:
        """The return value a task pushed in a run, from Airflow's metadata database."""
        con = sqlite3.connect(Path(self.env["AIRFLOW_HOME"]) / "airflow.db")
        try:
            row = con.execute(
                "SELECT value FROM xcom WHERE run_id = ? AND task_id = ? AND key = 'return_value'", (run_id, task_id)
            ).fetchone()
        finally:
            con.close()
        assert row is not None, f"no XCom from {task_id} in run {run_id}"
        value = row[0]
        return json.loads(value if isinstance(value, str) else bytes(value).decode())

    def final_sources(self) -> dict[str, int]:
        _, rows = self.query(f'SELECT source, count(*) FROM "{self.config.schemas.final}".nexus_events GROUP BY 1')
        return {r[0]: r[1] for r in rows}


def _tail(result: dict[str, Any], chars: int = 4000) -> str:
    return f"tasks: {result['tasks']}\nlog tail:\n{result.get('log', '')[-chars:]}"


def _changed(before: dict[Any, Any], after: dict[Any, Any]) -> set[Any]:
    return {k for k in set(before) | set(after) if before.get(k) != after.get(k)}


def assert_equals_clean(project: Scenario, clean: Project, what: str) -> None:
    """Final and core tables equal those of a clean build, entity ids made canonical."""
    expected, got = clean.snapshot(canonical_ids=True), project.snapshot(canonical_ids=True)
    assert expected.keys() == got.keys(), f"{what}: tables differ: {sorted(expected.keys() ^ got.keys())}"
    assert expected == got, f"{what} differs from a clean build of the same batches:\n{_diff(expected, got)}"


# -- engines and the clean reference build ---------------------------------------------------


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """None for DuckDB, or the URI of a PostgreSQL database of this test (dropped afterwards)."""
    if request.param == "duckdb":
        yield None
        return
    from conftest import POSTGRES_URI, postgres_connect

    admin = postgres_connect()
    database = f"nexus_scn_{uuid.uuid4().hex[:8]}"
    admin.execute(f'CREATE DATABASE "{database}"')
    try:
        yield POSTGRES_URI.rsplit("/", 1)[0] + f"/{database}"
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        admin.close()


BROKEN_SQL = "SELECT this is not valid SQL FROM FROM\n"


def break_support_events(project: Project) -> str:
    """Make source.support fail (invalid SQL in its events template); return the good template."""
    template = project.root / "dags" / "sql" / "sources" / "support" / "events.sql"
    good = template.read_text()
    template.write_text(BROKEN_SQL)
    return good


class Background:
    """DuckDB runs that depend on no test, started when the module starts, on the second core.

    Every run here pays Airflow's ~20 s start-up; running them beside the foreground scenarios
    keeps the module within its time budget. Tests read the outcome and make the assertions.

    - the clean build: batches 0 and 1 delivered at once, one run. Every scenario ends on those
      batches and is compared with it. Final tables are engine-independent (test_e2e_airflow
      checks PostgreSQL against DuckDB), so PostgreSQL scenarios are compared with it too.
    - the runs of the DuckDB-only scenarios (run conf sources, late rows).
    """

    def __init__(self, root: Path, airflow_db: Path, selected: set[str]) -> None:
        """Start what the selected tests (names of test functions) need, the clean build first."""
        self.root = root
        self.airflow_db = airflow_db
        self.pool = ThreadPoolExecutor(max_workers=1)
        self.jobs: dict[str, Future[Any]] = {}
        if selected - {"test_run_conf_sources_runs_only_those_and_rejects_unknown_names"}:
            self.jobs["clean"] = self.pool.submit(self._build_clean)
        if "test_rows_later_than_the_lookback_are_still_loaded" in selected:
            self.jobs["late_rows"] = self.pool.submit(_late_rows_runs, root / "late_rows", airflow_db)
        if "test_run_conf_sources_runs_only_those_and_rejects_unknown_names" in selected:
            self.jobs["run_conf"] = self.pool.submit(_run_conf_runs, root / "run_conf", airflow_db)

    def _result(self, job: str) -> Any:
        return self.jobs[job].result()

    def clean(self) -> Project:
        return self._result("clean")

    def late_rows(self) -> dict[str, Any]:
        return self._result("late_rows")

    def run_conf(self) -> dict[str, Any]:
        return self._result("run_conf")

    def _build_clean(self) -> Project:
        project = Scenario(self.root / "clean", self.airflow_db)
        project.deliver(0)
        project.deliver(1)
        project.run(T1)
        return project


@pytest.fixture(scope="module")
def background(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, airflow_db: Path
) -> Iterator[Background]:
    selected = {
        item.originalname
        for item in request.session.items
        if isinstance(item, pytest.Function) and item.module is request.module
    }
    runs = Background(tmp_path_factory.mktemp("background"), airflow_db, selected)
    yield runs
    runs.pool.shutdown(wait=True, cancel_futures=True)


# -- 1. failures between the write and the watermark, and inside the write ------------------


def test_failed_writes_leave_no_trace_and_the_next_run_catches_up(
    engine: str | None, tmp_path: Path, airflow_db: Path, background: Background
) -> None:
    p = Scenario(tmp_path / "p", airflow_db, postgres_uri=engine, faults=True)
    s = p.config.schemas
    p.deliver(0)
    p.run(T0)
    p.deliver(1)

    before_wm = p.watermarks()
    before = {
        "raw support": p.layer_rows(s.raw, "support__"),
        "support ledger": {"nexus_loaded_files": p.rows(s.core, "nexus_loaded_files", "WHERE source = 'support'")},
        "source crm": p.layer_rows(s.source, "crm__"),
        "source billing": p.layer_rows(s.source, "billing__"),
        "core": {t: p.rows(s.core, t) for t in CORE_MODELS},
        "rejected rows of crm and billing": {
            "nexus_rejected_rows": p.rows(s.source, "nexus_rejected_rows", "WHERE source IN ('crm', 'billing')")
        },
    }
    assert all(before["source crm"].values()) and all(before["core"].values()), "batch 0 built nothing"

    p.inject(
        # raw: rows, file ledger and raw watermark in one transaction; fail before the watermark
        {"kind": "watermark", "source": "support", "layer": "raw"},
        # source: every model written, then the watermark fails
        {"kind": "watermark", "source": "crm", "layer": "source"},
        # source: the 2nd model (identifiers) written, then the write fails
        {"kind": "write", "table": "billing__identifiers"},
        # core: every model of every source written, then the first watermark fails
        {"kind": "watermark", "source": "*", "layer": "core"},
    )
    result = p.attempt(T1)
    assert result["state"] == "failed", _tail(result)
    expected_states = {
        "raw.crm": "success",
        "raw.billing": "success",
        "raw.product": "success",
        "raw.support": "failed",
        "source.crm": "failed",
        "source.billing": "failed",
        "source.product": "success",
        "source.support": "upstream_failed",
        "core": "failed",
        "resolution.person": "upstream_failed",
        "resolution.group": "upstream_failed",
        "final": "upstream_failed",
        "run_check": "failed",
    }
    assert result["tasks"] == expected_states, _tail(result)
    for fired in (
        r"before the watermark of support/raw",
        r"before the watermark of crm/source",
        r"after writing \d+ row\(s\) into \S*billing__identifiers",
        r"before the watermark of \w+/core",
    ):
        assert re.search(f"injected fault: {fired}", result["log"]), (
            f"the fault {fired!r} did not fire: a task failed for another reason\n" + _tail(result, 20000)
        )

    after = {
        "raw support": p.layer_rows(s.raw, "support__"),
        "support ledger": {"nexus_loaded_files": p.rows(s.core, "nexus_loaded_files", "WHERE source = 'support'")},
        "source crm": p.layer_rows(s.source, "crm__"),
        "source billing": p.layer_rows(s.source, "billing__"),
        "core": {t: p.rows(s.core, t) for t in CORE_MODELS},
        "rejected rows of crm and billing": {
            "nexus_rejected_rows": p.rows(s.source, "nexus_rejected_rows", "WHERE source IN ('crm', 'billing')")
        },
    }
    for part, rows in before.items():
        for table in sorted(set(rows) | set(after[part])):
            old, new = rows.get(table, []), after[part].get(table, [])
            assert old == new, (
                f"{part}: the failed task left partial rows in {table} "
                f"({len(set(new) - set(old))} row(s) added, {len(set(old) - set(new))} removed)"
            )

    after_wm = p.watermarks()
    moved = _changed(before_wm, after_wm)
    # Only the layers that succeeded may move: raw of crm, billing (and its landed tables), product;
    # the source layer of product. No failed layer, and no core watermark at all.
    allowed = {
        ("crm", "raw"),
        ("billing", "raw"),
        ("billing", "raw:customers"),
        ("billing", "raw:invoices"),
        ("product", "raw"),
        ("product", "source"),
    }
    assert moved <= allowed, f"watermarks of failed layers moved: {sorted(moved - allowed)}"
    assert {("crm", "raw"), ("product", "source")} <= moved, f"the succeeded layers did not advance: {sorted(moved)}"
    assert p.rows(s.core, "nexus_locks") == [], "a failed task left its lock behind"

    # The faults are gone: the next run picks up everything the failed one left undone.
    p.heal()
    p.run(T1 + HOUR)
    final_wm = p.watermarks()
    for source in SOURCES:
        for layer in ("raw", "source", "core"):
            assert final_wm[(source, layer)] != before_wm.get((source, layer)), f"{source}/{layer} never caught up"
    assert_equals_clean(p, background.clean(), "after failures and a successful run")


# -- 2. one failing source holds back nobody -------------------------------------------------


def test_a_failing_source_holds_back_nobody_and_catches_up(
    engine: str | None, tmp_path: Path, airflow_db: Path, background: Background
) -> None:
    p = Scenario(tmp_path / "p", airflow_db, postgres_uri=engine)
    s = p.config.schemas
    p.deliver(0)
    p.deliver(1)
    good = break_support_events(p)

    result = p.attempt(T1)
    failed = {t: st for t, st in result["tasks"].items() if st != "success"}
    assert failed == {"source.support": "failed", "run_check": "failed"}, (
        f"only source.support may fail (and run_check, which reports it):\n{_tail(result)}"
    )
    assert result["state"] == "failed", f"source.support failed but the DAG run is {result['state']!r}"
    assert "source 'support', model 'events'" in result["log"], "the error does not name the template:\n" + _tail(
        result
    )
    in_final = p.final_sources()
    assert set(in_final) == {"crm", "billing", "product"}, f"final events by source: {in_final}"
    first_wm = p.watermarks()
    assert ("support", "source") not in first_wm and ("support", "core") not in first_wm, first_wm
    other_core_rows = {t: p.rows(s.core, t, "WHERE source <> 'support'") for t in CORE_MODELS}
    assert all(other_core_rows.values()), (
        f"core is missing the healthy sources: { {t: len(r) for t, r in other_core_rows.items()} }"
    )

    (p.root / "dags" / "sql" / "sources" / "support" / "events.sql").write_text(good)
    p.run(T1 + HOUR)  # no new data: only support has anything to do
    second_wm = p.watermarks()
    moved = {(source, layer) for source, layer in _changed(first_wm, second_wm) if source in SOURCES}
    assert moved == {("support", "source"), ("support", "core")}, (
        f"with no new data only support's source and core watermarks may move; moved: {sorted(moved)}"
    )
    for table, rows in other_core_rows.items():
        now = p.rows(s.core, table, "WHERE source <> 'support'")
        assert now == rows, f"core.{table}: rows of the healthy sources were reprocessed or changed"
    assert set(p.final_sources()) == set(SOURCES), p.final_sources()
    assert_equals_clean(p, background.clean(), "after a source failed and recovered")


# -- 3. full refresh keeps every row and every id --------------------------------------------


def test_full_refresh_after_batches_changes_nothing_and_keeps_ids(
    engine: str | None, tmp_path: Path, airflow_db: Path, background: Background
) -> None:
    p = Scenario(tmp_path / "p", airflow_db, postgres_uri=engine)
    p.deliver(0)
    p.run(T0)
    p.deliver(1)
    p.run(T1)
    before = p.snapshot(only_final=True)

    result = p.attempt(T1 + HOUR, {"full_refresh": True})
    assert result["state"] == "success", _tail(result)
    assert {t: st for t, st in result["tasks"].items() if st != "success"} == {"run_check": "skipped"}, _tail(result)
    core = p.xcom(result["run_id"], "core")
    assert set(core["sources"]) == set(SOURCES) and all(w["low"] is None for w in core["sources"].values()), (
        f"full_refresh did not rebuild core from the start for every source: {core['sources']}"
    )

    after = p.snapshot(only_final=True)
    assert after == before, "full_refresh changed the final tables or their entity ids:\n" + _diff(before, after)
    assert_equals_clean(p, background.clean(), "after a full refresh")


# -- 4. the run conf's source list -----------------------------------------------------------


def _run_conf_runs(root: Path, airflow_db: Path) -> dict[str, Any]:
    """Batch 0, run with sources [crm]; then a run naming an unknown source (in the background)."""
    p = Scenario(root, airflow_db)
    p.deliver(0)
    crm_only = p.attempt(T0, {"sources": ["crm"]})
    observed = {"project": p, "crm_only": crm_only, "watermarks": p.watermarks()}
    if crm_only["state"] == "success":
        observed["snapshot"] = p.snapshot(include_processing=True)
        observed["unknown"] = p.attempt(T0 + HOUR, {"sources": ["nope"]})
    return observed


def test_run_conf_sources_runs_only_those_and_rejects_unknown_names(background: Background) -> None:
    observed = background.run_conf()
    p: Scenario = observed["project"]
    result = observed["crm_only"]
    assert result["state"] == "success", _tail(result)
    for source in SOURCES:
        expected = "success" if source == "crm" else "skipped"
        for layer in ("raw", "source"):
            got = result["tasks"][f"{layer}.{source}"]
            assert got == expected, f"{layer}.{source} is {got}, expected {expected}\n{_tail(result)}"
    for task in ("core", "resolution.person", "resolution.group", "final"):
        assert result["tasks"][task] == "success", _tail(result)
    assert result["tasks"]["run_check"] == "skipped", "skipped sources must not fail the run\n" + _tail(result)
    wm = observed["watermarks"]
    assert {source for source, _ in wm if source in SOURCES} == {"crm"}, f"only crm may have watermarks: {sorted(wm)}"

    result = observed["unknown"]
    assert result["state"] == "failed", _tail(result)
    assert "success" not in result["tasks"].values(), f"a task ran despite the unknown source: {_tail(result)}"
    log = result["log"]
    assert "unknown source(s) 'nope'" in log, "the error does not name the unknown source:\n" + _tail(result)
    assert "crm, billing, product, support" in log, "the error does not list the known sources:\n" + _tail(result)
    assert p.watermarks() == wm, f"watermarks moved: {sorted(_changed(wm, p.watermarks()))}"
    assert p.snapshot(include_processing=True) == observed["snapshot"], "a run with an unknown source changed tables"
    assert set(p.final_sources()) == {"crm"}, p.final_sources()


# -- 5. late rows behind a short lookback ----------------------------------------------------


def _late_rows_runs(root: Path, airflow_db: Path) -> dict[str, Any]:
    """Batches 0 and 1, one run each, with a 1-minute lookback (in the background)."""
    p = Scenario(root, airflow_db, yaml_edits={"incremental: {lookback: 10m}": "incremental: {lookback: 1m}"})
    p.deliver(0)
    p.run(T0)
    p.deliver(1)
    return {"project": p, "result": p.run(T1)}


def test_rows_later_than_the_lookback_are_still_loaded(background: Background) -> None:
    observed = background.late_rows()
    p: Scenario = observed["project"]
    result = observed["result"]
    raw = p.xcom(result["run_id"], "raw.billing")
    late = {table: counts["late"] for table, counts in raw["tables"].items()}
    assert sum(late.values()) > 0, f"the demo's late billing rows were not reported as late: {raw}"
    assert "older than the lookback window" in result["log"], "no warning about late rows in the log"
    for table, key in (("customers", "customer_id"), ("invoices", "invoice_id")):
        _, landed = p.query(f"SELECT count(DISTINCT {key}) FROM landing.billing_{table}")
        _, loaded = p.query(f'SELECT count(DISTINCT {key}) FROM "{p.config.schemas.raw}".billing__{table}')
        assert loaded == landed, f"billing {table}: {landed[0][0]} keys landed, {loaded[0][0]} in raw"
    assert_equals_clean(p, background.clean(), "with a 1-minute lookback")
