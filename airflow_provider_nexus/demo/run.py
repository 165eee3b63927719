"""`nexus demo`: deliver the demo batches one by one and run the demo DAG through real Airflow.

On DuckDB by default; `--postgres URI` runs the same pipeline on a PostgreSQL database, with a
copy of the config that differs only in its connection.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from airflow_provider_nexus.dialects import Dialect, get_dialect

DEMO_DAG_ID = "nexus_demo"
DEMO_CONN_ID = "nexus_duckdb"
DEMO_POSTGRES_CONN_ID = "nexus_postgres"

Query = Callable[[str, Sequence[Any]], list[tuple[Any, ...]]]


def run_demo(
    dags_dir: Path, workdir: Path, persons: int, batches: int, seed: int, postgres_uri: str | None = None
) -> int:
    from airflow_provider_nexus.airflow_run import airflow_env, run_dag_test
    from airflow_provider_nexus.config import load_config
    from airflow_provider_nexus.demo.generator import DemoSpec, batch_times, write_batch

    config_file = dags_dir / "configs" / f"{DEMO_DAG_ID}.yml"
    if not config_file.is_file():
        print(f"error: {config_file} not found; run from the repository root or pass --dags-dir", file=sys.stderr)
        return 2
    # A demo always starts from nothing, so its output is the same on every machine.
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    if postgres_uri:
        dags_dir = _postgres_copy(dags_dir, workdir / "dags")
        conn_id, conn = DEMO_POSTGRES_CONN_ID, postgres_uri.replace("postgresql://", "postgres://", 1)
        landing: Path | str = postgres_uri
        where = f"PostgreSQL at {postgres_uri}"
    else:
        duckdb_path = (workdir / "nexus_demo.duckdb").resolve()
        conn_id, conn = DEMO_CONN_ID, json.dumps({"conn_type": "duckdb", "host": str(duckdb_path)})
        landing = duckdb_path
        where = f"DuckDB at {duckdb_path}"
    config = load_config(dags_dir / "configs" / f"{DEMO_DAG_ID}.yml")
    data_dir = config.resolved_data_dir()
    if data_dir.exists():
        shutil.rmtree(data_dir)
    env = airflow_env(
        (workdir / "airflow_home").resolve(), dags_dir.resolve(), {f"AIRFLOW_CONN_{conn_id.upper()}": conn}
    )
    spec = DemoSpec(persons=persons, batches=batches, seed=seed)
    print(f"Nexus demo: {persons} persons in {batches} batches, {where}")
    for batch, when in enumerate(batch_times(spec)):
        rows = write_batch(spec, batch, data_dir, landing)
        started = time.perf_counter()
        result = run_dag_test(env, DEMO_DAG_ID, when)
        took = time.perf_counter() - started
        print(
            f"  batch {batch + 1}/{batches}: delivered {sum(rows.values())} raw rows, DAG run {result['state']} in {took:.0f}s"
        )
        if result["state"] != "success":
            failed = {t: s for t, s in result["tasks"].items() if s != "success"}
            print(f"error: DAG run failed: {failed}\n{result.get('log', '')[-6000:]}", file=sys.stderr)
            return 1
    if postgres_uri:
        import psycopg

        with psycopg.connect(postgres_uri) as pg:
            print_summary(_pg_query(pg), get_dialect("postgres"), config.schemas.final, config.schemas.resolution)
        print(
            f"\nQuery it yourself:  psql {postgres_uri} -c 'SELECT * FROM {config.schemas.final}.nexus_persons LIMIT 5'"
        )
    else:
        import duckdb

        con = duckdb.connect(str(landing), read_only=True)
        try:
            print_summary(_duck_query(con), get_dialect("duckdb"), config.schemas.final, config.schemas.resolution)
        finally:
            con.close()
        print(
            f"\nQuery it yourself:  python -c \"import duckdb; print(duckdb.connect('{landing}', read_only=True)"
            f".sql('FROM {config.schemas.final}.nexus_persons LIMIT 5'))\""
        )
    return 0


def _postgres_copy(dags_dir: Path, target: Path) -> Path:
    """A copy of dags/ whose demo config points at the PostgreSQL connection (and nothing else changes)."""
    shutil.copytree(dags_dir, target, ignore=shutil.ignore_patterns("data", "__pycache__"))
    config_file = target / "configs" / f"{DEMO_DAG_ID}.yml"
    text = config_file.read_text()
    warehouse = next(line for line in text.splitlines() if line.startswith("warehouse:"))
    config_file.write_text(text.replace(warehouse, f"warehouse: {{conn_id: {DEMO_POSTGRES_CONN_ID}}}"))
    return target


def _duck_query(con: Any) -> Query:
    return lambda sql, params: con.execute(sql, list(params)).fetchall()


def _pg_query(con: Any) -> Query:
    return lambda sql, params: [tuple(r) for r in con.execute(sql.replace("?", "%s"), list(params)).fetchall()]


def print_summary(query: Query, d: Dialect, final_schema: str, resolution_schema: str) -> None:
    print("\nFinal tables:")
    tables = query(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = ? ORDER BY table_name", [final_schema]
    )
    for (table,) in tables:
        count = query(f"SELECT count(*) FROM {d.table(final_schema, table)}", [])
        print(f"  {final_schema}.{table:<28} {count[0][0] if count else 0:>8} rows")
    persons = d.table(final_schema, "nexus_persons")
    top = query(f"SELECT id, sources FROM {persons} WHERE NOT is_hub ORDER BY length(sources) DESC, id LIMIT 1", [])
    if top:
        entity, sources = top[0]
        print(f"\nOne person seen across sources ({sources}): {entity}")
        identifiers = query(
            f"SELECT identifier_type, identifier_value FROM {d.table(final_schema, 'nexus_entity_identifiers')} "
            "WHERE entity_id = ? ORDER BY identifier_type, identifier_value",
            [entity],
        )
        for identifier_type, value in identifiers:
            print(f"  {identifier_type:<20} {value}")
    log = d.table(resolution_schema, "nexus_resolution_log")
    merges = query(
        f"SELECT entity_type, previous_entity_id, entity_id, count(*) FROM {log} WHERE reason = 'merged' "
        "GROUP BY entity_type, previous_entity_id, entity_id ORDER BY count(*) DESC, entity_id LIMIT 5",
        [],
    )
    total = query(f"SELECT count(DISTINCT previous_entity_id) FROM {log} WHERE reason = 'merged'", [])
    print(f"\nMerges in the resolution log: {total[0][0] if total else 0} entities merged into others; largest:")
    for entity_type, loser, survivor, moved in merges:
        print(f"  {entity_type}: {loser} -> {survivor} ({moved} identifiers re-pointed)")
