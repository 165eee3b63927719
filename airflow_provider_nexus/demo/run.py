"""`nexus demo`: deliver the demo batches one by one and run the demo DAG through real Airflow."""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

DEMO_DAG_ID = "nexus_demo"
DEMO_CONN_ID = "nexus_duckdb"


def demo_environment(dags_dir: Path, workdir: Path) -> tuple[dict[str, str], Path]:
    """Airflow env for the demo and the DuckDB file its connection points at."""
    from airflow_provider_nexus.airflow_run import airflow_env

    duckdb_path = (workdir / "nexus_demo.duckdb").resolve()
    conn = json.dumps({"conn_type": "duckdb", "host": str(duckdb_path)})
    env = airflow_env(
        (workdir / "airflow_home").resolve(),
        dags_dir.resolve(),
        {f"AIRFLOW_CONN_{DEMO_CONN_ID.upper()}": conn},
    )
    return env, duckdb_path


def run_demo(dags_dir: Path, workdir: Path, persons: int, batches: int, seed: int) -> int:
    from airflow_provider_nexus.config import load_config
    from airflow_provider_nexus.demo.generator import DemoSpec, batch_times, write_batch

    config_file = dags_dir / "configs" / f"{DEMO_DAG_ID}.yml"
    if not config_file.is_file():
        print(
            f"error: {config_file} not found; run from the repository root or pass --dags-dir",
            file=sys.stderr,
        )
        return 2
    config = load_config(config_file)
    data_dir = config.resolved_data_dir()
    # A demo always starts from nothing, so its output is the same on every machine.
    for stale in (workdir, data_dir):
        if stale.exists():
            shutil.rmtree(stale)
    workdir.mkdir(parents=True)
    env, duckdb_path = demo_environment(dags_dir, workdir)
    spec = DemoSpec(persons=persons, batches=batches, seed=seed)
    times = batch_times(spec)
    print(f"Nexus demo: {persons} persons in {batches} batches, DuckDB at {duckdb_path}")
    from airflow_provider_nexus.airflow_run import run_dag_test

    for batch, when in enumerate(times):
        rows = write_batch(spec, batch, data_dir, duckdb_path)
        started = time.perf_counter()
        result = run_dag_test(env, DEMO_DAG_ID, when)
        took = time.perf_counter() - started
        print(
            f"  batch {batch + 1}/{batches}: delivered {sum(rows.values())} raw rows, DAG run {result['state']} in {took:.0f}s"
        )
        if result["state"] != "success":
            failed = {t: s for t, s in result["tasks"].items() if s != "success"}
            print(
                f"error: DAG run failed: {failed}\n{result.get('log', '')[-6000:]}",
                file=sys.stderr,
            )
            return 1
    print_summary(duckdb_path, config.schemas.final, config.schemas.resolution)
    return 0


def print_summary(duckdb_path: Path, final_schema: str, resolution_schema: str) -> None:
    import duckdb

    from airflow_provider_nexus.dialects.duckdb import DuckDBDialect

    d = DuckDBDialect()
    con = duckdb.connect(str(duckdb_path), read_only=True)
    try:
        print("\nFinal tables:")
        tables = con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = ? ORDER BY table_name",
            [final_schema],
        ).fetchall()
        for (table,) in tables:
            count = con.execute(f"SELECT count(*) FROM {d.table(final_schema, table)}").fetchone()
            print(f"  {final_schema}.{table:<28} {count[0] if count else 0:>8} rows")
        persons = d.table(final_schema, "nexus_persons")
        row = con.execute(
            f"SELECT id, sources FROM {persons} WHERE NOT is_hub ORDER BY length(sources) DESC, id LIMIT 1"
        ).fetchone()
        if row:
            print(f"\nOne person seen across sources ({row[1]}): {row[0]}")
            identifiers = con.execute(
                f"SELECT identifier_type, identifier_value FROM {d.table(final_schema, 'nexus_entity_identifiers')} "
                "WHERE entity_id = ? ORDER BY identifier_type, identifier_value",
                [row[0]],
            ).fetchall()
            for identifier_type, value in identifiers:
                print(f"  {identifier_type:<20} {value}")
        log = d.table(resolution_schema, "nexus_resolution_log")
        merges: list[Any] = con.execute(
            f"SELECT entity_type, previous_entity_id, entity_id, count(*) FROM {log} WHERE reason = 'merged' "
            "GROUP BY ALL ORDER BY count(*) DESC, entity_id LIMIT 5"
        ).fetchall()
        total = con.execute(f"SELECT count(DISTINCT previous_entity_id) FROM {log} WHERE reason = 'merged'").fetchone()
        print(f"\nMerges in the resolution log: {total[0] if total else 0} entities merged into others; largest:")
        for entity_type, loser, survivor, moved in merges:
            print(f"  {entity_type}: {loser} -> {survivor} ({moved} identifiers re-pointed)")
        print(
            f"\nQuery it yourself:  python -c \"import duckdb; print(duckdb.connect('{duckdb_path}', read_only=True).sql('FROM {final_schema}.nexus_persons LIMIT 5'))\""
        )
    finally:
        con.close()
