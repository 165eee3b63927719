"""The final layer of one increment, replayed on the same warehouse state by two code revisions.

The final task of an incremental run is a small share of the pipeline, so a change to it drowns
in the noise of two whole benchmark runs. This replays only that task: from a copy of the
warehouse taken just before it (`bench_pipeline.py --incremental --copy-before-final`), each
repetition makes a fresh copy per revision and runs `build_final` in a fresh subprocess, A and
B interleaved (A B, then B A, ...) so a drift of the machine's load hits both alike. It reports
wall seconds per run, the ratio B / A per repetition and its median, the statements slower than
--slow, and whether both revisions wrote the same final tables (a digest of every row, computed
after the timing).

    .venv/bin/python bench/bench_pipeline.py --engine postgres --incremental --persons 1000000 \\
        --vacuum-between --copy-before-final --out /tmp/inc.json
    .venv/bin/python bench/bench_final_replay.py --engine postgres \\
        --warehouse nexus_bench_incremental_1000000_<pid>_before_final --code HEAD~1 --code tree

--warehouse is a PostgreSQL database on the server of --pg-uri (copied with CREATE DATABASE ...
TEMPLATE, dropped afterwards) or a DuckDB file (copied next to itself, removed afterwards).
--code as in bench_pipeline.py: a git revision (extracted with git archive) or `tree`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_pipeline as bp  # the bench's own helpers: snapshots, PG URIs, timing


def table_digests(wh: Any, schema: str) -> dict[str, str]:
    """Per final table: row count and a digest of its rows in a canonical order."""
    out = {}
    for table in sorted(wh.tables(schema)):
        relation = wh.dialect.table(schema, table)
        row_text = "CAST(t AS VARCHAR)" if wh.dialect.name == "duckdb" else "t::text"
        sql = (
            f"SELECT count(*), md5(COALESCE(string_agg(h, ',' ORDER BY h), '')) "
            f"FROM (SELECT md5({row_text}) AS h FROM {relation} AS t) AS rows"
        )
        rows, digest = wh.fetchone(sql)
        out[table] = f"{rows} rows {digest}"
    return out


def child(args: argparse.Namespace) -> int:
    """One build_final over one copy, with the product code of args.src."""
    logging.basicConfig(level=logging.WARNING)
    bp.use_source(args.src)
    bp.import_product()
    logging.getLogger("airflow_provider_nexus").setLevel(logging.WARNING)
    from airflow_provider_nexus.layers.common import RunContext
    from airflow_provider_nexus.layers.final import build_final

    workdir = Path(tempfile.mkdtemp(prefix="nexus_replay_"))
    try:
        config = bp.bench_config(workdir, workdir, args.engine)
        recorder = bp._Recorder(args.slow)
        pipeline = bp.Pipeline(config, args.copy, recorder, args.engine)
        run = RunContext(run_id="bench_inc", now=datetime.fromisoformat(args.now))
        recorder.task = "final"
        started = time.perf_counter()
        with pipeline.warehouse("final") as wh:
            summary = build_final(wh, pipeline.engine, config.entity_types, config.schemas, run)
        seconds = time.perf_counter() - started
        slow = list(recorder.slow)  # (not the digest's statements below)
        with pipeline.warehouse("digest") as wh:
            digests = table_digests(wh, config.schemas.final)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    result = {
        "seconds": round(seconds, 3),
        "mode": summary.get("mode"),
        "reason": summary.get("reason"),
        "slow": slow,
        "digests": digests,
    }
    Path(args.child_out).write_text(json.dumps(result, default=str), encoding="utf-8")
    return 0


def fresh_copy(args: argparse.Namespace, label: str) -> str:
    if args.engine == "duckdb":
        copy = f"{args.warehouse}.replay_{label}.duckdb"
        shutil.copyfile(args.warehouse, copy)
        if Path(f"{args.warehouse}.wal").exists():
            shutil.copyfile(f"{args.warehouse}.wal", f"{copy}.wal")
        return copy
    import psycopg

    name = f"nexus_replay_{label}_{os.getpid()}"
    with psycopg.connect(args.pg_uri, autocommit=True) as con:
        con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        con.execute(f'CREATE DATABASE "{name}" TEMPLATE "{args.warehouse}"')
    return bp.pg_db_uri(args.pg_uri, name)


def drop_copy(args: argparse.Namespace, copy: str) -> None:
    if args.engine == "duckdb":
        for path in (copy, f"{copy}.wal"):
            Path(path).unlink(missing_ok=True)
    else:
        bp.pg_drop(args.pg_uri, copy.rsplit("/", 1)[1])


def replay(args: argparse.Namespace, src: str | None, label: str, now: str) -> dict[str, Any]:
    copy = fresh_copy(args, label)
    fd, out = tempfile.mkstemp(suffix=".json", prefix="nexus_replay_child_")
    os.close(fd)
    cmd = [sys.executable, __file__, "--child-out", out, "--copy", copy, "--now", now]
    cmd += ["--engine", args.engine, "--slow", str(args.slow), "--warehouse", args.warehouse]
    if src:
        cmd += ["--src", src]
    try:
        subprocess.run(cmd, check=True)
        return dict(json.loads(Path(out).read_text(encoding="utf-8")))
    finally:
        os.unlink(out)
        drop_copy(args, copy)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engine", choices=bp.ENGINES, required=True)
    parser.add_argument("--warehouse", required=True, help="PostgreSQL database name or DuckDB file")
    parser.add_argument("--code", action="append", help="two revisions, A then B (a git revision or 'tree')")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--slow", type=float, default=0.3, help="record statements slower than this (s)")
    parser.add_argument("--pg-uri", default=bp.PG_URI)
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    parser.add_argument("--child-out", help=argparse.SUPPRESS)
    parser.add_argument("--copy", help=argparse.SUPPRESS)
    parser.add_argument("--now", help=argparse.SUPPRESS)
    parser.add_argument("--src", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child_out:
        return child(args)
    if not args.code or len(args.code) != 2:
        parser.error("give --code twice: revision A, then revision B")

    info = bp.machine()
    versions = [bp.code_version(c) for c in args.code]
    print(f"machine: {info}\ncode A: {versions[0]}\ncode B: {versions[1]}", flush=True)
    sources = [bp.snapshot(c, None) for c in args.code]
    # one run time for every replay, so both revisions stamp the same rows alike
    now = datetime.now(UTC).replace(microsecond=0, tzinfo=None).isoformat()
    runs: dict[str, list[dict[str, Any]]] = {"A": [], "B": []}
    try:
        for rep in range(args.repeat):
            order = ["A", "B"] if rep % 2 == 0 else ["B", "A"]
            for label in order:
                src = sources[0 if label == "A" else 1]
                res = replay(args, src, label.lower(), now)
                runs[label].append(res)
                print(f"  rep {rep + 1} {label}: {res['seconds']:.2f} s ({res['mode']})", flush=True)
    finally:
        for src in sources:
            if src:
                shutil.rmtree(src, ignore_errors=True)
    ratios = [b["seconds"] / a["seconds"] for a, b in zip(runs["A"], runs["B"], strict=True)]
    same = all(r["digests"] == runs["A"][0]["digests"] for r in runs["A"] + runs["B"])
    print(f"\nA seconds: {[r['seconds'] for r in runs['A']]}")
    print(f"B seconds: {[r['seconds'] for r in runs['B']]}")
    print(f"B / A per repetition: {[round(r, 3) for r in ratios]}, median {statistics.median(ratios):.3f}")
    print(f"final tables identical across all runs: {same}")
    if not same:
        for label in ("A", "B"):
            print(f"  {label}: {runs[label][0]['digests']}")
    for label in ("A", "B"):
        print(f"slow statements of {label}'s last run:")
        for s in sorted(runs[label][-1]["slow"], key=lambda s: -s["seconds"]):
            print(f"  {s['seconds']:>6.2f}s {s['sql'][:150]}")
    if args.out:
        payload = {"machine": info, "code": versions, "warehouse": args.warehouse, "engine": args.engine}
        payload |= {"runs": runs, "ratios": ratios, "identical": same}
        args.out.write_text(json.dumps(payload, indent=2, default=str), encoding="utf-8")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
