"""Every pipeline in dags/configs through real Airflow (`dag.test()` in a fresh process each run).

Incremental batches must give the same customer model as one build of the same data, a second
run with no new data must change no row, and every task must succeed.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import duckdb
import pytest

from airflow_provider_nexus.airflow_run import airflow_env, run_dag_test
from airflow_provider_nexus.config import load_config
from airflow_provider_nexus.demo.generator import DemoSpec, WarehouseConnection, batch_times, write_batch

pytestmark = pytest.mark.airflow

REPO = Path(__file__).resolve().parent.parent
CONFIGS = sorted((REPO / "dags" / "configs").glob("*.yml"))
SPEC = DemoSpec(persons=300, batches=3, seed=7)
#: Columns that record when a row was processed, not what it says.
PROCESSING_COLUMNS = {"_ingested_at", "_loaded_at", "_updated_at", "resolved_at"}
ENTITY_COLUMNS = {"id", "entity_id", "person_id", "group_id"}


def _write_demo_batch(project: Path, batch: int, landing: Path | str | WarehouseConnection) -> None:
    config = load_config(project / "dags" / "configs" / "nexus_demo.yml")
    write_batch(SPEC, batch, config.resolved_data_dir(), landing)


#: How to feed each shipped pipeline with data; a new config needs an entry here.
DATA_FEEDS: dict[str, Callable[[Path, int, Path | str | WarehouseConnection], None]] = {
    "nexus_demo.yml": _write_demo_batch
}
#: The connection id of pipelines run on a warehouse given as an Airflow connection.
WAREHOUSE_CONN_ID = "nexus_warehouse"


class Project:
    """A copy of dags/ with its own Airflow home and warehouse: a DuckDB file, a PG database, or
    any Airflow connection (`connection`, JSON) opened in this process inside `session()`."""

    def __init__(
        self,
        root: Path,
        config_file: Path,
        postgres_uri: str | None = None,
        connection: str | None = None,
        session: Callable[[], AbstractContextManager[Any]] = nullcontext,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.root = root
        shutil.copytree(REPO / "dags", root / "dags", ignore=shutil.ignore_patterns("data", "__pycache__"))
        config_path = root / "dags" / "configs" / config_file.name
        self.postgres_uri = postgres_uri
        self.connection = connection
        self.session = session
        if postgres_uri or connection:
            # The pipeline differs from the DuckDB one only in its connection.
            text = config_path.read_text()
            duck_line = next(line for line in text.splitlines() if line.startswith("warehouse:"))
            conn_id = WAREHOUSE_CONN_ID if connection else "nexus_postgres"
            config_path.write_text(text.replace(duck_line, f"warehouse: {{conn_id: {conn_id}}}"))
        self.config = load_config(config_path)
        self.warehouse = root / "warehouse.duckdb"
        if connection:
            conn = connection
        elif postgres_uri:
            conn = postgres_uri.replace("postgresql://", "postgres://", 1)
        else:
            conn = json.dumps({"conn_type": "duckdb", "host": str(self.warehouse)})
        self.conn_env = {f"AIRFLOW_CONN_{self.config.warehouse.conn_id.upper()}": conn}
        self.env = airflow_env(root / "airflow_home", root / "dags", {**self.conn_env, **(extra_env or {})})
        self.feed = DATA_FEEDS[config_file.name]

    def deliver(self, batch: int) -> None:
        if self.connection:
            with self.session():
                self.feed(self.root, batch, WarehouseConnection(self.config.warehouse.conn_id))
        else:
            self.feed(self.root, batch, self.postgres_uri or self.warehouse)

    def run(self, when: dt.datetime) -> dict[str, Any]:
        result = run_dag_test(self.env, self.config.dag_id, when)
        assert result["state"] == "success", f"{result['tasks']}\n{result.get('log', '')[-6000:]}"
        tasks = dict(result["tasks"])
        # The run check is skipped when every task succeeded (it fails the run otherwise).
        assert tasks.pop("run_check", None) == "skipped", result["tasks"]
        assert tasks and set(tasks.values()) == {"success"}, result["tasks"]
        return result

    def query(self, sql: str, params: list[Any] | None = None) -> tuple[list[str], list[tuple[Any, ...]]]:
        if self.connection:
            from airflow_provider_nexus.warehouse import Warehouse

            with self.session(), Warehouse.open(self.config.warehouse.conn_id) as wh:
                for value in params or []:
                    sql = sql.replace("?", wh.dialect.literal(value), 1)
                cur = wh._run(sql, None)
                return [str(c[0]).lower() for c in cur.description], [tuple(r) for r in cur.fetchall()]
        if self.postgres_uri:
            import psycopg

            with psycopg.connect(self.postgres_uri) as con:
                cur = con.execute(sql.replace("?", "%s"), params)
                return [c.name for c in cur.description or []], [tuple(r) for r in cur.fetchall()]
        con = duckdb.connect(str(self.warehouse), read_only=True)
        try:
            cur = con.execute(sql, params)
            return [c[0] for c in cur.description], cur.fetchall()
        finally:
            con.close()

    def snapshot(
        self, canonical_ids: bool = False, include_processing: bool = False, only_final: bool = False
    ) -> dict[str, list[tuple[Any, ...]]]:
        """Final, core and resolution tables, sorted; ids optionally made canonical."""
        schemas = self.config.schemas
        wanted = [schemas.final] if only_final else [schemas.final, schemas.core, schemas.resolution]
        # names as the catalog keeps them (Snowflake: upper case), compared and reported lower-cased
        _, stored = self.query(
            "SELECT table_schema, table_name FROM information_schema.tables WHERE lower(table_schema) IN ("
            + ", ".join("?" for _ in wanted)
            + ") ORDER BY 1, 2",
            wanted,
        )
        canonical = self._canonical_entity_ids() if canonical_ids else {}
        out: dict[str, list[tuple[Any, ...]]] = {}
        for stored_schema, stored_table in stored:
            schema, table = stored_schema.lower(), stored_table.lower()
            # bookkeeping of how the data arrived (windows, files, replaced rows), not the data
            if (
                table in BOOKKEEPING
                or table.endswith("_retracted")
                or (canonical_ids and (schema == schemas.resolution or table == "nexus_resolution_log"))
            ):
                continue
            names, result = self.query(f'SELECT * FROM "{stored_schema}"."{stored_table}"')
            keep = [i for i, n in enumerate(names) if include_processing or n not in PROCESSING_COLUMNS]
            rows = []
            for row in result:
                values = [_comparable(row[i]) for i in keep]
                if canonical:
                    values = [
                        canonical.get(v, v) if names[i] in ENTITY_COLUMNS else v
                        for i, v in zip(keep, values, strict=True)
                    ]
                rows.append(tuple(values))
            out[f"{schema}.{table}"] = sorted(rows, key=repr)
        return out

    def _canonical_entity_ids(self) -> dict[str, str]:
        """entity id -> its smallest identifier: equal partitions give equal names, whatever the ids."""
        _, rows = self.query(
            "SELECT entity_id, min(identifier_type || ':' || identifier_value) "
            f'FROM "{self.config.schemas.final}".nexus_entity_identifiers GROUP BY 1'
        )
        return {entity: f"entity<{key}>" for entity, key in rows}


BOOKKEEPING = ("nexus_watermarks", "nexus_loaded_files", "nexus_final_state")


def _comparable(value: Any) -> Any:
    """Engines return floats as float/Decimal alike; compare values, not driver types."""
    from decimal import Decimal

    if isinstance(value, Decimal):
        return float(value)
    return value


@pytest.mark.parametrize("config_file", CONFIGS, ids=[c.stem for c in CONFIGS])
def test_pipeline_batches_equal_one_build_and_reruns_change_nothing(config_file: Path, tmp_path: Path) -> None:
    assert config_file.name in DATA_FEEDS, f"add a data feed for {config_file.name} to this test"
    times = batch_times(SPEC)

    incremental = Project(tmp_path / "incremental", config_file)
    for batch, when in enumerate(times):
        incremental.deliver(batch)
        incremental.run(when)
    after_batches = incremental.snapshot(include_processing=True)
    assert after_batches[f"{incremental.config.schemas.final}.nexus_persons"], "no persons were built"

    # Running again with no new data is a green no-op: not one row changes, timestamps included.
    incremental.run(times[-1] + dt.timedelta(hours=1))
    assert incremental.snapshot(include_processing=True) == after_batches

    at_once = Project(tmp_path / "at_once", config_file)
    for batch in range(SPEC.batches):
        at_once.deliver(batch)
    at_once.run(times[-1])
    expected, got = at_once.snapshot(canonical_ids=True), incremental.snapshot(canonical_ids=True)
    assert expected == got, _diff(expected, got)


def test_one_task_per_layer_builds_the_same_model(tmp_path: Path) -> None:
    """`granularity: layer` (one raw and one source task for every source) gives the rows that one
    task per source gives, batch after batch."""
    config_file = REPO / "dags" / "configs" / "nexus_demo.yml"
    per_source = Project(tmp_path / "per_source", config_file)
    per_layer = Project(tmp_path / "per_layer", config_file)
    layered = per_layer.root / "dags" / "configs" / config_file.name
    layered.write_text(layered.read_text() + "\ngranularity: layer\n")
    for batch, when in enumerate(batch_times(SPEC)[:2]):
        for project in (per_source, per_layer):
            project.deliver(batch)
        per_source.run(when)
        tasks = per_layer.run(when)["tasks"]
        assert {"raw", "source"} <= set(tasks) and not any(t.startswith("raw.") for t in tasks), tasks
        # the final tables, ids included; core too (resolution's internal numbering is arbitrary)
        assert per_layer.snapshot(only_final=True) == per_source.snapshot(only_final=True)
        expected, got = per_source.snapshot(canonical_ids=True), per_layer.snapshot(canonical_ids=True)
        assert got == expected, _diff(expected, got)


def _diff(expected: dict[str, list[tuple[Any, ...]]], got: dict[str, list[tuple[Any, ...]]]) -> str:
    lines = []
    for table in sorted(set(expected) | set(got)):
        a, b = set(expected.get(table, [])), set(got.get(table, []))
        if a != b:
            lines.append(f"{table}: {len(a - b)} row(s) only expected, {len(b - a)} only got")
            lines += [f"  - {r}" for r in sorted(a - b, key=repr)[:3]]
            lines += [f"  + {r}" for r in sorted(b - a, key=repr)[:3]]
    return "\n".join(lines)


@pytest.mark.postgres
def test_demo_on_postgres_equals_duckdb(tmp_path: Path) -> None:
    """The demo batches through Airflow on PostgreSQL give DuckDB's final rows, ids included."""
    import uuid

    from conftest import POSTGRES_URI, postgres_connect

    admin = postgres_connect()
    database = f"nexus_e2e_{uuid.uuid4().hex[:8]}"
    admin.execute(f'CREATE DATABASE "{database}"')
    uri = POSTGRES_URI.rsplit("/", 1)[0] + f"/{database}"
    try:
        config_file = REPO / "dags" / "configs" / "nexus_demo.yml"
        duck = Project(tmp_path / "duckdb", config_file)
        pg = Project(tmp_path / "postgres", config_file, postgres_uri=uri)
        for batch, when in enumerate(batch_times(SPEC)):
            for project in (duck, pg):
                project.deliver(batch)
                project.run(when)
        expected, got = duck.snapshot(only_final=True), pg.snapshot(only_final=True)
        assert expected == got, _diff(expected, got)
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        admin.close()
