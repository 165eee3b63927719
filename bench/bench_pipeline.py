"""End-to-end benchmark of the Nexus layers on DuckDB, without Airflow.

For each size the demo data is generated into a temporary folder (timed separately, not part of
the pipeline figures), then every layer runs in order over one DuckDB file, the way the demo DAG
runs it: raw per source, source per source, core, resolution per entity type, final. Each task
opens its own connection, like an operator does. Peak RSS only grows, so every size runs in a
fresh subprocess of this script.

    /root/venv/bin/python bench/bench_pipeline.py --persons 10000 100000 1000000 --out bench/pipeline.json
    /root/venv/bin/python bench/bench_pipeline.py --incremental --persons 1000000 --batches 10 --out bench/incremental.json

Statements slower than --slow seconds (default 1 s) are recorded with their layer.
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
        "platform": platform.platform(),
    }


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


def bench_config(data_dir: Path, workdir: Path) -> Any:
    """The demo config with data_dir and template_dirs made absolute (a temp copy of the YAML)."""
    from airflow_provider_nexus.config import load_config

    raw = yaml.safe_load(DEMO_CONFIG.read_text(encoding="utf-8"))
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
    def __init__(self, config: Any, db_path: Path, recorder: _Recorder) -> None:
        from airflow_provider_nexus.dialects.duckdb import DuckDBDialect
        from airflow_provider_nexus.templates import TemplateEngine

        self.config = config
        self.db_path = db_path
        self.dialect = DuckDBDialect()
        self.engine = TemplateEngine(self.dialect, config.resolved_template_dirs())
        self.recorder = recorder
        self.wh_class = _timed_warehouse_class(recorder)

    @contextmanager
    def warehouse(self, task: str) -> Any:
        """One connection per task, as an operator opens one through its hook."""
        con = duckdb.connect(str(self.db_path))
        con.execute("SET TimeZone = 'UTC'")
        self.recorder.task = task
        try:
            yield self.wh_class(self.dialect, con)
        finally:
            con.close()

    def run_once(self, run_id: str) -> dict[str, Any]:
        """One DAG run: every task in order; seconds per task and per layer."""
        from airflow_provider_nexus.layers.common import RunContext, utcnow
        from airflow_provider_nexus.layers.core import build_core
        from airflow_provider_nexus.layers.final import build_final
        from airflow_provider_nexus.layers.raw import load_source
        from airflow_provider_nexus.layers.source import build_source
        from airflow_provider_nexus.operators.resolution import RESOLUTION_SCOPE
        from airflow_provider_nexus.resolution import resolve_entity_type
        from airflow_provider_nexus.resolution.noise import noise_rules_from_config
        from airflow_provider_nexus.state import StateStore

        cfg = self.config
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
                d = wh.dialect
                layer = f"resolution:{et}"
                state = StateStore(wh, cfg.schemas.core)
                state.ensure()
                since = state.get(RESOLUTION_SCOPE, layer)
                high = wh.scalar(
                    f"SELECT max(_loaded_at) FROM {d.table(cfg.schemas.core, 'nexus_identifiers')} "
                    f"WHERE entity_type = {d.literal(et)}"
                )
                if high is not None and since is not None and high <= since:
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
                )
            }
            resolution[entity_type]["seconds_per_round"] = out.get("seconds_per_round")
        details["resolution"] = resolution
        run = RunContext(run_id=run_id, now=utcnow())
        final = timed(
            "final",
            lambda wh: build_final(wh, self.engine, cfg.entity_types, cfg.schemas, run),
        )
        details["final_rows"] = final["tables"]

        layers = {layer: 0.0 for layer in LAYERS}
        layers_cpu = {layer: 0.0 for layer in LAYERS}
        for task, secs in tasks.items():
            layers[task.split(".", 1)[0]] += secs
            layers_cpu[task.split(".", 1)[0]] += cpu[task]
        return {
            "tasks": tasks,
            "layers": {k: round(v, 3) for k, v in layers.items()},
            "total": round(sum(tasks.values()), 3),
            "tasks_cpu": cpu,
            "layers_cpu": {k: round(v, 3) for k, v in layers_cpu.items()},
            "total_cpu": round(sum(cpu.values()), 3),
            "loadavg_1m": {
                "min": min(load),
                "max": max(load),
                "mean": round(sum(load) / len(load), 2),
            },
            "details": details,
        }


# -- one size (child process) ---------------------------------------------------------------------


def run_full(persons: int, batches: int, seed: int, workdir: Path, slow: float) -> dict[str, Any]:
    from airflow_provider_nexus.demo.generator import DemoSpec, write_all

    data_dir = workdir / "data"
    db_path = workdir / "warehouse.duckdb"
    spec = DemoSpec(persons=persons, batches=batches, seed=seed)
    started = time.perf_counter()
    generated = write_all(spec, data_dir, db_path)
    gen_seconds = round(time.perf_counter() - started, 2)
    rss_after_gen = peak_rss_mb()
    recorder = _Recorder(slow)
    pipeline = Pipeline(bench_config(data_dir, workdir), db_path, recorder)
    result = pipeline.run_once("bench_full")
    result.update(
        persons=persons,
        batches=batches,
        generated_rows=generated,
        generated_total=sum(generated.values()),
        generate_seconds=gen_seconds,
        peak_rss_mb_after_generate=round(rss_after_gen, 1),
        peak_rss_mb=round(peak_rss_mb(), 1),
        db_mb=round(db_path.stat().st_size / 2**20, 1),
        slow_statements=recorder.slow,
    )
    return result


def run_incremental(persons: int, batches: int, seed: int, workdir: Path, slow: float) -> dict[str, Any]:
    """Deliver batches 0..B-2 one run each, then time batch B-1 alone; compare with one full build."""
    from airflow_provider_nexus.demo.generator import DemoSpec, write_all, write_batch

    spec = DemoSpec(persons=persons, batches=batches, seed=seed)
    out: dict[str, Any] = {"persons": persons, "batches": batches}

    # Reference: every batch delivered, one run over all of it.
    full_dir = workdir / "full"
    full_dir.mkdir()
    started = time.perf_counter()
    write_all(spec, full_dir / "data", full_dir / "warehouse.duckdb")
    out["generate_seconds_full"] = round(time.perf_counter() - started, 2)
    rec_full = _Recorder(slow)
    full = Pipeline(
        bench_config(full_dir / "data", full_dir),
        full_dir / "warehouse.duckdb",
        rec_full,
    ).run_once("full")
    out["full"] = full
    out["full"]["slow_statements"] = rec_full.slow
    shutil.rmtree(full_dir)

    inc_dir = workdir / "inc"
    inc_dir.mkdir()
    db_path = inc_dir / "warehouse.duckdb"
    rec = _Recorder(slow)
    pipeline = Pipeline(bench_config(inc_dir / "data", inc_dir), db_path, rec)
    runs = []
    for k in range(batches):
        write_batch(spec, k, inc_dir / "data", db_path)
        before = len(rec.slow)
        result = pipeline.run_once(f"batch_{k:04d}")
        result["slow_statements"] = rec.slow[before:]
        runs.append({"batch": k, "total": result["total"], "layers": result["layers"]})
        print(
            f"  batch {k}: {result['total']:.1f}s {result['layers']}",
            file=sys.stderr,
            flush=True,
        )
    out["batch_runs"] = runs
    out["last_batch"] = result
    out["ratio_last_batch_to_full"] = round(result["total"] / full["total"], 3)
    out["ratio_last_batch_to_full_per_layer"] = {
        layer: (round(result["layers"][layer] / full["layers"][layer], 3) if full["layers"][layer] else None)
        for layer in LAYERS
    }
    return out


def child(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING)
    use_source(args.src)
    import_product()  # (importing Airflow also configures logging, so quieten it afterwards)

    # The layers log a line per table at INFO; slow statements are recorded by the wrapper instead.
    logging.getLogger("airflow_provider_nexus").setLevel(logging.WARNING)
    workdir = Path(tempfile.mkdtemp(prefix="nexus_bench_", dir=args.workdir))
    try:
        if args.incremental:
            result = run_incremental(args.persons[0], args.batches, args.seed, workdir, args.slow)
        else:
            result = run_full(args.persons[0], args.batches, args.seed, workdir, args.slow)
        result["peak_rss_mb"] = round(peak_rss_mb(), 1)
        result["code_dir"] = str(Path(sys.modules["airflow_provider_nexus"].__file__).resolve().parent.parent)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    Path(args.child_out).write_text(json.dumps(result, indent=2, default=str), encoding="utf-8")
    return 0


# -- parent ---------------------------------------------------------------------------------------


def spawn(argv_extra: list[str], persons: int, args: argparse.Namespace) -> dict[str, Any]:
    fd, out = tempfile.mkstemp(suffix=".json", prefix="nexus_bench_child_")
    os.close(fd)
    cmd = [
        sys.executable,
        __file__,
        "--child-out",
        out,
        "--persons",
        str(persons),
        "--batches",
        str(args.batches),
        "--seed",
        str(args.seed),
        "--slow",
        str(args.slow),
        *argv_extra,
    ]
    if args.workdir:
        cmd += ["--workdir", args.workdir]
    if args.src:
        cmd += ["--src", args.src]
    if args.keep:
        cmd.append("--keep")
    started = time.perf_counter()
    proc = subprocess.run(cmd, check=False)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        return {
            "persons": persons,
            "error": f"child exited with {proc.returncode}",
            "wall_seconds": round(wall, 1),
        }
    result = json.loads(Path(out).read_text(encoding="utf-8"))
    os.unlink(out)
    result["wall_seconds"] = round(wall, 1)
    return result


def print_full_table(results: list[dict[str, Any]]) -> None:
    cols = ["gen", *LAYERS, "total", "CPU s", "RSS MB", "load"]
    print("wall seconds per layer (CPU s = user+sys of all threads; load = mean 1-min load average)")
    print(f"{'persons':>9} {'raw rows':>10} " + " ".join(f"{c:>9}" for c in cols))
    for r in results:
        if "error" in r:
            print(f"{r['persons']:>9} {r['error']}")
            continue
        vals = [
            r["generate_seconds"],
            *(r["layers"][lyr] for lyr in LAYERS),
            r["total"],
            r["total_cpu"],
            r["peak_rss_mb"],
            r["loadavg_1m"]["mean"],
        ]
        print(f"{r['persons']:>9} {r['generated_total']:>10} " + " ".join(f"{v:>9.1f}" for v in vals))


def scaling(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    ok = [r for r in results if "error" not in r]
    out = []
    for a, b in itertools.pairwise(ok):
        factor = b["persons"] / a["persons"]
        ratios = {
            layer: (round(b["layers"][layer] / a["layers"][layer], 2) if a["layers"][layer] else None)
            for layer in LAYERS
        }
        for et in b["tasks"]:
            if et.startswith("resolution.") and a["tasks"].get(et):
                ratios[et] = round(b["tasks"][et] / a["tasks"][et], 2)
        ratios["total"] = round(b["total"] / a["total"], 2)
        cpu = {
            layer: (round(b["layers_cpu"][layer] / a["layers_cpu"][layer], 2) if a["layers_cpu"][layer] else None)
            for layer in LAYERS
        }
        cpu["total"] = round(b["total_cpu"] / a["total_cpu"], 2)
        out.append(
            {
                "from": a["persons"],
                "to": b["persons"],
                "data_factor": factor,
                "ratios": ratios,
                "cpu_ratios": cpu,
            }
        )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--persons", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--batches", type=int, default=1)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--incremental",
        action="store_true",
        help="build batches 0..B-2, time batch B-1 vs a full build",
    )
    parser.add_argument("--slow", type=float, default=1.0, help="record statements slower than this (s)")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    parser.add_argument("--workdir", help="parent folder of the temp dirs (default: system temp)")
    parser.add_argument("--keep", action="store_true", help="keep the generated data and DuckDB files")
    parser.add_argument(
        "--code",
        default="HEAD",
        help="git revision to benchmark, extracted with git archive (default HEAD); 'tree' = the working tree",
    )
    parser.add_argument("--src", help=argparse.SUPPRESS)
    parser.add_argument("--child-out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child_out:
        return child(args)

    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    info = machine()
    print(f"machine: {info}")
    version = code_version(args.code)
    print(f"code: {version}")
    args.src = snapshot(args.code, args.workdir)
    if args.incremental:
        if args.batches < 2:
            parser.error("--incremental needs --batches >= 2")
        results = [spawn(["--incremental"], p, args) for p in args.persons]
        for r in results:
            if "error" in r:
                print(f"{r['persons']}: {r['error']}")
                continue
            last, full = r["last_batch"], r["full"]
            print(
                f"persons={r['persons']} batches={r['batches']}: full build {full['total']:.1f}s, "
                f"batch {r['batches'] - 1} alone {last['total']:.1f}s, ratio {r['ratio_last_batch_to_full']:.3f}"
            )
            print(f"  full layers:       {full['layers']}")
            print(f"  last batch layers: {last['layers']}")
        payload = {
            "kind": "incremental",
            "started": started,
            "machine": info,
            "code": version,
            "argv": sys.argv,
            "results": results,
        }
    else:
        results = []
        for p in args.persons:
            print(f"--- {p} persons (fresh subprocess)", flush=True)
            r = spawn([], p, args)
            results.append(r)
            if "error" not in r:
                print(
                    f"    total {r['total']:.1f}s, peak RSS {r['peak_rss_mb']:.0f} MB, layers {r['layers']}",
                    flush=True,
                )
                for s in sorted(r["slow_statements"], key=lambda s: -s["seconds"])[:8]:
                    print(f"    slow {s['seconds']:>6.1f}s [{s['task']}] {s['sql'][:150]}")
        print()
        print_full_table(results)
        ratios = scaling(results)
        for s in ratios:
            print(f"wall ratio {s['to']}/{s['from']} (x{s['data_factor']:.0f} data): {s['ratios']}")
            print(f"CPU  ratio {s['to']}/{s['from']} (x{s['data_factor']:.0f} data): {s['cpu_ratios']}")
        payload = {
            "kind": "full",
            "started": started,
            "machine": info,
            "code": version,
            "argv": sys.argv,
            "results": results,
            "scaling": ratios,
        }
    if args.src:
        shutil.rmtree(args.src, ignore_errors=True)
    if args.out:
        args.out.write_text(json.dumps(payload, indent=2, default=str), encoding="utf-8")
        print(f"wrote {args.out}")
    return 0 if all("error" not in r for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
