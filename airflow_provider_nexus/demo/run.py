"""`nexus demo`: deliver the demo batches one by one and run the demo DAG through real Airflow.

On DuckDB by default; `--postgres URI` runs the same pipeline on a PostgreSQL database and
`--connection` on any warehouse given as an Airflow connection (URI or JSON, e.g. Snowflake), each
with a copy of the config that differs only in its connection.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from airflow_provider_nexus.warehouse import Warehouse

DEMO_DAG_ID = "nexus_demo"
DEMO_CONN_ID = "nexus_duckdb"
DEMO_POSTGRES_CONN_ID = "nexus_postgres"
DEMO_WAREHOUSE_CONN_ID = "nexus_warehouse"


def run_demo(
    dags_dir: Path,
    workdir: Path,
    persons: int,
    batches: int,
    seed: int,
    postgres_uri: str | None = None,
    connection: str | None = None,
) -> int:
    """Deliver the batches and run the demo DAG after each; print what it built.

    ``connection`` is an Airflow connection as a URI or JSON (what an ``AIRFLOW_CONN_*`` variable
    holds); the demo lands the billing rows and reads the summary through it.
    """
    from airflow_provider_nexus.airflow_run import airflow_env, run_dag_test
    from airflow_provider_nexus.config import load_config
    from airflow_provider_nexus.demo.generator import DemoSpec, WarehouseConnection, batch_times, write_batch

    config_file = dags_dir / "configs" / f"{DEMO_DAG_ID}.yml"
    if not config_file.is_file():
        print(f"error: {config_file} not found; run from the repository root or pass --dags-dir", file=sys.stderr)
        return 2
    # A demo always starts from nothing, so its output is the same on every machine.
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    landing: Path | str | WarehouseConnection
    hint: str | None  # how to look at the result; {final} is the final schema
    if connection:
        dags_dir = _connection_copy(dags_dir, workdir / "dags", DEMO_WAREHOUSE_CONN_ID)
        conn_id, conn = DEMO_WAREHOUSE_CONN_ID, connection
        landing = WarehouseConnection(conn_id)
        where = f"the warehouse of connection {conn_id!r}"
        hint = None  # written once the warehouse's quoting is known
    elif postgres_uri:
        dags_dir = _connection_copy(dags_dir, workdir / "dags", DEMO_POSTGRES_CONN_ID)
        conn_id, conn = DEMO_POSTGRES_CONN_ID, postgres_uri.replace("postgresql://", "postgres://", 1)
        landing = postgres_uri
        where = f"PostgreSQL at {postgres_uri}"
        hint = f"psql {postgres_uri} -c 'SELECT * FROM {{final}}.nexus_persons LIMIT 5'"
    else:
        duckdb_path = (workdir / "nexus_demo.duckdb").resolve()
        conn_id, conn = DEMO_CONN_ID, json.dumps({"conn_type": "duckdb", "host": str(duckdb_path)})
        landing = duckdb_path
        where = f"DuckDB at {duckdb_path}"
        hint = (
            f"python -c \"import duckdb; print(duckdb.connect('{duckdb_path}', read_only=True)"
            ".sql('FROM {final}.nexus_persons LIMIT 5'))\""
        )
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
        with _connection_env(conn_id, conn):
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
    # every engine is read back the way its tasks read it: through the connection's own hook
    from airflow_provider_nexus.warehouse import Warehouse

    with _connection_env(conn_id, conn), Warehouse.open(conn_id) as wh:
        print_summary(wh, config.schemas.final, config.schemas.resolution)
        persons_table = wh.dialect.table(config.schemas.final, "nexus_persons")
    if hint is None:
        print(f"\nQuery it yourself in the warehouse:  SELECT * FROM {persons_table} LIMIT 5")
    else:
        print(f"\nQuery it yourself:  {hint.replace('{final}', config.schemas.final)}")
    return 0


def _connection_copy(dags_dir: Path, target: Path, conn_id: str) -> Path:
    """A copy of dags/ whose demo config points at `conn_id` (and nothing else changes)."""
    shutil.copytree(dags_dir, target, ignore=shutil.ignore_patterns("data", "__pycache__"))
    config_file = target / "configs" / f"{DEMO_DAG_ID}.yml"
    text = config_file.read_text()
    warehouse = next(line for line in text.splitlines() if line.startswith("warehouse:"))
    config_file.write_text(text.replace(warehouse, f"warehouse: {{conn_id: {conn_id}}}"))
    return target


@contextmanager
def _connection_env(conn_id: str, conn: str) -> Iterator[None]:
    """Make the demo's connection visible to hooks in this process, as Airflow's workers see it."""
    name = f"AIRFLOW_CONN_{conn_id.upper()}"
    before = os.environ.get(name)
    os.environ[name] = conn
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before


def print_summary(wh: Warehouse, final_schema: str, resolution_schema: str) -> None:
    query, d = wh.fetchall, wh.dialect
    print("\nFinal tables:")
    for table in wh.tables(final_schema):
        if table.startswith("nexus__"):  # the final layer's own bookkeeping (edge entities)
            continue
        count = query(f"SELECT count(*) FROM {d.table(final_schema, table)}")
        print(f"  {final_schema}.{table:<28} {count[0][0] if count else 0:>8} rows")
    persons = d.table(final_schema, "nexus_persons")
    top = query(f"SELECT id, sources FROM {persons} WHERE NOT is_hub ORDER BY length(sources) DESC, id LIMIT 1")
    if top:
        entity, sources = top[0]
        print(f"\nOne person seen across sources ({sources}): {entity}")
        identifiers = query(
            f"SELECT identifier_type, identifier_value FROM {d.table(final_schema, 'nexus_entity_identifiers')} "
            f"WHERE entity_id = {d.literal(entity)} ORDER BY identifier_type, identifier_value"
        )
        for identifier_type, value in identifiers:
            print(f"  {identifier_type:<20} {value}")
    log = d.table(resolution_schema, "nexus_resolution_log")
    merges = query(
        f"SELECT entity_type, previous_entity_id, entity_id, count(*) FROM {log} WHERE reason = 'merged' "
        "GROUP BY entity_type, previous_entity_id, entity_id ORDER BY count(*) DESC, entity_id LIMIT 5"
    )
    total = query(f"SELECT count(DISTINCT previous_entity_id) FROM {log} WHERE reason = 'merged'")
    print(f"\nMerges in the resolution log: {total[0][0] if total else 0} entities merged into others; largest:")
    for entity_type, loser, survivor, moved in merges:
        print(f"  {entity_type}: {loser} -> {survivor} ({moved} identifiers re-pointed)")
