"""End-to-end benchmark of the Nexus layers on DuckDB and PostgreSQL, without Airflow.

For each size the demo data is generated once, in a fresh subprocess, into a temporary folder
(timed separately, not part of the pipeline figures). Then each engine, in its own fresh
subprocess (peak RSS only grows), gets the same files and rows and runs every layer in order, the
way the demo DAG runs it: raw per source, source per source, core, resolution per entity type,
final. Each task opens its own connection, like an operator does.

    .venv/bin/python bench/bench_pipeline.py --persons 10000 100000 1000000 --out /tmp/pipeline.json
    .venv/bin/python bench/bench_pipeline.py --engine both --persons 100000 1000000 --timeout 1800 \\
        --out /tmp/pg_vs_duckdb.json
    .venv/bin/python bench/bench_pipeline.py --engine both --incremental --persons 1000000 --out /tmp/incremental.json

--engine duckdb|postgres|both: DuckDB is one file per size; PostgreSQL is a fresh database per
size and mode on the server of --pg-uri (`CREATE DATABASE nexus_bench_<mode>_<persons>_<pid>`,
dropped WITH (FORCE) at the end unless --keep), one psycopg 3 connection per task (autocommit,
UTC, as PostgresDialect.connect sets it up). --timeout S stops an engine's subprocess after S
seconds and reports the tasks it finished (PostgreSQL's resolution does not finish at 100k
persons with the product code of 2026-11-23). Delivery: the generated files are hard-linked into the
engine's data folder; the billing rows land in the engine's own landing.* tables (one transaction
per delivery). "CPU s" is the bench process (all threads: DuckDB's work, and on PostgreSQL the
Python-side file parsing of the raw layer); "server CPU" is the PostgreSQL backend of each task
read from /proc (parallel query workers not included). Compare wall seconds within one run.

--incremental: per engine, one run over batches 0..B-2 (the base, a full build from empty), then
batch B-1 is delivered and a second run processes it; the report gives increment / base per
layer. The generator's later batches are larger than average (re-deliveries, late identifies),
so with the default --batches 600 the last batch is about 1% of the base's rows.

--vacuum-between (PostgreSQL): before every run after the first, `VACUUM ANALYZE` the whole
database, untimed and reported apart. A live server's autovacuum does that between scheduled runs
after a load of millions of rows; this machine's server runs with autovacuum off, so without the
flag the increment runs on a base without column statistics (bench_resolution.py vacuums
its loaded rows for the same reason).

Statements slower than --slow seconds (default 1 s) are recorded with their task.

--copy-before-final (with --incremental, implies --keep): copy the warehouse just before the
increment's final task (a PostgreSQL database `<db>_before_final`, or `warehouse_before_final.duckdb`
beside the DuckDB file), so bench_final_replay.py can time the final layer of two code revisions
on the same state.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import yaml

REPO = Path(__file__).resolve().parent.parent
#: The demo config of the code under test (the snapshot's, with --code REV).
DEMO_CONFIG = REPO / "dags" / "configs" / "nexus_demo.yml"

LAYERS = ("raw", "source", "core", "resolution", "final")
ENGINES = ("duckdb", "postgres")
PG_URI = "postgresql://postgres@127.0.0.1:5432/postgres"


# -- environment --------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    import airflow

    mem_kb = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "ram_gib": round(mem_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "duckdb": duckdb.__version__,
        "airflow": airflow.__version__,
        "psycopg": _psycopg_version(),
        "postgres": _pg_server_version(),
        "platform": platform.platform(),
    }


def _psycopg_version() -> str:
    try:
        import psycopg

        return psycopg.__version__
    except ImportError:
        return ""


def _pg_server_version() -> str:
    try:
        import psycopg

        with psycopg.connect(PG_URI, connect_timeout=5) as con:
            return str(con.execute("SHOW server_version").fetchone()[0])
    except Exception:
        return ""


# -- PostgreSQL databases and data delivery ---------------------------------------------------------


def pg_settings(uri: str) -> dict[str, str]:
    """The server settings that matter most for these figures (informational)."""
    try:
        import psycopg

        names = (
            "server_version",
            "shared_buffers",
            "work_mem",
            "maintenance_work_mem",
            "effective_cache_size",
            "max_parallel_workers_per_gather",
            "synchronous_commit",
            "jit",
        )
        with psycopg.connect(uri, connect_timeout=5) as con:
            return {n: str(con.execute(f"SHOW {n}").fetchone()[0]) for n in names}
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}


def pg_db_uri(admin_uri: str, name: str) -> str:
    return admin_uri.rsplit("/", 1)[0] + f"/{name}"


def pg_create(admin_uri: str, name: str) -> str:
    """A fresh database `name` on the server of `admin_uri`; returns its URI."""
    import psycopg

    with psycopg.connect(admin_uri, autocommit=True) as con:
        con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        con.execute(f'CREATE DATABASE "{name}"')
    return pg_db_uri(admin_uri, name)


def pg_drop(admin_uri: str, name: str) -> None:
    import psycopg

    with psycopg.connect(admin_uri, autocommit=True) as con:
        con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def pg_vacuum_analyze(uri: str) -> None:
    """What autovacuum would have done between two scheduled runs: visibility map and statistics."""
    import psycopg

    with psycopg.connect(uri, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")


def pg_size_mb(uri: str) -> float:
    import psycopg

    with psycopg.connect(uri) as con:
        return round(con.execute("SELECT pg_database_size(current_database())").fetchone()[0] / 2**20, 1)


def pg_db_name(persons: int, mode: str) -> str:
    """Unique per run (the parent's pid), so two benchmark runs never share a database."""
    return f"nexus_bench_{mode}_{persons}_{os.getpid()}"


def backend_cpu_seconds(pid: int) -> float:
    """user + system CPU of one server process (/proc/<pid>/stat; same host only, else 0)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    # fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


#: Delivery parts per mode: which batches each part holds. `full`: one part with every batch.
#: `incremental`: the base (batches 0..B-2) and the increment (batch B-1).
def parts_of(mode: str, batches: int) -> dict[str, list[int]]:
    if mode == "incremental":
        return {"base": list(range(batches - 1)), "inc": [batches - 1]}
    return {"full": list(range(batches))}


#: The demo's file tables: raw table -> (folder, file stem, writer in the generator).
FILE_TABLES = {
    "crm__contacts": ("crm", "contacts", "_write_csv", "csv"),
    "crm__companies": ("crm", "companies", "_write_csv", "csv"),
    "product__events": ("product", "events", "_write_ndjson", "ndjson"),
    "support__tickets": ("support", "tickets", "_write_parquet", "parquet"),
}


def generate(spec: Any, parts: dict[str, list[int]], gen_dir: Path) -> dict[str, dict[str, int]]:
    """Each part's rows: one file per file table under gen_dir/<part>/data, one Parquet per landing table.

    A part holds the rows of its batches exactly as the generator makes them (its own chunks and
    writers), in one file per table named `<stem>_<part>.<ext>` (the demo's globs match it). So
    the base of --incremental is one delivery of 599 batches' rows, not 599 files: the raw layer's
    per-file cost does not inflate the full build that the increment is compared with.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from airflow_provider_nexus.demo import generator

    counts: dict[str, dict[str, int]] = {}
    world = generator._world(spec)
    for part, batches in parts.items():
        folder = gen_dir / part
        totals: dict[str, int] = {}
        for name, (sub, stem, writer, ext) in FILE_TABLES.items():
            (folder / "data" / sub).mkdir(parents=True, exist_ok=True)
            chunks = (c for k in batches for c in generator._chunks(world, name, k))
            totals[name] = getattr(generator, writer)(chunks, folder / "data" / sub / f"{stem}_{part}.{ext}")
        for name in ("billing_customers", "billing_invoices"):
            raw_name = name.replace("_", "__", 1)
            chunks = [c for k in batches for c in generator._chunks(world, raw_name, k)]
            table = pa.concat_tables(chunks, promote_options="default")
            pq.write_table(table, folder / f"{name}.parquet")
            totals[raw_name] = table.num_rows
        counts[part] = totals
    return counts


def deliver(gen_dir: Path, part: str, data_dir: Path, location: Path | str) -> None:
    """One part of a generate() folder to one engine: hard-link its files, land its billing rows."""
    import pyarrow.parquet as pq

    from airflow_provider_nexus.demo.generator import _land, _land_postgres

    src = gen_dir / part / "data"
    for path in sorted(src.rglob("*")):
        if path.is_file():
            dest = data_dir / path.relative_to(src)
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.link(path, dest)
    tables = {
        name: iter([pq.read_table(gen_dir / part / f"{name}.parquet")])
        for name in ("billing_customers", "billing_invoices")
    }
    if isinstance(location, str):
        _land_postgres(location, tables)
    else:
        _land(location, tables)


class Target:
    """One engine's warehouse for one size: a DuckDB file or a fresh PostgreSQL database."""

    def __init__(self, engine: str, folder: Path, db_name: str, admin_uri: str) -> None:
        self.engine = engine
        self.admin_uri = admin_uri
        self.dir = folder
        self.dir.mkdir(parents=True)
        self.data_dir = self.dir / "data"
        self.data_dir.mkdir()
        self.db_name = db_name
        if engine == "duckdb":
            self.location: Path | str = self.dir / "warehouse.duckdb"
        else:
            self.location = pg_create(admin_uri, db_name)

    def size_mb(self) -> float:
        if self.engine == "duckdb":
            wal = Path(f"{self.location}.wal")
            extra = wal.stat().st_size if wal.exists() else 0
            return round((Path(self.location).stat().st_size + extra) / 2**20, 1)
        return pg_size_mb(str(self.location))

    def copy(self, suffix: str) -> str:
        """A copy of the warehouse as it is now (no connection may be open): a PostgreSQL
        database made from this one as its template, or a copy of the DuckDB file."""
        if self.engine == "duckdb":
            copy = self.dir / f"warehouse_{suffix}.duckdb"
            shutil.copyfile(self.location, copy)
            wal = Path(f"{self.location}.wal")
            if wal.exists():
                shutil.copyfile(wal, f"{copy}.wal")
            return str(copy)
        name = f"{self.db_name}_{suffix}"
        import psycopg

        with psycopg.connect(self.admin_uri, autocommit=True) as con:
            con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            con.execute(f'CREATE DATABASE "{name}" TEMPLATE "{self.db_name}"')
        return name

    def close(self, keep: bool) -> None:
        if self.engine == "postgres" and not keep:
            pg_drop(self.admin_uri, self.db_name)


def git(*args: str) -> str:
    try:
        return subprocess.run(
            ["git", *args],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def code_version(code: str) -> dict[str, Any]:
    """Which product code ran: a committed revision, or the working tree with its edited files."""
    if code != "tree":
        return {"rev": code, "commit": git("rev-parse", "--short", code)}
    return {
        "rev": "working tree",
        "head": git("rev-parse", "--short", "HEAD"),
        "dirty": git("status", "--short", "--", "airflow_provider_nexus", "sql", "dags").splitlines(),
    }


def snapshot(code: str, parent: str | None) -> str | None:
    """Extract a committed revision (git archive) so edits in the working tree cannot leak in."""
    if code == "tree":
        return None
    target = tempfile.mkdtemp(prefix="nexus_bench_src_", dir=parent)
    archive = subprocess.run(["git", "archive", code], cwd=REPO, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", target], input=archive, check=True)
    return target


def use_source(src: str | None) -> None:
    """Import the product from `src` (a snapshot) instead of the editable install."""
    global DEMO_CONFIG
    if src:
        sys.path.insert(0, src)
        DEMO_CONFIG = Path(src) / "dags" / "configs" / "nexus_demo.yml"


def import_product() -> None:
    """Import every module the run uses up front, so one consistent snapshot of the code runs."""
    import airflow_provider_nexus.layers.core
    import airflow_provider_nexus.layers.final
    import airflow_provider_nexus.layers.raw
    import airflow_provider_nexus.layers.source
    import airflow_provider_nexus.operators.resolution
    import airflow_provider_nexus.resolution
    import airflow_provider_nexus.resolution.noise
    import airflow_provider_nexus.state
    import airflow_provider_nexus.templates  # noqa: F401

    origin = Path(sys.modules["airflow_provider_nexus"].__file__).resolve().parent.parent
    print(f"    product code from {origin}", file=sys.stderr, flush=True)


def cpu_seconds() -> float:
    """User + system CPU of this process, all threads (DuckDB's worker threads included)."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def peak_rss_mb() -> float:
    # Linux reports ru_maxrss in KiB.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- the pipeline ---------------------------------------------------------------------------------


def bench_config(data_dir: Path, workdir: Path, engine: str = "duckdb") -> Any:
    """The demo config with data_dir and template_dirs made absolute (a temp copy of the YAML)."""
    from airflow_provider_nexus.config import load_config

    raw = yaml.safe_load(DEMO_CONFIG.read_text(encoding="utf-8"))
    raw.setdefault("warehouse", {})["dialect"] = engine
    raw["data_dir"] = str(data_dir.resolve())
    raw["template_dirs"] = [str((DEMO_CONFIG.parent / d).resolve()) for d in raw.get("template_dirs", [])]
    path = workdir / "nexus_bench.yml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return load_config(path)


class _Recorder:
    """Collects statements slower than a threshold, tagged with the task that ran them."""

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold
        self.task = ""
        self.slow: list[dict[str, Any]] = []


def _timed_warehouse_class(recorder: _Recorder) -> type:
    from airflow_provider_nexus.warehouse import Warehouse

    class TimedWarehouse(Warehouse):
        def _run(self, sql: str, params: Any) -> Any:  # benchmark-only wrapper
            started = time.perf_counter()
            cur = super()._run(sql, params)
            took = time.perf_counter() - started
            if took >= recorder.threshold:
                recorder.slow.append(
                    {
                        "task": recorder.task,
                        "seconds": round(took, 2),
                        "sql": " ".join(sql.split())[:400],
                    }
                )
            return cur

    return TimedWarehouse


class Pipeline:
    def __init__(self, config: Any, db_path: Path | str, recorder: _Recorder, engine: str = "duckdb") -> None:
        from airflow_provider_nexus.templates import TemplateEngine

        self.config = config
        self.db_path = db_path
        self.engine_name = engine
        if engine == "postgres":
            from airflow_provider_nexus.dialects.postgres import PostgresDialect

            self.dialect = PostgresDialect()
        else:
            from airflow_provider_nexus.dialects.duckdb import DuckDBDialect

            self.dialect = DuckDBDialect()
        self.engine = TemplateEngine(self.dialect, config.resolved_template_dirs())
        self.recorder = recorder
        self.wh_class = _timed_warehouse_class(recorder)
        #: PostgreSQL only: CPU seconds of the task's server backend (parallel workers not included).
        self.server_cpu: dict[str, float] = {}
        #: Called after each task with (run_id, task seconds so far, server CPU so far).
        self.progress: Any = None
        #: Called (untimed, every connection closed) just before the final task of a run.
        self.before_final: Any = None

    @contextmanager
    def warehouse(self, task: str) -> Any:
        """One connection per task, as an operator opens one through its hook."""
        if self.engine_name == "postgres":
            import psycopg

            # What PostgresDialect.connect does with the hook's connection.
            con = psycopg.connect(str(self.db_path), autocommit=True)
            con.execute("SET TIME ZONE 'UTC'")
            pid = con.info.backend_pid
        else:
            con = duckdb.connect(str(self.db_path))
            con.execute("SET TimeZone = 'UTC'")
            pid = 0
        self.recorder.task = task
        server0 = backend_cpu_seconds(pid) if pid else 0.0
        try:
            yield self.wh_class(self.dialect, con)
        finally:
            if pid:
                self.server_cpu[task] = round(backend_cpu_seconds(pid) - server0, 3)
            con.close()

    def run_once(self, run_id: str) -> dict[str, Any]:
        """One DAG run: every task in order; seconds per task and per layer."""
        from airflow_provider_nexus.layers.common import RunContext, utcnow
        from airflow_provider_nexus.layers.core import build_core
        from airflow_provider_nexus.layers.final import build_final
        from airflow_provider_nexus.layers.raw import load_source
        from airflow_provider_nexus.layers.source import build_source
        from airflow_provider_nexus.operators.resolution import RESOLUTION_SCOPE
        from airflow_provider_nexus.resolution import pending_change, resolve_entity_type
        from airflow_provider_nexus.resolution.noise import noise_rules_from_config
        from airflow_provider_nexus.state import StateStore

        cfg = self.config
        self.server_cpu = {}
        tasks: dict[str, float] = {}
        details: dict[str, Any] = {}

        cpu: dict[str, float] = {}
        load: list[float] = [os.getloadavg()[0]]

        def timed(task: str, fn: Any) -> Any:
            cpu0 = cpu_seconds()
            started = time.perf_counter()
            with self.warehouse(task) as wh:
                out = fn(wh)
            tasks[task] = round(time.perf_counter() - started, 3)
            cpu[task] = round(cpu_seconds() - cpu0, 3)
            load.append(os.getloadavg()[0])
            if self.progress:
                self.progress(run_id, dict(tasks), dict(self.server_cpu))
            return out

        windows = {}
        for source in cfg.sources:
            run = RunContext(run_id=run_id, now=utcnow())
            windows[source.name] = timed(
                f"raw.{source.name}",
                lambda wh, s=source, r=run: load_source(
                    wh,
                    s,
                    cfg.schemas,
                    cfg.resolved_data_dir(),
                    cfg.incremental.lookback,
                    r,
                ),
            )
        details["raw_rows"] = {k: w["rows"] for k, w in windows.items()}
        from airflow_provider_nexus.layers.common import from_iso

        for source in cfg.sources:
            run = RunContext(run_id=run_id, now=utcnow())
            high = from_iso(windows[source.name].get("high"))
            timed(
                f"source.{source.name}",
                lambda wh, s=source, r=run, h=high: build_source(
                    wh, self.engine, s, cfg.entity_types, cfg.schemas, r, h
                ),
            )
        run = RunContext(run_id=run_id, now=utcnow())
        core = timed(
            "core",
            lambda wh: build_core(wh, self.engine, cfg.sources, cfg.entity_types, cfg.schemas, run),
        )
        details["core_written"] = {m: v["written"] for m, v in core["models"].items()}

        resolution: dict[str, Any] = {}
        for entity_type in cfg.entity_types:
            run = RunContext(run_id=run_id, now=utcnow())

            def resolve(wh: Any, et: str = entity_type, r: Any = run) -> Any:
                # What NexusResolutionOperator.execute does, minus Airflow.
                layer = f"resolution:{et}"
                state = StateStore(wh, cfg.schemas.core)
                state.ensure()
                since = state.get(RESOLUTION_SCOPE, layer)
                pending, high = pending_change(wh, cfg.schemas.core, et, since)
                if not pending:
                    return {"entity_type": et, "new": 0}
                with wh.transaction():
                    summary = resolve_entity_type(
                        wh,
                        entity_type=et,
                        id_prefix=cfg.id_prefix(et),
                        core_schema=cfg.schemas.core,
                        resolution_schema=cfg.schemas.resolution,
                        run_id=r.run_id,
                        resolved_at=r.now,
                        noise=noise_rules_from_config(cfg.resolution.noise),
                        max_rounds=cfg.resolution.max_rounds,
                        full_refresh=False,
                        since=since,
                    )
                    if high is not None:
                        state.set(RESOLUTION_SCOPE, layer, high, r.run_id, r.now)
                return summary.to_dict()

            out = timed(f"resolution.{entity_type}", resolve)
            resolution[entity_type] = {
                k: out.get(k)
                for k in (
                    "identifiers",
                    "entities",
                    "born",
                    "merged",
                    "edges",
                    "rounds",
                    "hubs",
                    "blocked",
                    "batch_rows",
                    "mode",
                    "fallback_reason",
                    "touched",
                    "rows_per_round",
                )
            }
            resolution[entity_type]["seconds_per_round"] = out.get("seconds_per_round")
        details["resolution"] = resolution
        if self.before_final is not None:
            self.before_final(run_id)
        run = RunContext(run_id=run_id, now=utcnow())
        final = timed(
            "final",
            lambda wh: build_final(wh, self.engine, cfg.entity_types, cfg.schemas, run),
        )
        details["final_rows"] = final["tables"]

        layers = {layer: 0.0 for layer in LAYERS}
        layers_cpu = {layer: 0.0 for layer in LAYERS}
        layers_server = {layer: 0.0 for layer in LAYERS}
        for task, secs in tasks.items():
            layers[task.split(".", 1)[0]] += secs
            layers_cpu[task.split(".", 1)[0]] += cpu[task]
            layers_server[task.split(".", 1)[0]] += self.server_cpu.get(task, 0.0)
        return {
            "tasks": tasks,
            "layers": {k: round(v, 3) for k, v in layers.items()},
            "total": round(sum(tasks.values()), 3),
            "tasks_cpu": cpu,
            "layers_cpu": {k: round(v, 3) for k, v in layers_cpu.items()},
            "total_cpu": round(sum(cpu.values()), 3),
            "tasks_server_cpu": dict(self.server_cpu),
            "layers_server_cpu": {k: round(v, 3) for k, v in layers_server.items()},
            "total_server_cpu": round(sum(self.server_cpu.values()), 3),
            "loadavg_1m": {
                "min": min(load),
                "max": max(load),
                "mean": round(sum(load) / len(load), 2),
            },
            "details": details,
        }


# -- child processes: generate once per size, then one process per engine -----------------------


def engines_of(engine: str) -> tuple[str, ...]:
    return ENGINES if engine == "both" else (engine,)


def layer_ratios(num: dict[str, Any], den: dict[str, Any], digits: int = 2) -> dict[str, Any]:
    """num / den wall seconds per layer and in total (e.g. PostgreSQL / DuckDB, increment / base)."""
    out: dict[str, Any] = {
        layer: (round(num["layers"][layer] / den["layers"][layer], digits) if den["layers"][layer] else None)
        for layer in LAYERS
    }
    out["total"] = round(num["total"] / den["total"], digits) if den["total"] else None
    return out


def child_generate(args: argparse.Namespace) -> dict[str, Any]:
    from airflow_provider_nexus.demo.generator import DemoSpec

    spec = DemoSpec(persons=args.persons[0], batches=args.batches, seed=args.seed)
    started = time.perf_counter()
    counts = generate(spec, parts_of(args.mode, args.batches), Path(args.gen_dir))
    return {
        "generated_rows": counts,
        "generated_total": {part: sum(c.values()) for part, c in counts.items()},
        "generate_seconds": round(time.perf_counter() - started, 2),
    }


def child_run(args: argparse.Namespace) -> dict[str, Any]:
    """One engine, one size: deliver each part in order and run the pipeline after each."""
    engine, persons = args.engine, args.persons[0]
    gen_dir = Path(args.gen_dir)
    target = Target(engine, gen_dir.parent / engine, args.pg_db, args.pg_uri)
    out: dict[str, Any] = {"engine": engine, "runs": {}, "deliver_seconds": {}, "db_mb": {}}
    try:
        recorder = _Recorder(args.slow)
        pipeline = Pipeline(bench_config(target.data_dir, target.dir, engine), target.location, recorder, engine)
        partial = Path(f"{args.child_out}.partial")

        def progress(run_id: str, tasks: dict[str, float], server_cpu: dict[str, float]) -> None:
            # What a parent that stops this process at --timeout reports: the tasks that finished.
            state = {"run": run_id, "tasks": tasks, "server_cpu": server_cpu, "slow": recorder.slow}
            partial.write_text(json.dumps(state, default=str), encoding="utf-8")

        pipeline.progress = progress
        if args.copy_before_final:

            def copy_before_final(run_id: str) -> None:
                if run_id == "bench_inc":
                    out["before_final_copy"] = target.copy("before_final")
                    print(
                        f"    copied the warehouse before the final task: {out['before_final_copy']}", file=sys.stderr
                    )

            pipeline.before_final = copy_before_final
        for i, part in enumerate(parts_of(args.mode, args.batches)):
            if i and args.vacuum_between and engine == "postgres":
                started = time.perf_counter()
                pg_vacuum_analyze(str(target.location))
                out.setdefault("vacuum_seconds", {})[part] = round(time.perf_counter() - started, 2)
            started = time.perf_counter()
            deliver(gen_dir, part, target.data_dir, target.location)
            out["deliver_seconds"][part] = round(time.perf_counter() - started, 2)
            before = len(recorder.slow)
            print(f"    {engine} {persons}: running the layers over part {part!r}", file=sys.stderr, flush=True)
            result = pipeline.run_once(f"bench_{part}")
            result["slow_statements"] = recorder.slow[before:]
            result["peak_rss_mb"] = round(peak_rss_mb(), 1)
            out["runs"][part] = result
            out["db_mb"][part] = target.size_mb()
            print(
                f"    {engine} {persons} {part}: total {result['total']:.1f}s {result['layers']}",
                file=sys.stderr,
                flush=True,
            )
    finally:
        target.close(args.keep)
    return out


def child(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING)
    use_source(args.src)
    import_product()  # (importing Airflow also configures logging, so quieten it afterwards)

    # The layers log a line per table at INFO; slow statements are recorded by the wrapper instead.
    logging.getLogger("airflow_provider_nexus").setLevel(logging.WARNING)
    result = child_generate(args) if args.phase == "generate" else child_run(args)
    result["peak_rss_mb"] = round(peak_rss_mb(), 1)
    result["code_dir"] = str(Path(sys.modules["airflow_provider_nexus"].__file__).resolve().parent.parent)
    Path(args.child_out).write_text(json.dumps(result, indent=2, default=str), encoding="utf-8")
    return 0


# -- parent ---------------------------------------------------------------------------------------


def spawn(phase: str, engine: str, persons: int, gen_dir: Path, args: argparse.Namespace) -> dict[str, Any]:
    fd, out = tempfile.mkstemp(suffix=".json", prefix="nexus_bench_child_")
    os.close(fd)
    cmd = [
        sys.executable,
        __file__,
        "--child-out",
        out,
        "--phase",
        phase,
        "--engine",
        engine,
        "--mode",
        args.mode,
        "--gen-dir",
        str(gen_dir),
        "--persons",
        str(persons),
        "--batches",
        str(args.batches),
        "--seed",
        str(args.seed),
        "--slow",
        str(args.slow),
        "--pg-uri",
        args.pg_uri,
        "--pg-db",
        pg_db_name(persons, args.mode),
    ]
    if args.src:
        cmd += ["--src", args.src]
    if args.keep:
        cmd.append("--keep")
    if args.vacuum_between:
        cmd.append("--vacuum-between")
    if args.copy_before_final:
        cmd.append("--copy-before-final")
    started = time.perf_counter()
    timeout = args.timeout if phase == "run" else None
    try:
        returncode = subprocess.run(cmd, check=False, timeout=timeout).returncode
    except subprocess.TimeoutExpired:  # (the child is killed; its PG backend ends with the DROP)
        returncode = None
    wall = time.perf_counter() - started
    partial = Path(f"{out}.partial")
    if returncode != 0:
        failed: dict[str, Any] = {
            "error": f"{phase} {engine} child exited with {returncode}"
            if returncode is not None
            else f"{phase} {engine} stopped at --timeout {timeout:.0f} s",
            "wall_seconds": round(wall, 1),
        }
        if partial.exists():
            failed["finished_tasks"] = json.loads(partial.read_text(encoding="utf-8"))
            partial.unlink()
        os.unlink(out)
        return failed
    partial.unlink(missing_ok=True)
    result = json.loads(Path(out).read_text(encoding="utf-8"))
    os.unlink(out)
    result["wall_seconds"] = round(wall, 1)
    return result


def run_size(persons: int, args: argparse.Namespace) -> dict[str, Any]:
    """Generate once, then each engine in its own subprocess over the same files and rows."""
    workdir = Path(tempfile.mkdtemp(prefix=f"nexus_bench_{persons}_", dir=args.workdir))
    gen_dir = workdir / "gen"
    out: dict[str, Any] = {"persons": persons, "batches": args.batches, "mode": args.mode, "engines": {}}
    try:
        print(f"--- {persons} persons: generating (fresh subprocess)", flush=True)
        gen = spawn("generate", "duckdb", persons, gen_dir, args)
        out["generate"] = gen
        if "error" in gen:
            out["error"] = gen["error"]
            return out
        print(f"    generated {gen['generated_total']} rows in {gen['generate_seconds']:.1f}s", flush=True)
        for engine in engines_of(args.engine):
            print(f"--- {persons} persons: {engine} (fresh subprocess)", flush=True)
            res = spawn("run", engine, persons, gen_dir, args)
            if engine == "postgres" and not args.keep:
                pg_drop(args.pg_uri, pg_db_name(persons, args.mode))  # also after a crashed child
            out["engines"][engine] = res
            if "error" in res:
                out["error"] = res["error"]
                continue
            if "before_final_copy" in res:
                print(f"    {engine}: warehouse before the increment's final task: {res['before_final_copy']}")
            for part, r in res["runs"].items():
                print(
                    f"    {engine} {part}: total {r['total']:.1f}s, peak RSS {r['peak_rss_mb']:.0f} MB, "
                    f"DB {res['db_mb'][part]:.0f} MB, layers {r['layers']}",
                    flush=True,
                )
                for s in sorted(r["slow_statements"], key=lambda s: -s["seconds"])[:8]:
                    print(f"      slow {s['seconds']:>6.1f}s [{s['task']}] {s['sql'][:150]}", flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    ok = {e: r for e, r in out["engines"].items() if "error" not in r}
    if len(ok) == 2:
        out["ratio_postgres_to_duckdb"] = {
            part: layer_ratios(ok["postgres"]["runs"][part], ok["duckdb"]["runs"][part])
            for part in ok["duckdb"]["runs"]
        }
    if args.mode == "incremental":
        out["ratio_inc_to_base"] = {
            e: layer_ratios(r["runs"]["inc"], r["runs"]["base"], 3) for e, r in ok.items() if "inc" in r["runs"]
        }
    return out


def print_tables(results: list[dict[str, Any]]) -> None:
    cols = [*LAYERS, "total", "CPU s", "srv CPU", "RSS MB", "DB MB", "load"]
    print(
        "wall seconds per layer (CPU s = user+sys of the bench process, all threads; srv CPU = the "
        "PostgreSQL backends of the tasks; load = mean 1-min load average)"
    )
    print(f"{'persons':>9} {'engine':>8} {'run':>5} {'raw rows':>10} " + " ".join(f"{c:>8}" for c in cols))
    for r in results:
        if "error" in r and not r["engines"]:
            print(f"{r['persons']:>9} {r['error']}")
            continue
        rows = r["generate"]["generated_total"]
        for engine, e in r["engines"].items():
            if "error" in e:
                print(f"{r['persons']:>9} {engine:>8} {e['error']}")
                done = e.get("finished_tasks")
                if done:
                    print(f"{'':>9} {'':>8} finished in run {done['run']}: {done['tasks']}")
                continue
            for part, run in e["runs"].items():
                vals = [
                    *(run["layers"][lyr] for lyr in LAYERS),
                    run["total"],
                    run["total_cpu"],
                    run["total_server_cpu"],
                    run["peak_rss_mb"],
                    e["db_mb"][part],
                    run["loadavg_1m"]["mean"],
                ]
                print(
                    f"{r['persons']:>9} {engine:>8} {part:>5} {rows[part]:>10} " + " ".join(f"{v:>8.1f}" for v in vals)
                )
        for part, rat in r.get("ratio_postgres_to_duckdb", {}).items():
            print(
                f"{r['persons']:>9} {'PG/Duck':>8} {part:>5} {'':>10} "
                + " ".join(f"{rat[k]:>8.2f}" if rat[k] is not None else f"{'-':>8}" for k in (*LAYERS, "total"))
            )
        for engine, rat in r.get("ratio_inc_to_base", {}).items():
            print(
                f"{r['persons']:>9} {engine:>8} {'inc/b':>5} {'':>10} "
                + " ".join(f"{rat[k]:>8.3f}" if rat[k] is not None else f"{'-':>8}" for k in (*LAYERS, "total"))
            )


def scaling(results: list[dict[str, Any]], engine: str) -> list[dict[str, Any]]:
    ok = [
        r["engines"][engine]["runs"]["full"] | {"persons": r["persons"]}
        for r in results
        if "full" in r["engines"].get(engine, {}).get("runs", {})
    ]
    out = []
    for a, b in itertools.pairwise(ok):
        out.append(
            {
                "engine": engine,
                "from": a["persons"],
                "to": b["persons"],
                "data_factor": b["persons"] / a["persons"],
                "ratios": layer_ratios(b, a),
            }
        )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--persons", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--batches", type=int, help="demo batches (default 1; 600 with --incremental)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--engine", choices=(*ENGINES, "both"), default="duckdb")
    parser.add_argument(
        "--incremental",
        action="store_true",
        help="per engine: one run over batches 0..B-2 (the base), then batch B-1 alone (about 1%% at B=600)",
    )
    parser.add_argument("--pg-uri", default=PG_URI, help=f"admin URI of the PostgreSQL server (default {PG_URI})")
    parser.add_argument(
        "--vacuum-between",
        action="store_true",
        help="PostgreSQL: VACUUM ANALYZE the database before each run after the first (untimed), as autovacuum would",
    )
    parser.add_argument(
        "--copy-before-final",
        action="store_true",
        help="with --incremental: copy the warehouse just before the increment's final task "
        "(kept; for bench_final_replay.py)",
    )
    parser.add_argument("--slow", type=float, default=1.0, help="record statements slower than this (s)")
    parser.add_argument(
        "--timeout",
        type=float,
        help="stop an engine's subprocess after this many seconds; the tasks it finished are reported",
    )
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    parser.add_argument("--workdir", help="parent folder of the temp dirs (default: system temp)")
    parser.add_argument("--keep", action="store_true", help="keep the generated data, DuckDB files and PG databases")
    parser.add_argument(
        "--code",
        default="HEAD",
        help="git revision to benchmark, extracted with git archive (default HEAD); 'tree' = the working tree",
    )
    parser.add_argument("--src", help=argparse.SUPPRESS)
    parser.add_argument("--child-out", help=argparse.SUPPRESS)
    parser.add_argument("--phase", choices=("generate", "run"), help=argparse.SUPPRESS)
    parser.add_argument("--mode", choices=("full", "incremental"), help=argparse.SUPPRESS)
    parser.add_argument("--gen-dir", help=argparse.SUPPRESS)
    parser.add_argument("--pg-db", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child_out:
        return child(args)
    args.mode = "incremental" if args.incremental else "full"
    if args.batches is None:
        args.batches = 600 if args.incremental else 1
    if args.incremental and args.batches < 2:
        parser.error("--incremental needs --batches >= 2")
    if args.copy_before_final and not args.incremental:
        parser.error("--copy-before-final needs --incremental")
    args.keep = args.keep or args.copy_before_final  # the copy lives beside the warehouse

    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    info = machine()
    if args.engine != "duckdb":
        info["postgres_settings"] = pg_settings(args.pg_uri)
    print(f"machine: {info}")
    version = code_version(args.code)
    print(f"code: {version}")
    if args.workdir:  # a named workdir may not exist yet: the snapshot and every size go into it
        os.makedirs(args.workdir, exist_ok=True)
    args.src = snapshot(args.code, args.workdir)
    try:
        results = [run_size(p, args) for p in args.persons]
    finally:
        if args.src:
            shutil.rmtree(args.src, ignore_errors=True)
    print()
    print_tables(results)
    scaled = [s for engine in engines_of(args.engine) for s in scaling(results, engine)]
    for s in scaled:
        print(f"wall ratio {s['engine']} {s['to']}/{s['from']} (x{s['data_factor']:.0f} data): {s['ratios']}")
    payload = {
        "kind": args.mode,
        "started": started,
        "machine": info,
        "code": version,
        "argv": sys.argv,
        "results": results,
        "scaling": scaled,
    }
    if args.out:
        args.out.write_text(json.dumps(payload, indent=2, default=str), encoding="utf-8")
        print(f"wrote {args.out}")
    return 0 if all("error" not in r for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
