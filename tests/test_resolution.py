"""Identity resolution on a real DuckDB, checked against scipy's connected components."""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import os
import random
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import duckdb
import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from airflow_provider_nexus.dialects.base import Dialect
from airflow_provider_nexus.dialects.duckdb import DuckDBDialect
from airflow_provider_nexus.errors import NexusConfigError, ResolutionCapError
from airflow_provider_nexus.resolution import (
    NoiseRules,
    ResolutionSummary,
    resolve_entity_type,
)
from airflow_provider_nexus.warehouse import Warehouse

#: (source, edge_id, identifier_type, identifier_value, loaded_at)
Row = tuple[str, "str | None", str, str, dt.datetime]
Ident = tuple[str, str]

T0 = dt.datetime(2024, 1, 1)
CORE = "nexus_core"
RES = "nexus_resolution"
MAP = f'"{RES}"."nexus_person_identity_map"'
#: The table the map is a view of (with blocked identifiers and the incremental state).
NODES = f'"{RES}"."nexus_person_nodes"'
LOG = f'"{RES}"."nexus_resolution_log"'
AUDIT = f'"{RES}"."nexus_resolution_audit"'

CORE_DDL = """CREATE TABLE IF NOT EXISTS {table} (
    id VARCHAR, event_id VARCHAR, edge_id VARCHAR, entity_type VARCHAR, identifier_type VARCHAR,
    identifier_value VARCHAR, identifier_value_raw VARCHAR, role VARCHAR, source VARCHAR,
    occurred_at TIMESTAMP, _ingested_at TIMESTAMP, _loaded_at TIMESTAMP)"""


@dataclass
class Env:
    wh: Warehouse
    #: row i of core is `row{i}`; None once a re-sync moved it to another entity type
    rows: list[Row | None] = field(default_factory=list)
    #: source of row i (a re-sync keeps it)
    sources: list[str] = field(default_factory=list)
    runs: int = 0

    @property
    def dialect(self) -> Dialect:
        return self.wh.dialect


class DeferredDuckDBDialect(DuckDBDialect):
    """DuckDB standing in for a warehouse whose DDL commits an open transaction (Snowflake,
    BigQuery, Databricks): resolution computes first and applies its writes as DML at the end."""

    transactional_ddl = False


def make_env(dialect: Dialect | None = None, conn: Any = None, deferred: bool = False) -> Env:
    if conn is None:
        conn = duckdb.connect()
    wh = Warehouse(dialect or (DeferredDuckDBDialect() if deferred else DuckDBDialect()), conn)
    wh.ensure_schema(CORE)
    wh.execute(CORE_DDL.format(table=wh.dialect.table(CORE, "nexus_identifiers")))
    return Env(wh)


@pytest.fixture
def env() -> Env:
    return make_env()


def load(env: Env, rows: Iterable[Row], entity_type: str = "person") -> None:
    """Insert rows into nexus_core.nexus_identifiers with the full column list."""
    rows = list(rows)
    if not rows:
        return
    start = len(env.rows)
    records = [
        core_record(i, source, edge_id, entity_type, itype, ivalue, loaded_at, loaded_at)
        for i, (source, edge_id, itype, ivalue, loaded_at) in enumerate(rows, start)
    ]
    insert_rows(env, env.dialect.table(CORE, "nexus_identifiers"), records)
    env.rows.extend(rows)
    env.sources.extend(r[0] for r in rows)


def core_record(
    i: int,
    source: str,
    edge_id: str | None,
    entity_type: str,
    itype: str,
    ivalue: str,
    occurred: dt.datetime,
    loaded_at: dt.datetime,
) -> tuple[Any, ...]:
    """Row `row{i}` of core (event `ev{i}`), in CORE_COLUMNS order."""
    return (
        f"row{i}",
        f"ev{i}",
        edge_id,
        entity_type,
        itype,
        ivalue,
        ivalue.upper(),
        "participant",
        source,
        occurred,
        loaded_at,
        loaded_at,
    )


CORE_COLUMNS = [
    "id",
    "event_id",
    "edge_id",
    "entity_type",
    "identifier_type",
    "identifier_value",
    "identifier_value_raw",
    "role",
    "source",
    "occurred_at",
    "_ingested_at",
    "_loaded_at",
]


def insert_rows(env: Env, table: str, records: Sequence[tuple[Any, ...]]) -> None:
    conn = env.wh.connection
    if isinstance(conn, duckdb.DuckDBPyConnection):
        import pyarrow as pa

        batch = pa.table({n: [r[k] for r in records] for k, n in enumerate(CORE_COLUMNS)})
        conn.register("nexus_test_batch", batch)
        conn.execute(f"INSERT INTO {table} SELECT * FROM nexus_test_batch")
        conn.unregister("nexus_test_batch")
    else:
        with conn.cursor() as cur:
            cur.executemany(f"INSERT INTO {table} VALUES ({', '.join(['%s'] * 12)})", records)


#: a re-synced core row: (edge_id, identifier_type, identifier_value, occurred_at), or None to
#: move the row to another entity type (it leaves person resolution)
Resync = tuple["str | None", str, str, dt.datetime] | None


def resync(env: Env, changes: dict[int, Resync], loaded_at: dt.datetime) -> None:
    """Re-emit rows `row{i}` with new content through the core layer's own write, which copies
    the replaced rows to nexus_identifiers_retracted (as a re-synced source event does)."""
    from airflow_provider_nexus.layers.common import (
        RETRACTED_AT,
        Retraction,
        ensure_model_table,
        replace_model_rows,
        retracted_table_name,
    )

    if not changes:
        return
    records = []
    for i, change in changes.items():
        source = env.sources[i]
        if change is None:
            edge_id, itype, ivalue, occurred, entity_type = None, "email", f"moved{i}@x.io", loaded_at, "group"
        else:
            (edge_id, itype, ivalue, occurred), entity_type = change, "person"
        records.append(core_record(i, source, edge_id, entity_type, itype, ivalue, occurred, loaded_at))
        env.rows[i] = None if change is None else (source, edge_id, itype, ivalue, occurred)
    wh = env.wh
    retracted = ensure_model_table(
        wh,
        CORE,
        retracted_table_name("identifiers"),
        "identifiers",
        [("identifier_value_raw", "text"), ("_loaded_at", "timestamp"), (RETRACTED_AT, "timestamp")],
    )
    wh.execute(
        f"CREATE TEMP TABLE nexus_test_stage AS SELECT * FROM {env.dialect.table(CORE, 'nexus_identifiers')} WHERE FALSE"
    )
    try:
        insert_rows(env, "nexus_test_stage", records)
        with wh.transaction():
            replace_model_rows(
                wh,
                "identifiers",
                env.dialect.table(CORE, "nexus_identifiers"),
                "nexus_test_stage",
                CORE_COLUMNS,
                Retraction(retracted, loaded_at),
            )
    finally:
        wh.execute("DROP TABLE nexus_test_stage")


def resolve(env: Env, run_id: str | None = None, **kwargs: Any) -> ResolutionSummary:
    env.runs += 1
    kwargs.setdefault("resolved_at", T0 + dt.timedelta(days=env.runs))
    return resolve_entity_type(
        env.wh,
        entity_type="person",
        id_prefix="per",
        core_schema=CORE,
        resolution_schema=RES,
        run_id=run_id or f"run{env.runs}",
        **kwargs,
    )


def current_map(env: Env) -> dict[Ident, str]:
    return {(t, v): e for t, v, e in env.wh.fetchall(f"SELECT identifier_type, identifier_value, entity_id FROM {MAP}")}


