"""Benchmark of identity resolution on DuckDB against an in-memory scipy reference.

For each size a seeded, vectorised generator (numpy for the graph, DuckDB for the strings) writes
identifier rows with the full core column list into ``nexus_core.nexus_identifiers`` of a fresh
DuckDB file. Every phase then runs in its own subprocess (peak RSS, ``ru_maxrss``, only grows):

* ``ref``: read the rows into memory (pyarrow -> pandas), factorize identifiers and groups to
  integers, build a sparse graph with a star per ``(source, edge_id)`` group and run
  ``scipy.sparse.csgraph.connected_components``;
* ``full``: ``resolve_entity_type(since=None)`` over the same rows;
* ``inc``: append a batch of ~1% new rows with a later ``_loaded_at`` (not timed) and call
  ``resolve_entity_type(since=<previous high>)``;
* the time of ``full`` and ``inc`` includes closing the DuckDB connection, where DuckDB checkpoints
  what the commits left in its WAL (``close_seconds``; the call alone is ``resolve_seconds``);
* ``verify`` (sizes up to --verify-max): the Nexus partition equals the reference, after ``full``
  and again after ``inc``.

    .venv/bin/python bench/bench_resolution.py --persons 100000 1000000 3000000 \\
        --out bench/resolution.json

Shape per person: 1-2 emails, 0-1 phone, 0-1 user id, 1+Poisson(1.6) anonymous ids, linked by a
random tree of two-identifier groups (5% of links missing, so some people are fragmented), extra
repeat events, a CRM record grouping the person's email/phone/user id; 0.2% of people are chained
into chains of 500; a few shared phones glue thousands of people into giant components; 0.8
stand-alone anonymous ids per person are singletons. About 13 rows and 5.8 distinct identifiers
per person. No noise rules (the reference has none).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import duckdb
import numpy as np

T0 = dt.datetime(2024, 1, 1)
T1 = T0 + dt.timedelta(days=1)
SOURCES = ["web", "app", "crm", "shop"]
TYPES = ["email", "phone", "user_id", "anonymous_id"]
CHAIN_LEN = 500
CORE_DDL = """CREATE TABLE IF NOT EXISTS nexus_core.nexus_identifiers (
    id VARCHAR, event_id VARCHAR, edge_id VARCHAR, entity_type VARCHAR, identifier_type VARCHAR,
    identifier_value VARCHAR, identifier_value_raw VARCHAR, role VARCHAR, source VARCHAR,
    occurred_at TIMESTAMP, _ingested_at TIMESTAMP, _loaded_at TIMESTAMP)"""


def rss_mib() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


# -- generator --------------------------------------------------------------------------------


class Gen:
    """Integer graph of identifiers and groups; strings are made by DuckDB on insert."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.next_ident = 0
        self.next_group = 0
        self.row_ident: list[np.ndarray] = []
        self.row_group: list[np.ndarray] = []
        self.ident_type = np.zeros(0, dtype=np.int8)

    def new_idents(self, types: np.ndarray) -> np.ndarray:
        ids = np.arange(self.next_ident, self.next_ident + len(types), dtype=np.int64)
        self.next_ident += len(types)
        self.ident_type = np.concatenate([self.ident_type, types.astype(np.int8)])
        return ids

    def groups(self, members: list[np.ndarray]) -> None:
        """Groups given column-wise: members[j][g] is the j-th member of group g (-1: none)."""
        n = len(members[0])
        gids = np.arange(self.next_group, self.next_group + n, dtype=np.int64)
        self.next_group += n
        for col in members:
            keep = col >= 0
            self.row_ident.append(col[keep])
            self.row_group.append(gids[keep])

    def singletons(self, idents: np.ndarray, no_edge: float = 0.5) -> None:
        """One row each; some without an edge id, the others alone in their group."""
        loose = self.rng.random(len(idents)) < no_edge
        self.row_ident.append(idents[loose])
        self.row_group.append(np.full(int(loose.sum()), -1, dtype=np.int64))
        self.groups([idents[~loose]])

    def persons(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """n persons with their identifiers linked; returns (first ident, ident count) per person."""
        rng = self.rng
        counts = np.stack(
            [
                1 + rng.binomial(1, 0.4, n),
                rng.binomial(1, 0.5, n),
                rng.binomial(1, 0.5, n),
                1 + rng.poisson(1.6, n),
            ]
        )  # (4, n)
        k = counts.sum(axis=0)
        total = int(k.sum())
        starts_local = np.concatenate([[0], np.cumsum(k)[:-1]])
        pos = np.arange(total) - np.repeat(starts_local, k)
        bounds = np.cumsum(counts, axis=0)  # (4, n)
        person = np.repeat(np.arange(n), k)
        types = (pos >= bounds[0][person]).astype(np.int8) + (pos >= bounds[1][person]) + (pos >= bounds[2][person])
        ids = self.new_idents(types)
        first = ids[0] + starts_local
        # a random tree per person: each identifier links to an earlier one (5% of links missing)
        child = pos > 0
        partner = first[person[child]] + np.floor(rng.random(int(child.sum())) * pos[child]).astype(np.int64)
        c_ids = ids[child]
        keep = rng.random(len(c_ids)) >= 0.05
        self.groups([c_ids[keep], partner[keep]])
        # repeat events: two random identifiers of the person in a new group
        reps = rng.poisson(1.6, n)
        rp = np.repeat(np.arange(n), reps)
        a = first[rp] + np.floor(rng.random(len(rp)) * k[rp]).astype(np.int64)
        b = first[rp] + np.floor(rng.random(len(rp)) * k[rp]).astype(np.int64)
        self.groups([a, np.where(a == b, -1, b)])
        # a CRM record: email, phone and user id of people who have a phone or a user id
        crm = (counts[1] + counts[2]) > 0
        e = first[crm]
        ph = np.where(counts[1][crm] > 0, e + counts[0][crm], -1)
        uid = np.where(counts[2][crm] > 0, e + counts[0][crm] + counts[1][crm], -1)
        self.groups([e, ph, uid])
        return first, k

    def base(self, n: int) -> None:
        rng = self.rng
        first, k = self.persons(n)
        # chains: 0.2% of people linked one after another in chains of CHAIN_LEN
        chained = rng.permutation(n)[: max(2, n // 500)]
        a, b = (
            first[chained[:-1]],
            first[chained[1:]] + k[chained[1:]] - 1,
        )  # first -> last anon id
        links = np.arange(len(a)) % CHAIN_LEN != CHAIN_LEN - 1
        self.groups([a[links], b[links]])
        # giant components: a few shared phones, each seen with many people
        n_glue, per_glue = 5, max(2, min(5000, n // 200))
        glue = self.new_idents(np.full(n_glue, 1, dtype=np.int8))
        who = rng.integers(0, n, n_glue * per_glue)
        self.groups([np.repeat(glue, per_glue), first[who]])
        # stand-alone anonymous ids
        self.singletons(self.new_idents(np.full(int(0.8 * n), 3, dtype=np.int8)))
        self.base_idents = self.next_ident

    def batch(self, n: int) -> None:
        """About 1% of the base rows: new people, new events of existing people, merges."""
        rng = self.rng
        self.row_ident, self.row_group = [], []
        self.persons(max(1, n // 200))
        m = max(1, n // 40)
        old = rng.integers(0, self.base_idents, m)
        kind = rng.random(m)
        fresh = self.new_idents(np.full(m, 3, dtype=np.int8))
        other = rng.integers(0, self.base_idents, m)
        partner = np.where(kind < 0.7, fresh, other)  # 30% link two existing identifiers (merges)
        self.groups([old, partner])
        self.singletons(self.new_idents(np.full(max(1, n // 60), 3, dtype=np.int8)))

    def write(self, conn: duckdb.DuckDBPyConnection, loaded_at: dt.datetime, row_offset: int) -> int:
        import pyarrow as pa

        ident = np.concatenate(self.row_ident)
        group = np.concatenate(self.row_group)
        order = self.rng.permutation(len(ident))
        ident, group = ident[order], group[order]
        n = len(ident)
        tbl = pa.table(
            {
                "rn": np.arange(row_offset, row_offset + n, dtype=np.int64),
                "ident": ident,
                "itype": self.ident_type[ident],
                "grp": group,
                # a group's rows share one source (a hash of the group number)
                "src": np.where(
                    group >= 0,
                    ((group * 2654435761) >> 7) % len(SOURCES),
                    self.rng.integers(0, len(SOURCES), n),
                ).astype(np.int8),
                "occ": self.rng.integers(0, 365 * 86400, n),
            }
        )
        conn.register("gen_rows", tbl)
        value = """CASE itype
    WHEN 0 THEN 'user' || ident || '@mail' || (ident % 17) || '.example.com'
    WHEN 1 THEN '+1' || (2000000000 + (ident * 7919) % 7999999999)
    WHEN 2 THEN 'U' || lpad(CAST(ident AS VARCHAR), 10, '0')
    ELSE md5(CAST(ident AS VARCHAR)) END"""
        conn.execute(
            f"""INSERT INTO nexus_core.nexus_identifiers
SELECT 'r' || rn, 'ev' || CASE WHEN grp >= 0 THEN grp ELSE -rn END,
    CASE WHEN grp >= 0 THEN 'g' || grp END, 'person', list_extract({TYPES!r}, itype + 1),
    v, upper(v), 'participant', list_extract({SOURCES!r}, src + 1),
    TIMESTAMP '2023-01-01' + to_seconds(occ), TIMESTAMP '2023-01-01' + to_seconds(occ),
    CAST('{loaded_at.isoformat(sep=" ")}' AS TIMESTAMP)
FROM (SELECT *, {value} AS v FROM gen_rows)"""
        )
        conn.unregister("gen_rows")
        return n


def phase_gen(db: str, persons: int, seed: int) -> dict[str, Any]:
    started = time.perf_counter()
    g = Gen(seed)
    g.base(persons)
    conn = duckdb.connect(db)
    conn.execute("CREATE SCHEMA IF NOT EXISTS nexus_core")
    conn.execute(CORE_DDL)
    rows = g.write(conn, T0, 0)
    distinct = conn.execute(
        "SELECT count(*) FROM (SELECT DISTINCT identifier_type, identifier_value FROM nexus_core.nexus_identifiers)"
    ).fetchone()[0]
    conn.close()
    # the batch is generated now (same seed stream) but written by the inc phase
    np.savez(
        db + ".batch.npz",
        next_ident=g.next_ident,
        next_group=g.next_group,
        base_idents=g.base_idents,
        rows=rows,
        state=np.frombuffer(json.dumps(g.rng.bit_generator.state).encode(), dtype=np.uint8),
    )
    np.save(db + ".types.npy", g.ident_type)
    return {
        "rows": rows,
        "identifiers": int(distinct),
        "seconds": round(time.perf_counter() - started, 2),
    }


def append_batch(db: str, persons: int) -> int:
    saved = np.load(db + ".batch.npz")
    g = Gen(0)
    g.rng.bit_generator.state = json.loads(bytes(saved["state"]).decode())
    g.next_ident, g.next_group = int(saved["next_ident"]), int(saved["next_group"])
    g.base_idents = int(saved["base_idents"])
    g.ident_type = np.load(db + ".types.npy")
    g.batch(persons)
    conn = duckdb.connect(db)
    n = g.write(conn, T1, int(saved["rows"]))
    conn.close()
    return n


# -- reference ----------------------------------------------------------------------------------


def reference_labels(
    conn: duckdb.DuckDBPyConnection,
) -> tuple[Any, np.ndarray, dict[str, float]]:
    """(identifiers as a pandas frame, component label per identifier, timings)."""
    import pandas as pd
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    t: dict[str, float] = {}
    started = time.perf_counter()
    res = conn.execute(
        "SELECT identifier_type, identifier_value, source, edge_id FROM nexus_core.nexus_identifiers "
        "WHERE entity_type = 'person' AND identifier_type IS NOT NULL AND identifier_value IS NOT NULL "
        "AND identifier_value <> ''"
    )
    tbl = res.to_arrow_table() if hasattr(res, "to_arrow_table") else res.fetch_arrow_table()
    df = tbl.to_pandas()
    t["read"] = time.perf_counter() - started
    mark = time.perf_counter()
    tcode, _ = pd.factorize(df["identifier_type"])
    vcode, _ = pd.factorize(df["identifier_value"])
    node, _ = pd.factorize(tcode.astype(np.int64) * (int(vcode.max()) + 1) + vcode)
    has = df["edge_id"].notna().to_numpy()
    scode, _ = pd.factorize(df["source"].fillna(""))
    ecode, _ = pd.factorize(df["edge_id"])
    gkey = scode.astype(np.int64) * (int(ecode.max()) + 2) + ecode
    gid, _ = pd.factorize(gkey[has])
    n = int(node.max()) + 1
    t["factorize"] = time.perf_counter() - mark
    mark = time.perf_counter()
    members = node[has]
    rep = np.full(int(gid.max()) + 1 if len(gid) else 0, n, dtype=np.int64)
    np.minimum.at(rep, gid, members)
    src, dst = rep[gid], members
    keep = src != dst
    graph = coo_matrix((np.ones(int(keep.sum()), dtype=np.int8), (src[keep], dst[keep])), shape=(n, n)).tocsr()
    t["graph"] = time.perf_counter() - mark
    mark = time.perf_counter()
    n_comp, labels = connected_components(graph, directed=False)
    t["components"] = time.perf_counter() - mark
    t["total"] = time.perf_counter() - started
    first = pd.Series(np.arange(len(node))).groupby(node).first().to_numpy()
    idents = pd.DataFrame(
        {
            "identifier_type": df["identifier_type"].to_numpy()[first],
            "identifier_value": df["identifier_value"].to_numpy()[first],
            "ref_label": labels,
        }
    )
    t = {k: round(v, 2) for k, v in t.items()}
    t["components_found"] = int(n_comp)
    t["nodes"] = n
    t["edges"] = int(keep.sum())
    return idents, labels, t


def phase_ref(db: str) -> dict[str, Any]:
    conn = duckdb.connect(db, read_only=True)
    _, _, t = reference_labels(conn)
    conn.close()
    return {**t, "rss_mib": rss_mib()}


def phase_verify(db: str) -> dict[str, Any]:
    conn = duckdb.connect(db, read_only=True)
    idents, _, _ = reference_labels(conn)
    conn.register("ref_labels", idents)
    n_ref, n_map, n_join, a, b, ab = conn.execute(
        """SELECT (SELECT count(*) FROM ref_labels), (SELECT count(*) FROM nexus_resolution.nexus_person_identity_map),
    count(*), count(DISTINCT r.ref_label), count(DISTINCT m.entity_id), count(DISTINCT (r.ref_label, m.entity_id))
FROM ref_labels r JOIN nexus_resolution.nexus_person_identity_map m
    ON m.identifier_type = r.identifier_type AND m.identifier_value = r.identifier_value"""
    ).fetchone()
    conn.close()
    same = n_ref == n_map == n_join and a == b == ab
    return {
        "identifiers": n_ref,
        "components": a,
        "entities": b,
        "partition_equal": bool(same),
    }


# -- Nexus ---------------------------------------------------------------------------------------


def nexus(db: str, since: dt.datetime | None, run_id: str, threads: int | None) -> dict[str, Any]:
    from airflow_provider_nexus.dialects.duckdb import DuckDBDialect
    from airflow_provider_nexus.warehouse import Warehouse

    conn = duckdb.connect(db)
    if threads:
        conn.execute(f"SET threads = {threads}")
    memory_limit = os.environ.get("NEXUS_BENCH_MEMORY_LIMIT")
    if memory_limit:  # what a DuckDB connection's `memory_limit` extra sets through DuckDBHook
        conn.execute(f"SET memory_limit = '{memory_limit}'")
    out = resolve_timed(Warehouse(DuckDBDialect(), conn), run_id, since)
    # The close is timed too: DuckDB checkpoints there what the run's commits left in the WAL.
    started = time.perf_counter()
    conn.close()
    out["close_seconds"] = round(time.perf_counter() - started, 2)
    out["resolve_seconds"] = out["wall_seconds"]
    out["wall_seconds"] = round(out["resolve_seconds"] + out["close_seconds"], 2)
    out["rss_mib"] = rss_mib()
    return out


def resolve_timed(wh: Any, run_id: str, since: dt.datetime | None) -> dict[str, Any]:
    """One resolution of the generated rows: its summary, wall seconds and slowest statements."""
    from airflow_provider_nexus.resolution import NoiseRules, resolve_entity_type

    started = time.perf_counter()
    s = resolve_entity_type(
        wh,
        entity_type="person",
        id_prefix="per",
        core_schema="nexus_core",
        resolution_schema="nexus_resolution",
        run_id=run_id,
        resolved_at=T1 if since is None else T1 + dt.timedelta(hours=1),
        noise=NoiseRules(),
        since=since,
    )
    elapsed = time.perf_counter() - started
    out = s.to_dict()
    out["wall_seconds"] = round(elapsed, 2)
    # the 16 slowest: on PostgreSQL the eighth is still 5% of the run
    out["slowest_statements"] = sorted(
        ((round(sec, 2), sql.split("\n", 1)[0][:100]) for sec, sql in _timed(wh)), reverse=True
    )[:16]
    return out


def _timed(wh: Any) -> list[tuple[float, str]]:
    return getattr(wh, "_bench_times", [])


def _instrument() -> None:
    """Record per-statement wall time on Warehouse._run (bench only)."""
    from airflow_provider_nexus.warehouse import Warehouse

    original = Warehouse._run

    def timed(self: Any, sql: str, params: Any) -> Any:
        started = time.perf_counter()
        cur = original(self, sql, params)
        if not hasattr(self, "_bench_times"):
            self._bench_times = []
        self._bench_times.append((time.perf_counter() - started, sql))
        return cur

    Warehouse._run = timed  # type: ignore[method-assign]


def phase_full(db: str, threads: int | None) -> dict[str, Any]:
    _instrument()
    return nexus(db, None, "full", threads)


def phase_inc(db: str, persons: int, threads: int | None) -> dict[str, Any]:
    _instrument()
    started = time.perf_counter()
    rows = append_batch(db, persons)
    append = round(time.perf_counter() - started, 2)
    out = nexus(db, T0, "inc", threads)
    out["appended_rows"] = rows
    out["append_seconds"] = append
    return out


def phase_pg_full(db: str, pg_uri: str) -> dict[str, Any]:
    """The same rows in a fresh PostgreSQL database (CSV through COPY), then a full resolution."""
    import psycopg

    from airflow_provider_nexus.dialects.postgres import PostgresDialect
    from airflow_provider_nexus.warehouse import Warehouse

    name = f"nexus_bench_res_{os.getpid()}"
    with psycopg.connect(pg_uri, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        started = time.perf_counter()
        csv_path = db + ".core.csv"
        src = duckdb.connect(db, read_only=True)
        src.execute(f"COPY nexus_core.nexus_identifiers TO '{csv_path}' (HEADER false)")
        src.close()
        conn = psycopg.connect(pg_uri.rsplit("/", 1)[0] + f"/{name}", autocommit=True)
        conn.execute("SET TIME ZONE 'UTC'")
        conn.execute("CREATE SCHEMA nexus_core")
        conn.execute(CORE_DDL)
        with (
            open(csv_path, "rb") as fh,
            conn.cursor().copy("COPY nexus_core.nexus_identifiers FROM STDIN WITH (FORMAT csv)") as copy,
        ):
            while chunk := fh.read(1 << 20):
                copy.write(chunk)
        os.remove(csv_path)
        # VACUUM too: a live table has its hint bits and visibility map set long before resolution
        # reads it; freshly copied rows would have the timed run's first scans write every page back
        conn.execute("VACUUM ANALYZE nexus_core.nexus_identifiers")
        load = round(time.perf_counter() - started, 2)
        _instrument()
        out = resolve_timed(Warehouse(PostgresDialect(), conn), "full", None)
        conn.close()
    finally:
        with psycopg.connect(pg_uri, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    out["load_seconds"] = load
    return out


# -- driver --------------------------------------------------------------------------------------


def run_phase(args: list[str]) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, __file__, "--phase", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        return {"error": proc.stderr[-3000:], "returncode": proc.returncode}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def machine() -> dict[str, Any]:
    import pandas
    import scipy

    return {
        "nproc": os.cpu_count(),
        "python": platform.python_version(),
        "duckdb": duckdb.__version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "pandas": pandas.__version__,
        "platform": platform.platform(),
    }


def bench_size(
    persons: int, seed: int, verify: bool, threads: int | None, workdir: str, pg_uri: str | None = None
) -> dict[str, Any]:
    db = os.path.join(workdir, f"res_{persons}.duckdb")
    for suffix in ("", ".wal", ".batch.npz", ".types.npy"):
        if os.path.exists(db + suffix):
            os.remove(db + suffix)
    extra = ["--threads", str(threads)] if threads else []
    out: dict[str, Any] = {"persons": persons}
    out["gen"] = run_phase(["gen", "--db", db, "--persons", str(persons), "--seed", str(seed)])
    print(f"[{persons}] gen {out['gen']}", file=sys.stderr, flush=True)
    out["ref"] = run_phase(["ref", "--db", db])
    print(f"[{persons}] ref {out['ref']}", file=sys.stderr, flush=True)
    out["full"] = run_phase(["full", "--db", db, *extra])
    print(f"[{persons}] full {_short(out['full'])}", file=sys.stderr, flush=True)
    if pg_uri:
        out["pg_full"] = run_phase(["pgfull", "--db", db, "--pg-uri", pg_uri])
        print(f"[{persons}] PostgreSQL full {_short(out['pg_full'])}", file=sys.stderr, flush=True)
    if verify:
        out["verify_full"] = run_phase(["verify", "--db", db])
        print(f"[{persons}] verify {out['verify_full']}", file=sys.stderr, flush=True)
    out["inc"] = run_phase(["inc", "--db", db, "--persons", str(persons), *extra])
    print(f"[{persons}] inc {_short(out['inc'])}", file=sys.stderr, flush=True)
    if verify:
        out["verify_inc"] = run_phase(["verify", "--db", db])
        print(f"[{persons}] verify {out['verify_inc']}", file=sys.stderr, flush=True)
    out["db_mib"] = round(os.path.getsize(db) / 2**20, 1) if os.path.exists(db) else None
    for suffix in ("", ".wal", ".batch.npz", ".types.npy"):
        if os.path.exists(db + suffix):
            os.remove(db + suffix)
    return out


def _short(r: dict[str, Any]) -> dict[str, Any]:
    keys = (
        "wall_seconds",
        "rss_mib",
        "rounds",
        "rows_per_round",
        "touched",
        "mode",
        "entities",
        "error",
    )
    return {k: r[k] for k in keys if k in r}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--persons", type=int, nargs="+", default=[100_000])
    p.add_argument("--seed", type=int, default=42)
    p.add_argument(
        "--verify-max",
        type=int,
        default=100_000,
        help="verify the partition up to this size",
    )
    p.add_argument("--threads", type=int, default=None, help="DuckDB threads (default: DuckDB's)")
    p.add_argument(
        "--memory-limit",
        default=None,
        help="DuckDB memory_limit for the Nexus runs, e.g. 3GB (default: DuckDB's, 80%% of RAM)",
    )
    p.add_argument(
        "--workdir",
        default=None,
        help="where the DuckDB files go (default: a temp dir)",
    )
    p.add_argument("--out", default=None, help="write all results as JSON here")
    p.add_argument(
        "--postgres",
        metavar="URI",
        default=None,
        help="also resolve the same rows on PostgreSQL (a fresh database on this server, dropped after)",
    )
    p.add_argument("--pg-uri", default=None, help=argparse.SUPPRESS)
    p.add_argument("--phase", default=None, help=argparse.SUPPRESS)
    p.add_argument("--db", default=None, help=argparse.SUPPRESS)
    args, _ = p.parse_known_args()
    if args.memory_limit:  # the phase subprocesses inherit it
        os.environ["NEXUS_BENCH_MEMORY_LIMIT"] = args.memory_limit
    if args.phase:
        persons = args.persons[0]
        if args.phase == "gen":
            res = phase_gen(args.db, persons, args.seed)
        elif args.phase == "ref":
            res = phase_ref(args.db)
        elif args.phase == "full":
            res = phase_full(args.db, args.threads)
        elif args.phase == "inc":
            res = phase_inc(args.db, persons, args.threads)
        elif args.phase == "verify":
            res = phase_verify(args.db)
        elif args.phase == "pgfull":
            res = phase_pg_full(args.db, args.pg_uri)
        else:
            raise SystemExit(f"unknown phase {args.phase}")
        print(json.dumps(res, default=str))
        return
    workdir = args.workdir or tempfile.mkdtemp(prefix="nexus_bench_res_")
    os.makedirs(workdir, exist_ok=True)  # a named workdir may not exist yet; every phase writes into it
    results = {"machine": machine(), "command": " ".join(sys.argv), "sizes": []}
    for persons in args.persons:
        results["sizes"].append(
            bench_size(persons, args.seed, persons <= args.verify_max, args.threads, workdir, args.postgres)
        )
        if args.out:
            Path(args.out).write_text(json.dumps(results, indent=2, default=str))
    print(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
