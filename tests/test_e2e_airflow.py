"""Every pipeline in dags/configs through real Airflow (`dag.test()` in a fresh process each run).

Incremental batches must give the same customer model as one build of the same data, a second
run with no new data must change no row, and every task must succeed.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pytest

from airflow_provider_nexus.airflow_run import airflow_env, run_dag_test
from airflow_provider_nexus.config import load_config
from airflow_provider_nexus.demo.generator import DemoSpec, batch_times, write_batch

pytestmark = pytest.mark.airflow

REPO = Path(__file__).resolve().parent.parent
CONFIGS = sorted((REPO / "dags" / "configs").glob("*.yml"))
SPEC = DemoSpec(persons=300, batches=3, seed=7)
#: Columns that record when a row was processed, not what it says.
PROCESSING_COLUMNS = {"_ingested_at", "_loaded_at", "_updated_at", "resolved_at"}
ENTITY_COLUMNS = {"id", "entity_id", "person_id", "group_id"}


def _write_demo_batch(project: Path, batch: int, warehouse: Path) -> None:
    config = load_config(project / "dags" / "configs" / "nexus_demo.yml")
    write_batch(SPEC, batch, config.resolved_data_dir(), warehouse)


#: How to feed each shipped pipeline with data; a new config needs an entry here.
DATA_FEEDS: dict[str, Callable[[Path, int, Path], None]] = {"nexus_demo.yml": _write_demo_batch}


class Project:
    """A copy of dags/ with its own Airflow home and DuckDB file."""

    def __init__(self, root: Path, config_file: Path) -> None:
        self.root = root
        shutil.copytree(REPO / "dags", root / "dags", ignore=shutil.ignore_patterns("data", "__pycache__"))
        self.config = load_config(root / "dags" / "configs" / config_file.name)
        self.warehouse = root / "warehouse.duckdb"
        conn = json.dumps({"conn_type": "duckdb", "host": str(self.warehouse)})
        self.env = airflow_env(
            root / "airflow_home", root / "dags", {f"AIRFLOW_CONN_{self.config.warehouse.conn_id.upper()}": conn}
        )
        self.feed = DATA_FEEDS[config_file.name]

    def deliver(self, batch: int) -> None:
        self.feed(self.root, batch, self.warehouse)

    def run(self, when: dt.datetime) -> dict[str, Any]:
        result = run_dag_test(self.env, self.config.dag_id, when)
        assert result["state"] == "success", f"{result['tasks']}\n{result.get('log', '')[-6000:]}"
        assert result["tasks"] and set(result["tasks"].values()) == {"success"}, result["tasks"]
        return result

    def snapshot(
        self, canonical_ids: bool = False, include_processing: bool = False
    ) -> dict[str, list[tuple[Any, ...]]]:
        """Every final, core and resolution table, sorted; ids optionally made canonical."""
        con = duckdb.connect(str(self.warehouse), read_only=True)
        try:
            schemas = self.config.schemas
            tables = con.execute(
                "SELECT table_schema, table_name FROM information_schema.tables WHERE table_schema IN (?, ?, ?) ORDER BY 1, 2",
                [schemas.final, schemas.core, schemas.resolution],
            ).fetchall()
            canonical = _canonical_entity_ids(con, schemas.final) if canonical_ids else {}
            out: dict[str, list[tuple[Any, ...]]] = {}
            for schema, table in tables:
                if table in ("nexus_watermarks", "nexus_loaded_files") or (
                    canonical_ids and (schema == schemas.resolution or table == "nexus_resolution_log")
                ):
                    continue
                cur = con.execute(f'SELECT * FROM "{schema}"."{table}"')
                names = [c[0] for c in cur.description]
                keep = [i for i, n in enumerate(names) if include_processing or n not in PROCESSING_COLUMNS]
                rows = []
                for row in cur.fetchall():
                    values = [row[i] for i in keep]
                    if canonical:
                        values = [
                            canonical.get(v, v) if names[i] in ENTITY_COLUMNS else v
                            for i, v in zip(keep, values, strict=True)
                        ]
                    rows.append(tuple(values))
                out[f"{schema}.{table}"] = sorted(rows, key=repr)
            return out
        finally:
            con.close()


def _canonical_entity_ids(con: duckdb.DuckDBPyConnection, final_schema: str) -> dict[str, str]:
    """entity id -> its smallest identifier: equal partitions give equal names, whatever the ids."""
    rows = con.execute(
        f"SELECT entity_id, min(identifier_type || ':' || identifier_value) FROM \"{final_schema}\".nexus_entity_identifiers GROUP BY 1"
    ).fetchall()
    return {entity: f"entity<{key}>" for entity, key in rows}


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


def _diff(expected: dict[str, list[tuple[Any, ...]]], got: dict[str, list[tuple[Any, ...]]]) -> str:
    lines = []
    for table in sorted(set(expected) | set(got)):
        a, b = set(expected.get(table, [])), set(got.get(table, []))
        if a != b:
            lines.append(f"{table}: {len(a - b)} row(s) only in the one-shot build, {len(b - a)} only after batches")
            lines += [f"  - {r}" for r in sorted(a - b, key=repr)[:3]]
            lines += [f"  + {r}" for r in sorted(b - a, key=repr)[:3]]
    return "\n".join(lines)