def full_map(env: Env) -> list[tuple[Any, ...]]:
    return sorted(env.wh.fetchall(f"SELECT * FROM {MAP}"), key=repr)


def log_rows(env: Env) -> list[tuple[Any, ...]]:
    return env.wh.fetchall(f"SELECT * FROM {LOG}")


def partition(mapping: dict[Ident, str]) -> set[frozenset[Ident]]:
    groups: dict[str, set[Ident]] = {}
    for ident, eid in mapping.items():
        groups.setdefault(eid, set()).add(ident)
    return {frozenset(g) for g in groups.values()}


def reference(all_rows: Sequence[Row | None], noise: NoiseRules | None = None) -> set[frozenset[Ident]]:
    """scipy's connected components over the same rows (blocked values and hubs applied)."""
    import re

    rows = [r for r in all_rows if r is not None]
    noise = noise or NoiseRules()

    def blocked(itype: str, value: str) -> bool:
        for t, v in noise.blocked_values:
            if (t is None or t == itype) and v == value:
                return True
        return any((t is None or t == itype) and re.search(p, value) for t, p in noise.blocked_patterns)

    idents = sorted({(r[2], r[3]) for r in rows if not blocked(r[2], r[3])})
    index = {ident: i for i, ident in enumerate(idents)}
    groups: dict[tuple[str, str], set[int]] = {}
    for source, edge_id, itype, value, _ in rows:
        if edge_id is not None and (itype, value) in index:
            groups.setdefault((source, edge_id), set()).add(index[(itype, value)])
    n_groups: dict[int, int] = {}
    for members in groups.values():
        for m in members:
            n_groups[m] = n_groups.get(m, 0) + 1
    hubs = {i for i, n in n_groups.items() if (limit := noise.hub_limit(idents[i][0])) is not None and n > limit}
    src: list[int] = []
    dst: list[int] = []
    for members in groups.values():
        ms = sorted(members - hubs)
        src += ms[:1] * (len(ms) - 1)
        dst += ms[1:]
    n = len(idents)
    graph = coo_matrix((np.ones(len(src)), (src, dst)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    out: dict[int, set[Ident]] = {}
    for ident, label in zip(idents, labels, strict=True):
        out.setdefault(int(label), set()).add(ident)
    return {frozenset(g) for g in out.values()}


def birth_id(itype: str, value: str, prefix: str = "per", entity_type: str = "person") -> str:
    return f"{prefix}_" + hashlib.md5(f"{entity_type}:{itype}:{value}".encode()).hexdigest()[:16]


def check_against_reference(env: Env, noise: NoiseRules | None = None) -> dict[Ident, str]:
    mapping = current_map(env)
    assert partition(mapping) == reference(env.rows, noise)
    return mapping


# -- graph shapes ------------------------------------------------------------------------------


def chain_rows(n: int, seed: int = 7, at: dt.datetime = T0) -> list[Row]:
    values = [f"u{i:06d}@example.org" for i in range(n)]
    random.Random(seed).shuffle(values)
    rows: list[Row] = []
    for i in range(n - 1):
        rows.append(("crm", f"g{i}", "email", values[i], at))
        rows.append(("crm", f"g{i}", "email", values[i + 1], at))
    return rows


def test_chain_of_1000(env: Env) -> None:
    load(env, chain_rows(1000))
    s = resolve(env)
    mapping = check_against_reference(env)
    assert s.identifiers == 1000 and s.entities == 1 and s.born == 1
    smallest = min(mapping)
    assert set(mapping.values()) == {birth_id(*smallest)}
    assert s.rounds < 20, s.rows_per_round
    assert len(s.rows_per_round) == len(s.seconds_per_round) == s.rounds
    assert s.rows_per_round[-1] == 0
    assert len(log_rows(env)) == 1000


def test_an_appended_batch_joins_old_components_whole(env: Env) -> None:
    """A batch that only adds rows cannot split anything, so the incremental search counts each
    old component as one node: joining two long chains takes the rounds of joining two
    identifiers, and the result is still the exact partition with the survivor's id."""
    t1 = T0 + dt.timedelta(hours=1)
    first = chain_rows(600)
    second = [("web", f"w{r[1]}", r[2], r[3].replace("@example.org", "@example.net"), r[4]) for r in chain_rows(400, 9)]
    load(env, first + second)
    full = resolve(env)
    assert full.entities == 2 and full.rounds >= 6, full.rows_per_round
    survivor = current_map(env)[("email", first[0][3])]  # the larger chain survives the merge
    load(env, [("app", "link", "email", first[-1][3], t1), ("app", "link", "email", second[0][3], t1)])
    s = resolve(env, since=T0)
    assert s.mode == "incremental" and s.touched == 1000
    assert s.rounds <= 3 and s.edges == 1, s.rows_per_round
    mapping = check_against_reference(env)
    assert set(mapping.values()) == {survivor} and s.merged == 1


def test_round_cap_raises_and_writes_nothing(env: Env) -> None:
    load(env, chain_rows(200))
    with pytest.raises(ResolutionCapError, match="max_rounds=1") as info:
        resolve(env, max_rounds=1)
    assert "still changing" in str(info.value)
    # it points at the component: an identifier of the largest group of nodes still changing
    assert re.search(
        r"\(\d+ nodes\) under node (\d+)\..* Node \1 is the person identifier email 'u\d+@example\.org'\.",
        str(info.value),
    )
    assert not env.wh.table_exists(RES, "nexus_person_identity_map")
    # the rollback left no scratch table behind either
    assert env.wh.scalar(f"SELECT count(*) FROM information_schema.tables WHERE table_schema = '{RES}'") == 0
    resolve(env, max_rounds=100)
    check_against_reference(env)


@pytest.mark.parametrize("mode", ["full", "incremental"])
def test_deferred_writes_leave_map_log_and_watermark_untouched_on_failure(mode: str) -> None:
    """Where DDL commits (Snowflake), the writes wait for one DML transaction at the end: a
    failure before or inside it (here: the caller's watermark write) changes nothing, and the
    retry gives the clean result."""
    env = make_env(deferred=True)
    t1 = T0 + dt.timedelta(hours=1)
    load(env, chain_rows(40, at=t1))
    resolve(env, run_id="base")
    before, n_log = full_map(env), len(log_rows(env))
    # a batch that merges the chain with a new component
    t2 = T0 + dt.timedelta(hours=2)
    load(env, [("crm", "bridge", "email", "new@x.io", t2), ("crm", "bridge", "phone", "+15550001", t2)])
    load(env, [("crm", "link", "phone", "+15550001", t2), ("crm", "link", "email", "u000000@example.org", t2)])
    since = None if mode == "full" else t1

    def fail(_: Warehouse) -> None:
        raise RuntimeError("injected failure inside the write transaction")

    with pytest.raises(RuntimeError, match="injected"):
        resolve(env, run_id="batch", since=since, before_commit=fail)
    assert full_map(env) == before and len(log_rows(env)) == n_log
    summary = resolve(env, run_id="batch", since=since)
    assert summary.mode == mode, summary.fallback_reason
    check_against_reference(env)


def star_rows(leaves: int) -> list[Row]:
    rows: list[Row] = []
    for i in range(leaves):
        rows.append(("app", f"s{i}", "phone", "+15550000000", T0))
        rows.append(("app", f"s{i}", "user_id", f"leaf{i:06d}", T0))
    return rows


def test_star_of_20000_leaves(env: Env) -> None:
    load(env, star_rows(20_000))
    s = resolve(env)
    check_against_reference(env)
    assert s.entities == 1 and s.identifiers == 20_001
    assert s.edges == 20_000  # a star per group: n-1 edges, never all pairs


def test_one_big_edge_group_is_a_star_not_all_pairs(env: Env) -> None:
    load(env, [("crm", "big", "email", f"m{i}@x.io", T0) for i in range(3000)])
    s = resolve(env)
    assert s.edges == 2999 and s.entities == 1


@pytest.mark.slow
def test_star_of_100000_leaves(env: Env) -> None:
    load(env, star_rows(100_000))
    s = resolve(env)
    check_against_reference(env)
    assert s.entities == 1


def test_cycles_and_small_components(env: Env) -> None:
    rows: list[Row] = []
    rng = random.Random(3)
    for c, length in enumerate([3, 4, 7, 50, 101]):
        values = [f"c{c}_{i}" for i in range(length)]
        rng.shuffle(values)
        for i in range(length):
            rows.append(("erp", f"cy{c}_{i}", "user_id", values[i], T0))
            rows.append(("erp", f"cy{c}_{i}", "user_id", values[(i + 1) % length], T0))
    # singletons: no edge_id, or alone in their group
    rows += [("web", None, "email", f"single{i}@x.io", T0) for i in range(30)]
    rows += [("web", f"alone{i}", "email", f"alone{i}@x.io", T0) for i in range(30)]
    # many small components: pairs and triples, some sharing a value across sources
    for i in range(300):
        rows.append(("crm", f"p{i}", "email", f"p{i}@x.io", T0))
        rows.append(("crm", f"p{i}", "phone", f"+1555{i:07d}", T0))
        if i % 3 == 0:
            rows.append(("shop", f"p{i}", "user_id", f"shop{i}", T0))
    # the same edge_id in another source does not link
    rows.append(("other", "p1", "email", "unrelated@x.io", T0))
    # event_id never links (every row has its own here, but also the same one below)
    load(env, rows)
    s = resolve(env)
    mapping = check_against_reference(env)
    assert mapping[("email", "unrelated@x.io")] != mapping[("email", "p1@x.io")]
    assert s.entities == len(reference(env.rows))


def test_event_id_does_not_link(env: Env) -> None:
    load(
        env,
        [("crm", None, "email", "a@x.io", T0), ("crm", None, "email", "b@x.io", T0)],
    )
    env.wh.execute(f'UPDATE "{CORE}"."nexus_identifiers" SET event_id = \'same\'')
    s = resolve(env)
    assert s.entities == 2


def giant_rows(n: int, seed: int = 11) -> list[Row]:
    """A random graph with average degree ~2.4: a giant component plus small ones."""
    rng = random.Random(seed)
    values = [f"id{i:06d}" for i in range(n)]
    rng.shuffle(values)
    rows: list[Row] = []
    for g in range(int(n * 1.2)):
        a, b = rng.randrange(n), rng.randrange(n)
        rows.append(("crm", f"e{g}", "user_id", values[a], T0))
        rows.append(("crm", f"e{g}", "user_id", values[b], T0))
    return rows


def test_giant_component_50000(env: Env) -> None:
    load(env, giant_rows(50_000))
    started = time.perf_counter()
    s = resolve(env)
    elapsed = time.perf_counter() - started
    ref = reference(env.rows)
    assert partition(current_map(env)) == ref
    biggest = max(len(c) for c in ref)
    assert biggest > 30_000, biggest
    assert s.rounds < 30, s.rows_per_round
    print(f"giant 50k: {biggest} in the giant component, {s.rounds} rounds, {elapsed:.2f}s")


def test_empty_core_and_other_entity_types(env: Env) -> None:
    s = resolve(env)
    assert s.identifiers == 0 and s.entities == 0 and s.rounds == 1
    load(env, [("crm", "g", "domain", "acme.com", T0)], entity_type="group")
    s = resolve(env)
    assert s.identifiers == 0


# -- ids, merges, idempotency -----------------------------------------------------------------


def test_ids_are_stable_across_runs_and_accretion_keeps_the_id(env: Env) -> None:
    load(
        env,
        [
            ("crm", "g1", "email", "zed@x.io", T0),
            ("crm", "g1", "phone", "+15551234567", T0),
        ],
    )
    resolve(env)
    first = current_map(env)
    eid = birth_id("email", "zed@x.io")  # "email" < "phone": smallest identifier at birth
    assert set(first.values()) == {eid}
    # a smaller identifier joins later: the id does not change
    t1 = T0 + dt.timedelta(hours=1)
    load(
        env,
        [
            ("shop", "o1", "email", "aaa@x.io", t1),
            ("shop", "o1", "phone", "+15551234567", t1),
        ],
    )
    s = resolve(env, since=T0)
    assert set(current_map(env).values()) == {eid}
    assert (s.born, s.accreted, s.merged) == (0, 1, 0)
    reasons = env.wh.fetchall(f"SELECT identifier_value, reason, entity_id FROM {LOG} WHERE run_id = 'run2'")
    assert reasons == [("aaa@x.io", "accreted", eid)]


def test_merge_survivor_has_most_identifiers(env: Env) -> None:
    load(
        env,
        [
            ("crm", "a", "email", "a1@x.io", T0),
            ("crm", "a", "email", "a2@x.io", T0),
            ("crm", "a", "phone", "+1555000001", T0),
            ("crm", "b", "email", "b1@x.io", T0),
            ("crm", "b", "email", "b2@x.io", T0),
        ],
    )
    resolve(env)
    before = current_map(env)
    ea, eb = before[("email", "a1@x.io")], before[("email", "b1@x.io")]
    assert ea != eb
    load(
        env,
        [
            ("web", "w", "email", "b2@x.io", T0),
            ("web", "w", "email", "zz@x.io", T0),
            ("web", "w2", "email", "zz@x.io", T0),
            ("web", "w2", "phone", "+1555000001", T0),
        ],
    )
    s = resolve(env, run_id="merge")
    after = current_map(env)
    assert set(after.values()) == {ea}
    assert (s.merged, s.born) == (1, 0)
    merged = env.wh.fetchall(
        f"SELECT identifier_value, entity_id, previous_entity_id FROM {LOG} "
        "WHERE run_id = 'merge' AND reason = 'merged' ORDER BY identifier_value"
    )
    assert merged == [("b1@x.io", ea, eb), ("b2@x.io", ea, eb)]
    accreted = env.wh.fetchall(f"SELECT identifier_value FROM {LOG} WHERE run_id = 'merge' AND reason = 'accreted'")
    assert accreted == [("zz@x.io",)]


def test_merge_tie_breaks_on_smaller_entity_id(env: Env) -> None:
    load(
        env,
        [
            ("crm", "a", "email", "a1@x.io", T0),
            ("crm", "a", "email", "a2@x.io", T0),
            ("crm", "b", "email", "b1@x.io", T0),
            ("crm", "b", "email", "b2@x.io", T0),
        ],
    )
    resolve(env)
    before = current_map(env)
    ea, eb = before[("email", "a1@x.io")], before[("email", "b1@x.io")]
    load(
        env,
        [("web", "w", "email", "a2@x.io", T0), ("web", "w", "email", "b2@x.io", T0)],
    )
    resolve(env)
    assert set(current_map(env).values()) == {min(ea, eb)}
    loser = max(ea, eb)
    n_merged = env.wh.scalar(f"SELECT count(*) FROM {LOG} WHERE reason = 'merged' AND previous_entity_id = '{loser}'")
    assert n_merged == 2


def test_idempotent_and_full_refresh_keeps_ids(env: Env) -> None:
    load(env, giant_rows(2000, seed=5))
    resolve(env)
    map1, log1 = full_map(env), log_rows(env)
    s = resolve(env)  # no new data, new run id
    assert full_map(env) == map1 and log_rows(env) == log1
    assert (s.born, s.accreted, s.merged, s.log_rows, s.changed_rows) == (0, 0, 0, 0, 0)
    s = resolve(env, run_id="run1", resolved_at=T0 + dt.timedelta(days=1))  # the same run again
    assert full_map(env) == map1 and log_rows(env) == log1
    s = resolve(env, full_refresh=True)
    assert s.full_refresh and full_map(env) == map1 and log_rows(env) == log1
    # full refresh after the map was lost (its node rows deleted): ids are recomputed deterministically
    ids = current_map(env)
    env.wh.execute(f"DELETE FROM {NODES}")
    resolve(env, full_refresh=True)
    assert partition(current_map(env)) == partition(ids)


def test_edge_partners_in_different_batches_still_link(env: Env) -> None:
    load(env, [("crm", "g1", "email", "x@x.io", T0)])
    resolve(env)
    t1 = T0 + dt.timedelta(hours=1)
    load(env, [("crm", "g1", "phone", "+15557654321", t1)])
    resolve(env, since=T0)
    m = current_map(env)
    assert m[("email", "x@x.io")] == m[("phone", "+15557654321")] == birth_id("email", "x@x.io")


def test_map_columns_and_seen_times(env: Env) -> None:
    t1 = T0 + dt.timedelta(days=3)
    load(env, [("crm", "g", "email", "a@x.io", T0), ("shop", "h", "email", "a@x.io", t1)])
    resolve(env, resolved_at=dt.datetime(2024, 2, 1, tzinfo=dt.UTC))
    cols = env.wh.columns(RES, "nexus_person_identity_map")
    assert cols == [
        "entity_type",
        "identifier_type",
        "identifier_value",
        "entity_id",
        "first_seen_at",
        "last_seen_at",
        "resolved_at",
        "is_hub",
    ]
    row = env.wh.fetchone(f"SELECT entity_type, first_seen_at, last_seen_at, resolved_at, is_hub FROM {MAP}")
    assert row == ("person", T0, t1, dt.datetime(2024, 2, 1), False)


# -- noise -------------------------------------------------------------------------------------


def test_blocked_value_links_nothing_and_is_audited(env: Env) -> None:
    noise = NoiseRules.build(
        blocked_values={"email": ["test@example.com"]},
        blocked_patterns={None: [r"^o'brien"], "phone": [r"^\+?0+$"]},
    )
    load(
        env,
        [
            ("crm", "g1", "email", "alice@x.io", T0),
            ("crm", "g1", "email", "test@example.com", T0),
            ("crm", "g2", "email", "bob@x.io", T0),
            ("crm", "g2", "email", "test@example.com", T0),
            ("crm", "g3", "email", "carol@x.io", T0),
            ("crm", "g3", "user_id", "o'brien", T0),
            ("crm", "g4", "email", "dave@x.io", T0),
            ("crm", "g4", "user_id", "o'brien", T0),
            ("crm", "g5", "phone", "0000000000", T0),
            ("crm", "g5", "email", "eve@x.io", T0),
        ],
    )
    s = resolve(env, noise=noise)
    mapping = check_against_reference(env, noise)
    assert ("email", "test@example.com") not in mapping and (
        "user_id",
        "o'brien",
    ) not in mapping
    assert len(set(mapping.values())) == 5
    assert s.blocked == 3
    audit = env.wh.fetchall(
        f'SELECT identifier_type, identifier_value, kind, edge_groups, "rows", run_id FROM {AUDIT} ORDER BY 1, 2'
    )
    assert audit == [
        ("email", "test@example.com", "blocked", 2, 2, "run1"),
        ("phone", "0000000000", "blocked", 1, 1, "run1"),
        ("user_id", "o'brien", "blocked", 2, 2, "run1"),
    ]
    resolve(env, run_id="run1", noise=noise)  # re-running a run does not duplicate its audit
    assert env.wh.scalar(f"SELECT count(*) FROM {AUDIT}") == 3


@pytest.mark.parametrize("written", ["000-000-0000", "(123) 456-7890", "+1 999 999 9999"])
def test_default_rules_block_placeholder_phones_as_core_normalises_them(env: Env, written: str) -> None:
    """Resolution sees phones as the core layer's default normaliser leaves them (digits, with the
    North American country code), so the default placeholders must be listed in that form."""
    from airflow_provider_nexus.templates import TemplateEngine

    normalised = TemplateEngine(env.wh.dialect, []).env.globals["normalize_phone"](env.wh.dialect.literal(written))
    phone = env.wh.scalar(f"SELECT {normalised}")
    load(
        env,
        [
            ("crm", "alice", "email", "alice@a.io", T0),
            ("crm", "alice", "phone", phone, T0),
            ("crm", "bob", "email", "bob@b.io", T0),
            ("crm", "bob", "phone", phone, T0),
        ],
    )
    resolve(env, noise=NoiseRules.defaults())
    mapping = current_map(env)
    assert mapping[("email", "alice@a.io")] != mapping[("email", "bob@b.io")], f"{written} -> {phone} linked them"


@pytest.mark.parametrize("incremental", [True, False])
def test_a_value_turning_into_a_hub_leaves_the_customer_its_id(env: Env, incremental: bool) -> None:
    """u1 and its phone are one person; the phone then shows up in more records than its limit
    (a switchboard). The person keeps its id; the phone, now a hub entity of its own, is split off."""
    rules = NoiseRules.build(hub_limits={"phone": 2})
    load(env, [("crm", "c1", "user_id", "u1", T0), ("crm", "c1", "phone", "15550100", T0)])
    resolve(env, noise=rules)
    person = current_map(env)[("user_id", "u1")]
    t1 = T0 + dt.timedelta(hours=1)
    load(
        env,
        [
            ("crm", "c2", "phone", "15550100", t1),
            ("crm", "c2", "user_id", "u2", t1),
            ("crm", "c3", "phone", "15550100", t1),
            ("crm", "c3", "user_id", "u3", t1),
        ],
    )
    resolve(env, noise=rules, since=T0 if incremental else None)
    mapping = current_map(env)
    assert mapping[("user_id", "u1")] == person
    assert mapping[("phone", "15550100")] != person
    split = env.wh.fetchall(
        f"SELECT identifier_value, previous_entity_id, reason FROM {RES}.nexus_resolution_log WHERE reason <> 'born'"
    )
    assert split == [("15550100", person, "split")]


def test_hub_creates_no_edges_and_is_flagged(env: Env) -> None:
    noise = NoiseRules.build(hub_limits={"phone": 2}, default_hub_limit=50)
    rows: list[Row] = []
    for i in range(4):  # the office phone shows up for four people
        rows += [
            ("crm", f"p{i}", "email", f"person{i}@acme.io", T0),
            ("crm", f"p{i}", "phone", "+15550001111", T0),
        ]
    rows += [
        ("crm", "q", "email", "person0@acme.io", T0),
        ("crm", "q", "phone", "+15550002222", T0),
    ]
    load(env, rows)
    s = resolve(env, noise=noise)
    mapping = check_against_reference(env, noise)
    assert s.hubs == 1
    hub_id = mapping[("phone", "+15550001111")]
    assert list(mapping.values()).count(hub_id) == 1
    assert len({mapping[("email", f"person{i}@acme.io")] for i in range(4)}) == 4
    assert mapping[("phone", "+15550002222")] == mapping[("email", "person0@acme.io")]
    flags = dict(env.wh.fetchall(f"SELECT identifier_value, is_hub FROM {MAP} WHERE identifier_type = 'phone'"))
    assert flags == {"+15550001111": True, "+15550002222": False}
    audit = env.wh.fetchall(f'SELECT identifier_value, kind, edge_groups, "rows" FROM {AUDIT}')
    assert audit == [("+15550001111", "hub", 4, 4)]


def test_each_type_keeps_its_own_hub_limit(env: Env) -> None:
    """Hub candidates are found above the lowest limit; each is then judged by its type's limit."""
    noise = NoiseRules.build(hub_limits={"email": 4}, default_hub_limit=2)
    assert noise.lowest_hub_limit == 2
    rows: list[Row] = []
    for i in range(3):  # a shared inbox and a shared phone, three groups each
        rows += [
            ("crm", f"p{i}", "email", "team@acme.io", T0),
            ("crm", f"p{i}", "user_id", f"u{i}", T0),
            ("web", f"w{i}", "phone", "+15550001111", T0),
            ("web", f"w{i}", "user_id", f"u{i}", T0),
        ]
    load(env, rows)
    s = resolve(env, noise=noise)
    mapping = check_against_reference(env, noise)
    assert s.hubs == 1  # the phone (3 > 2); the email stays under its own limit (3 <= 4)
    hubs = env.wh.fetchall(f"SELECT identifier_type FROM {MAP} WHERE is_hub")
    assert hubs == [("phone",)]
    assert len({mapping[("user_id", f"u{i}")] for i in range(3)}) == 1  # linked by the email


def test_value_becoming_a_hub_splits_its_entity_with_a_log(env: Env) -> None:
    rows: list[Row] = []
    for i in range(3):
        rows += [
            ("crm", f"p{i}", "email", f"person{i}@acme.io", T0),
            ("crm", f"p{i}", "phone", "+15550001111", T0),
        ]
    load(env, rows)
    resolve(env, noise=NoiseRules())
    before = current_map(env)
    assert len(set(before.values())) == 1
    noise = NoiseRules.build(hub_limits={"phone": 2})
    s = resolve(env, run_id="tighten", noise=noise)
    after = check_against_reference(env, noise)
    assert len(set(after.values())) == 4
    old = next(iter(set(before.values())))
    assert list(after.values()).count(old) == 1  # the old id stays with one piece
    assert len(set(after.values())) == len(after)
    split = env.wh.fetchall(f"SELECT previous_entity_id FROM {LOG} WHERE run_id = 'tighten' AND reason = 'split'")
    assert len(split) == 3 and {r[0] for r in split} == {old}
    assert s.split == 1
    # blocking a mapped value removes it from the map, logged
    noise2 = NoiseRules.build(blocked_values={"phone": ["+15550001111"]}, hub_limits={"phone": 2})
    resolve(env, run_id="block", noise=noise2)
    assert ("phone", "+15550001111") not in current_map(env)
    assert env.wh.scalar(f"SELECT count(*) FROM {LOG} WHERE run_id = 'block' AND reason = 'removed'") == 1


def test_default_noise_rules() -> None:
    rules = NoiseRules.defaults()
    d = DuckDBDialect()
    conn = duckdb.connect()
    pred = rules.blocked_predicate(d, "t", "v")
    cases = {
        ("email", "test@example.com"): True,
        ("email", "noreply@shop.io"): True,
        ("email", "no-reply@shop.io"): True,
        ("email", "alice@example.com"): False,
        ("phone", "0000000000"): True,
        ("phone", "+15551234567"): False,
        ("user_id", "unknown"): True,
        ("user_id", "NULL"): True,
        ("user_id", "n/a"): True,
        ("user_id", "none"): True,
        ("user_id", "nonet"): False,
    }
    for (t, v), expected in cases.items():
        got = conn.execute(f"SELECT {pred} FROM (SELECT {d.literal(t)} AS t, {d.literal(v)} AS v) x").fetchone()
        assert got is not None and bool(got[0]) is expected, (t, v)
    assert rules.hub_limit("email") == 50
    assert NoiseRules().blocked_predicate(d, "t", "v") == "FALSE"
    with pytest.raises(ValueError, match="not a valid regex"):
        NoiseRules.build(blocked_patterns={None: ["("]})


def test_summary_to_dict_is_json_safe(env: Env) -> None:
    import json

    load(env, chain_rows(10))
    s = resolve(env)
    d = s.to_dict()
    assert json.loads(json.dumps(d)) == d
    for key in (
        "entity_type",
        "identifiers",
        "entities",
        "born",
        "accreted",
        "merged",
        "rounds",
        "blocked",
        "hubs",
        "rows_per_round",
        "seconds_per_round",
    ):
        assert key in d


# -- random batches (hypothesis) ------------------------------------------------------------------

VALUES = (
    [("email", f"e{i}@x.io") for i in range(6)]
    + [("phone", f"+1555{i}") for i in range(4)]
    + [("user_id", f"U{i}") for i in range(4)]
)


@st.composite
def batched_graphs(draw: st.DrawFn) -> list[list[tuple[str, str | None, str, str]]]:
    n_rows = draw(st.integers(min_value=1, max_value=30))
    rows = [
        (
            draw(st.sampled_from(["crm", "shop"])),
            draw(st.one_of(st.none(), st.sampled_from([f"g{i}" for i in range(8)]))),
            *draw(st.sampled_from(VALUES)),
        )
        for _ in range(n_rows)
    ]
    n_batches = draw(st.integers(min_value=1, max_value=4))
    cuts = sorted(draw(st.lists(st.integers(0, n_rows), min_size=n_batches - 1, max_size=n_batches - 1)))
    order = draw(st.permutations(rows))
    bounds = [0, *cuts, n_rows]
    return [list(order[a:b]) for a, b in itertools.pairwise(bounds)]


@pytest.mark.parametrize("deferred", [False, True], ids=["transactional_ddl", "deferred_writes"])
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches=batched_graphs())
def test_random_batches_match_reference(
    deferred: bool,
    batches: list[list[tuple[str, str | None, str, str]]],
) -> None:
    env = make_env(deferred=deferred)
    since: dt.datetime | None = None
    for b, batch in enumerate(batches):
        loaded_at = T0 + dt.timedelta(hours=b + 1)
        run_id = f"batch{b}"
        before = current_map(env) if b else {}
        log_before = log_rows(env) if b else []
        load(env, [(s, e, t, v, loaded_at) for s, e, t, v in batch])
        resolve(env, run_id=run_id, since=since)
        after = check_against_reference(env)
        batch_idents = {(t, v) for _, _, t, v in batch}
        touched = {eid for ident, eid in after.items() if ident in batch_idents}
        # entities untouched by the batch keep their ids
        for ident, eid in before.items():
            if after[ident] not in touched:
                assert eid == after[ident]
        # every identifier whose id changed has a merged row for this run
        merged = {
            (r[0], r[1])
            for r in env.wh.fetchall(
                f"SELECT identifier_type, identifier_value FROM {LOG} WHERE run_id = '{run_id}' AND reason = 'merged'"
            )
        }
        changed = {ident for ident, eid in before.items() if after[ident] != eid}
        assert changed == merged
        # the log only grows, and its latest word on each identifier is the map
        log_after = log_rows(env)
        assert sorted(log_before, key=repr) == sorted(log_after[: len(log_before)], key=repr)
        latest = {
            (r[0], r[1]): r[2]
            for r in env.wh.fetchall(
                f"SELECT identifier_type, identifier_value, entity_id FROM {LOG} ORDER BY resolved_at"
            )
        }
        assert latest == after
        # ids are the birth hash of some member (no id comes from nowhere)
        for eid in set(after.values()):
            members = [i for i, e in after.items() if e == eid]
            assert eid in {birth_id(*m) for m in members} | {e for e in before.values()}
        # re-running the same batch and an empty batch change nothing
        snapshot, n_log = full_map(env), len(log_after)
        resolve(
            env,
            run_id=run_id,
            since=since,
            resolved_at=loaded_at + dt.timedelta(days=1),
        )
        resolve(env, run_id=f"{run_id}_empty", since=loaded_at)
        assert full_map(env) == snapshot and len(log_rows(env)) == n_log
        since = loaded_at


@st.composite
def resync_plans(draw: st.DrawFn, n_batches: int) -> list[list[tuple[int, Resync]]]:
    """Per batch, re-syncs of rows loaded before it: (row pick, new content or None)."""
    change = st.one_of(
        st.none(),
        st.builds(
            lambda edge, ident, hours: (edge, *ident, T0 + dt.timedelta(hours=hours)),
            st.one_of(st.none(), st.sampled_from([f"g{i}" for i in range(8)])),
            st.sampled_from(VALUES),
            st.integers(-3, 3),
        ),
    )
    return [draw(st.lists(st.tuples(st.integers(0, 1000), change), max_size=4)) if b else [] for b in range(n_batches)]


NOISE_OPTIONS = [
    NoiseRules(),
    NoiseRules.build(hub_limits={"phone": 2}),
    NoiseRules.build(default_hub_limit=3, blocked_values={"email": ["e0@x.io"]}),
    NoiseRules.build(hub_limits={"email": 4}, default_hub_limit=2),
]


@pytest.mark.parametrize("deferred", [False, True], ids=["transactional_ddl", "deferred_writes"])
@settings(
    max_examples=int(os.environ.get("NEXUS_HYPOTHESIS_EXAMPLES", "30")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(data=st.data(), batches=batched_graphs(), noise_no=st.integers(0, len(NOISE_OPTIONS) - 1))
def test_incremental_equals_full_recompute(
    deferred: bool, data: st.DataObject, batches: list[list[tuple[str, str | None, str, str]]], noise_no: int
) -> None:
    """The incremental path (since = previous high, as the operator passes it) gives the same map,
    ids and log as the full path run on a fresh schema with the same history, and scipy's partition.
    Batches after the first also re-sync earlier rows (new edge, value or sighting, or a move to
    another entity type), through the core layer's write that records what it replaced: the
    incremental path must handle those too (links lost, entities split, identifiers removed).
    With `deferred`, the incremental side queues its writes (as on Snowflake) and the full side
    does not, so the two write strategies are checked against each other too."""
    noise = NOISE_OPTIONS[noise_no]
    plans = data.draw(resync_plans(len(batches)))
    inc, full = make_env(deferred=deferred), make_env()
    since: dt.datetime | None = None
    for b, batch in enumerate(batches):
        loaded_at = T0 + dt.timedelta(hours=b + 1)
        rows = [(s, e, t, v, loaded_at) for s, e, t, v in batch]
        changes = {pick % len(inc.rows): change for pick, change in plans[b]} if inc.rows else {}
        for e in (inc, full):
            resync(e, changes, loaded_at)
            load(e, rows)
        at = T0 + dt.timedelta(days=b + 1)
        si = resolve(inc, run_id=f"r{b}", since=since, noise=noise, resolved_at=at)
        sf = resolve(full, run_id=f"r{b}", noise=noise, resolved_at=at)
        assert si.mode == ("full" if since is None else "incremental"), si.fallback_reason
        if si.retracted_rows:
            event(f"re-synced rows: split={bool(si.split)} removed={bool(si.removed)}")
        assert sf.mode == "full"
        assert full_map(inc) == full_map(full)
        assert sorted(log_rows(inc), key=repr) == sorted(log_rows(full), key=repr)
        assert partition(current_map(inc)) == reference(inc.rows, noise)
        keys = (
            "identifiers",
            "entities",
            "born",
            "accreted",
            "merged",
            "split",
            "removed",
            "log_rows",
            "changed_rows",
            "blocked",
            "hubs",
        )
        assert {k: getattr(si, k) for k in keys} == {k: getattr(sf, k) for k in keys}
        since = loaded_at


def test_value_becoming_a_hub_across_batches_splits_incrementally() -> None:
    noise = NoiseRules.build(hub_limits={"phone": 2})
    inc, full = make_env(), make_env()
    office = "+15550001111"
    batches: list[list[Row]] = []
    for b in range(4):  # one more person per batch shares the office phone
        at = T0 + dt.timedelta(hours=b + 1)
        batches.append(
            [
                ("crm", f"p{b}", "email", f"person{b}@acme.io", at),
                ("crm", f"p{b}", "phone", office, at),
                ("web", f"w{b}", "email", f"person{b}@acme.io", at),
                ("web", f"w{b}", "user_id", f"U{b}", at),
            ]
        )
    since = None
    summaries = []
    for b, batch in enumerate(batches):
        for e in (inc, full):
            load(e, batch)
        at = T0 + dt.timedelta(days=b + 1)
        summaries.append(resolve(inc, run_id=f"r{b}", since=since, noise=noise, resolved_at=at))
        resolve(full, run_id=f"r{b}", noise=noise, resolved_at=at)
        check_against_reference(inc, noise)
        assert full_map(inc) == full_map(full)
        assert sorted(log_rows(inc), key=repr) == sorted(log_rows(full), key=repr)
        since = batch[0][4]
    # batch 2 made the phone a hub: the entity of persons 0-1 split, incrementally
    s = summaries[2]
    assert s.mode == "incremental" and s.split == 1 and s.hubs == 1
    mapping = current_map(inc)
    assert len({mapping[("email", f"person{i}@acme.io")] for i in range(4)}) == 4
    assert list(mapping.values()).count(mapping[("phone", office)]) == 1
    assert mapping[("user_id", "U1")] == mapping[("email", "person1@acme.io")]


def test_a_batch_that_only_takes_rows_away_still_counts_as_a_change(env: Env) -> None:
    """The operator skips resolution when nothing changed since its watermark; a re-sync that
    removes a person's row adds no person row, yet it must not be skipped."""
    from airflow_provider_nexus.resolution import has_core_rows, latest_change, pending_change

    t1, t2 = T0 + dt.timedelta(hours=1), T0 + dt.timedelta(hours=2)
    load(env, [("crm", "c1", "email", "a@x.io", t1), ("crm", "c1", "phone", "+1555", t1)])
    resolve(env)
    assert latest_change(env.wh, CORE, "person") == t1
    resync(env, {1: None}, t2)  # the phone row becomes a group identifier
    assert latest_change(env.wh, CORE, "person") == t2
    # from the watermark: the later stamp, and none once resolution has caught up with it
    assert latest_change(env.wh, CORE, "person", after=t1) == t2
    assert latest_change(env.wh, CORE, "person", after=t2) is None
    assert has_core_rows(env.wh, CORE, "person") and not has_core_rows(env.wh, CORE, "account")
    assert pending_change(env.wh, CORE, "person", t1) == (True, t2)
    assert pending_change(env.wh, CORE, "person", t2) == (False, None)
    assert pending_change(env.wh, CORE, "account", t2) == (True, None)  # nothing there: resolve
    # no new rows, but other rules than the state was made under (a value newly blocked): work
    from airflow_provider_nexus.resolution import rules_fingerprint

    same, other = NoiseRules(), NoiseRules.build(blocked_values={"phone": ["+1555"]})
    for rules, expected in [(same, (False, None)), (other, (True, None))]:
        fingerprint = rules_fingerprint("person", "per", rules)
        assert pending_change(env.wh, CORE, "person", t2, resolution_schema=RES, fingerprint=fingerprint) == expected
    s = resolve(env, since=t1)
    assert s.mode == "incremental" and s.retracted_rows == 1 and s.removed == 1
    check_against_reference(env)
    assert ("phone", "+1555") not in current_map(env)


def test_noise_rule_change_state_loss_and_rewritten_core_fall_back_to_full(
    env: Env,
) -> None:
    load(env, giant_rows(300, seed=3))
    noise = NoiseRules.build(hub_limits={"user_id": 5})
    resolve(env, noise=noise)
    t1 = T0 + dt.timedelta(hours=1)
    load(
        env,
        [
            ("web", "n1", "user_id", "id000001", t1),
            ("web", "n1", "email", "new@x.io", t1),
        ],
    )
    s = resolve(env, noise=noise, since=T0)
    assert s.mode == "incremental" and s.fallback_reason == "" and s.touched < 300
    check_against_reference(env, noise)
    # other rules: the whole partition is recomputed (hubs may appear or disappear)
    looser = NoiseRules.build(hub_limits={"user_id": 50})
    s = resolve(env, noise=looser, since=t1)
    assert s.mode == "full" and "noise rules" in s.fallback_reason
    check_against_reference(env, looser)
    s = resolve(env, noise=looser, since=t1)
    assert s.mode == "incremental" and s.batch_rows == 0
    # a lost state table
    env.wh.execute(f'DROP TABLE "{RES}"."nexus_person_edge_members"')
    s = resolve(env, noise=looser, since=t1)
    assert s.mode == "full" and "nexus_person_edge_members" in s.fallback_reason
    # an already-resolved core row rewritten (replace_by_key deletes and re-inserts)
    env.wh.execute(f'DELETE FROM "{CORE}"."nexus_identifiers" WHERE id = \'row0\'')
    env.rows.pop(0)
    s = resolve(env, noise=looser, since=t1)
    assert s.mode == "full" and "core rows" in s.fallback_reason
    check_against_reference(env, looser)
    # a map edited by hand (through the table it is a view of)
    env.wh.execute(f"DELETE FROM {NODES} WHERE identifier_value = 'new@x.io'")
    s = resolve(env, noise=looser, since=t1)
    assert s.mode == "full" and "identity map" in s.fallback_reason
    check_against_reference(env, looser)


def test_a_map_table_of_state_version_2_becomes_a_view_and_keeps_every_id(env: Env) -> None:
    """Up to state version 2 the identity map was a table of its own beside the node table. The
    first run after the upgrade seeds the new node table from that map (not from the old nodes),
    so the full run the version change forces keeps every id, seen-time and resolved_at."""
    load(env, giant_rows(600, seed=3))
    resolve(env)
    before, log_before = full_map(env), log_rows(env)
    # back to version 2's layout: the map a table, the nodes without resolved_at, the state v2
    env.wh.execute(f'CREATE TABLE "{RES}"."legacy_map" AS SELECT * FROM {MAP}')
    env.wh.execute(f"DROP VIEW {MAP}")
    env.wh.execute(f'ALTER TABLE "{RES}"."legacy_map" RENAME TO "nexus_person_identity_map"')
    env.wh.execute(f"ALTER TABLE {NODES} DROP COLUMN resolved_at")
    env.wh.execute(f'UPDATE "{RES}"."nexus_person_resolution_state" SET version = 2')
    env.wh.execute(f"UPDATE {NODES} SET entity_id = 'not_the_map'")  # the map is what counts
    s = resolve(env, since=T0)
    assert s.mode == "full" and "state version 2" in s.fallback_reason
    assert "nexus_person_identity_map" in env.wh.views(RES)
    assert full_map(env) == before and log_rows(env) == log_before
    assert (s.born, s.merged, s.changed_rows) == (0, 0, 0)
    check_against_reference(env)
    assert resolve(env, since=T0).mode == "incremental"


# -- byte order and scratch tables -------------------------------------------------------------------

TRICKY = [
    "B",
    "a",
    "Z",
    "z",
    "",
    " ",
    "~",
    "\x7f",
    "\u00e9",
    "\u00e9a",
    "e\u0301",
    "\u0100",
    "\uffff",
    "\U0001f600",
    "aa",
]


def test_duckdb_binary_collate_is_byte_order() -> None:
    """DuckDBDialect.binary_collate adds nothing: DuckDB already orders (and takes min of)
    VARCHAR by UTF-8 bytes, which is what birth ids rely on."""
    d = DuckDBDialect()
    conn = duckdb.connect()
    conn.execute("CREATE TABLE t (v VARCHAR)")
    conn.executemany("INSERT INTO t VALUES (?)", [[v] for v in TRICKY])
    by_bytes = sorted(TRICKY, key=lambda v: v.encode())
    got = [r[0] for r in conn.execute(f"SELECT v FROM t ORDER BY {d.binary_collate('v')}").fetchall()]
    assert got == by_bytes
    assert conn.execute("SELECT min(v), max(v) FROM t").fetchone() == (by_bytes[0], by_bytes[-1])
    assert conn.execute("SELECT 'B' < 'a', 'z' < '\u00e9'").fetchone() == (True, True)


def test_duckdb_smallest_pair_is_byte_order_type_first() -> None:
    """The one-aggregate smallest (type, value) pair per component orders the type first and
    compares both byte-wise: the same pick as a sort of the UTF-8 bytes."""
    conn = duckdb.connect()
    conn.execute("CREATE TABLE t (cid INTEGER, itype VARCHAR, ivalue VARCHAR)")
    rows = [(cid, itype, v) for cid in (1, 2) for itype in ("phone", "email", "Email") for v in TRICKY]
    rows += [(3, "phone", "a"), (3, "email", "\u00e9"), (3, "email", "z")]  # the type decides, not the value
    conn.executemany("INSERT INTO t VALUES (?, ?, ?)", [list(r) for r in rows])
    sql = DuckDBDialect().smallest_pair("t", "cid", "itype", "ivalue")
    assert sql is not None
    got = {r[0]: (r[1], r[2]) for r in conn.execute(sql).fetchall()}
    expected: dict[int, tuple[str, str]] = {}
    for cid, itype, v in rows:
        best = expected.get(cid)
        if best is None or (itype.encode(), v.encode()) < (best[0].encode(), best[1].encode()):
            expected[cid] = (itype, v)
    assert got == expected
    assert got[3] == ("email", "z")


def test_birth_id_is_the_byte_smallest_identifier(env: Env) -> None:
    # code-point (byte) order: "Z" < "a" < "z" < "\u00e9"; a locale collation would differ
    values = ["\u00e9@x.io", "z@x.io", "a@x.io", "Z@x.io"]
    load(env, [("crm", "g", "email", v, T0) for v in values])
    s = resolve(env)
    assert s.mode == "full" and s.born == 1
    assert set(current_map(env).values()) == {birth_id("email", "Z@x.io")}


def test_scratch_tables_are_temporary_and_dropped(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """Scratch tables are temporary, and none is left after a run. The incremental path drops
    them before its COMMIT (DuckDB's checkpoint there is slower while they exist)."""
    scratch = "SELECT schema_name, table_name FROM duckdb_tables() WHERE table_name LIKE '%\\_\\_tmp\\_%' ESCAPE '\\'"
    run = env.wh._run
    at_commit: list[list[tuple[Any, ...]]] = []
    made: list[str] = []

    def watched(sql: str, params: Any) -> Any:
        if sql == "COMMIT":
            at_commit.append(run(scratch, None).fetchall())
        elif sql.startswith("CREATE OR REPLACE TEMP TABLE"):
            made.append(sql)
        return run(sql, params)

    monkeypatch.setattr(env.wh, "_run", watched)
    load(env, chain_rows(50))
    assert resolve(env).mode == "full"
    t1 = T0 + dt.timedelta(hours=1)
    load(env, [("web", "n1", "email", "new@x.io", t1), ("web", "n1", "email", chain_rows(50)[0][3], t1)])
    assert resolve(env, since=T0).mode == "incremental"
    assert made and len(at_commit) == 2 and at_commit[1] == []
    assert env.wh.fetchall(scratch) == []
    check_against_reference(env)


# -- PostgreSQL (only when a postgres dialect exists and a server answers) ----------------------------


class _ThrowawayPostgresDialect(Dialect):
    """Just enough PostgreSQL for resolution, until the package ships a postgres dialect."""

    name = "postgres"
    sqlglot_name = "postgres"

    def regexp_matches(self, expr: str, pattern: str) -> str:
        return f"({expr} ~ {self.string_literal(pattern)})"


def _postgres_env() -> Env:
    """A PostgreSQL env; skips without psycopg or a server unless CI is set (then it fails)."""
    in_ci = os.environ.get("CI", "").lower() in ("1", "true", "yes")
    try:
        import psycopg
    except ImportError:
        if in_ci:
            raise
        pytest.skip("psycopg is not installed")
    try:
        from airflow_provider_nexus.dialects import get_dialect

        dialect = get_dialect("postgres")
    except NexusConfigError:
        dialect = _ThrowawayPostgresDialect()
    uri = os.environ.get("NEXUS_TEST_POSTGRES_URI", "postgresql://postgres@127.0.0.1:5432/test")
    try:
        conn = psycopg.connect(uri, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        if in_ci:
            pytest.fail(f"CI is set but no PostgreSQL server answers at {uri}: {exc}")
        pytest.skip(f"no PostgreSQL server at {uri}")
    for schema in (CORE, RES):
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    return make_env(dialect, conn)


def _drop_postgres_env(pg: Env) -> None:
    for schema in (CORE, RES):
        pg.wh.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    pg.wh.connection.close()


def fail_before_commit(_: Warehouse) -> None:
    raise RuntimeError("injected failure before commit")


def test_postgres_parallel_scratch_table_is_never_committed() -> None:
    """PostgreSQL reads the identifier stats from an UNLOGGED table (parallel workers cannot read
    temporary tables); it is created and dropped inside the run's transaction, so neither a
    successful run nor a failed one leaves it behind."""
    pg = _postgres_env()
    statements: list[str] = []
    run_one = pg.wh.execute_statement

    def recorded(sql: str) -> Any:
        statements.append(sql)
        return run_one(sql)

    def scratch_tables() -> list[tuple[Any, ...]]:
        return pg.wh.fetchall(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s AND table_name LIKE %s",
            (RES, "%scratch%"),
        )

    pg.wh.execute_statement = recorded  # type: ignore[method-assign]
    try:
        load(pg, chain_rows(60))
        resolve(pg)
        assert any(sql.startswith("CREATE UNLOGGED TABLE") and "__scratch_stats" in sql for sql in statements)
        assert scratch_tables() == []
        mapping = check_against_reference(pg)
        with pytest.raises(RuntimeError, match="injected"):
            resolve(pg, full_refresh=True, before_commit=fail_before_commit)
        assert scratch_tables() == []
        assert current_map(pg) == mapping
    finally:
        _drop_postgres_env(pg)


def test_postgres_groups_per_node_are_counted_sorted_and_the_setting_is_restored() -> None:
    """The groups per node are counted with `enable_hashagg` off; every other statement (the
    component rounds, the star edges), and the session after the run (committed or failed), keeps
    the session's own setting."""
    pg = _postgres_env()
    seen: dict[str, str] = {}
    run_one = pg.wh.execute_statement

    def recorded(sql: str) -> Any:
        for marker in ("__tmp_degree", "__tmp_cc_p1", "__tmp_edges"):
            if sql.startswith("CREATE TEMP TABLE") and marker in sql and marker not in seen:
                seen[marker] = pg.wh.scalar("SELECT current_setting('enable_hashagg')")
        return run_one(sql)

    pg.wh.execute_statement = recorded  # type: ignore[method-assign]
    try:
        load(pg, chain_rows(60))
        resolve(pg)
        assert seen == {"__tmp_degree": "off", "__tmp_cc_p1": "on", "__tmp_edges": "on"}
        assert pg.wh.scalar("SELECT current_setting('enable_hashagg')") == "on"
        with pytest.raises(RuntimeError, match="injected"):
            resolve(pg, full_refresh=True, before_commit=fail_before_commit)
        assert pg.wh.scalar("SELECT current_setting('enable_hashagg')") == "on"
    finally:
        _drop_postgres_env(pg)


def test_postgres_matches_duckdb() -> None:
    pg = _postgres_env()
    try:
        rows = giant_rows(3000, seed=2) + star_rows(200) + chain_rows(300)
        duck = make_env()
        for e in (pg, duck):
            load(e, rows[: len(rows) // 2])
            resolve(e, run_id="a")
            load(
                e,
                [(s, g, t, v, T0 + dt.timedelta(hours=1)) for s, g, t, v, _ in rows[len(rows) // 2 :]],
            )
            sb = resolve(e, run_id="b", since=T0)
            assert sb.mode == "incremental"
            load(
                e,
                [
                    (
                        "hub",
                        f"h{i}",
                        "phone",
                        "+15550009999",
                        T0 + dt.timedelta(hours=2),
                    )
                    for i in range(3)
                ],
            )
            load(
                e,
                [
                    (
                        "hub",
                        f"h{i}",
                        "user_id",
                        f"id{i:06d}",
                        T0 + dt.timedelta(hours=2),
                    )
                    for i in range(3)
                ],
            )
            sc = resolve(
                e,
                run_id="c",
                since=T0 + dt.timedelta(hours=1),
                noise=NoiseRules.build(hub_limits={"phone": 2}),
            )
            assert sc.mode == "full"  # other noise rules than run b
            load(
                e,
                [
                    ("hub", "h9", "phone", "+15550001234", T0 + dt.timedelta(hours=3)),
                    ("hub", "h9", "user_id", "id000009", T0 + dt.timedelta(hours=3)),
                ],
            )
            sd = resolve(
                e,
                run_id="d",
                since=T0 + dt.timedelta(hours=2),
                noise=NoiseRules.build(hub_limits={"phone": 2}),
            )
            assert sd.mode == "incremental"
        assert full_map(pg) == full_map(duck)
        assert sorted(log_rows(pg), key=repr) == sorted(log_rows(duck), key=repr)
        check_against_reference(pg, NoiseRules.build(hub_limits={"phone": 2}))
    finally:
        _drop_postgres_env(pg)
