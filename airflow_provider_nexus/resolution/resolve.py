"""Resolve one entity type: identifiers -> exact components -> stable entity ids.

Each call recomputes the partition over every identifier ever loaded (so it is always exact and
identifiers whose edge_id partners arrive in different batches link), then assigns ids against
the previous identity map:

* a component with no previously mapped identifier is **born**: its id is the hash of its
  smallest ``(identifier_type, identifier_value)`` (byte order);
* a component holding identifiers of exactly one existing entity keeps that id; its new
  identifiers are **accreted**;
* a component holding identifiers of two or more existing entities is a **merge**: the survivor
  is the entity with the most identifiers in the previous map (tie: the smaller entity_id); every
  identifier of a loser is re-pointed and logged **merged** with ``previous_entity_id``;
* **split** (only possible when noise rules change, e.g. a value becomes a hub or is blocked):
  an existing entity whose identifiers now fall in several components keeps its id in the
  component holding most of them (tie: the component with the smaller smallest identifier); the
  identifiers in the other components are logged ``split`` with ``previous_entity_id``. A split-off
  component with no other existing entity gets the birth hash of its smallest identifier, or, if
  that id is already taken, a hash that also includes the run id;
* **removed**: an identifier that was in the map and is now blocked (or no longer in core) leaves
  the map and is logged ``removed`` (``entity_id`` NULL, ``previous_entity_id`` set).

Everything is written in one transaction; re-running with no new data changes nothing.
``since`` is accepted for the operator's incremental contract (rows loaded after it are the
batch, reported as ``batch_rows``), but the partition is recomputed over all identifiers.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from airflow_provider_nexus.dialects.base import check_name
from airflow_provider_nexus.errors import NexusDataError
from airflow_provider_nexus.resolution._sql import replace_table, run_statement
from airflow_provider_nexus.resolution.components import connected_components
from airflow_provider_nexus.resolution.noise import NoiseRules
from airflow_provider_nexus.warehouse import Warehouse

LOG_TABLE = "nexus_resolution_log"
AUDIT_TABLE = "nexus_resolution_audit"
CORE_TABLE = "nexus_identifiers"


def ensure_resolution_tables(wh: Warehouse, schema: str, entity_type: str) -> None:
    """Create the identity map of one entity type, the log and the audit table if missing."""
    d = wh.dialect
    txt, ts, big = d.text_type, d.timestamp_type, d.bigint_type
    wh.ensure_schema(schema)
    run_statement(
        wh,
        f"CREATE TABLE IF NOT EXISTS {d.table(schema, map_table_name(entity_type))} (entity_type {txt}, "
        f"identifier_type {txt}, identifier_value {txt}, entity_id {txt}, first_seen_at {ts}, "
        f"last_seen_at {ts}, resolved_at {ts}, is_hub BOOLEAN)",
    )
    run_statement(
        wh,
        f"CREATE TABLE IF NOT EXISTS {d.table(schema, LOG_TABLE)} (entity_type {txt}, identifier_type {txt}, "
        f"identifier_value {txt}, entity_id {txt}, previous_entity_id {txt}, reason {txt}, "
        f"run_id {txt}, resolved_at {ts})",
    )
    run_statement(
        wh,
        f"CREATE TABLE IF NOT EXISTS {d.table(schema, AUDIT_TABLE)} (entity_type {txt}, identifier_type {txt}, "
        f"identifier_value {txt}, kind {txt}, edge_groups {big}, {d.quote('rows')} {big}, "
        f"run_id {txt}, seen_at {ts})",
    )


def map_table_name(entity_type: str) -> str:
    return f"nexus_{check_name(entity_type, 'entity type')}_identity_map"


@dataclass
class ResolutionSummary:
    """What one resolution call did. Counts of born/accreted/merged/split are entities."""

    entity_type: str
    run_id: str = ""
    #: rows in the identity map after the run
    identifiers: int = 0
    #: distinct entities in the map after the run
    entities: int = 0
    #: entities created by this run
    born: int = 0
    #: existing entities that gained identifiers (including merge survivors that gained new ones)
    accreted: int = 0
    #: existing entities that disappeared into a survivor
    merged: int = 0
    #: existing entities that lost identifiers to another component (noise rules changed)
    split: int = 0
    #: identifiers that left the map (newly blocked)
    removed: int = 0
    #: rows appended to nexus_resolution_log
    log_rows: int = 0
    #: map rows inserted or rewritten
    changed_rows: int = 0
    #: identifier rows of core loaded after `since` (all rows when since is None)
    batch_rows: int = 0
    edges: int = 0
    rounds: int = 0
    blocked: int = 0
    hubs: int = 0
    #: nodes whose parent pointer changed in each round
    rows_per_round: list[int] = field(default_factory=list)
    seconds_per_round: list[float] = field(default_factory=list)
    seconds: float = 0.0
    full_refresh: bool = False

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["rows_per_round"] = [int(x) for x in self.rows_per_round]
        out["seconds_per_round"] = [float(x) for x in self.seconds_per_round]
        return out


class _Resolver:
    def __init__(
        self,
        wh: Warehouse,
        *,
        entity_type: str,
        id_prefix: str,
        core_schema: str,
        resolution_schema: str,
        run_id: str,
        resolved_at: datetime,
        noise: NoiseRules,
        max_rounds: int,
        full_refresh: bool,
        since: datetime | None,
    ) -> None:
        self.wh = wh
        self.d = wh.dialect
        self.entity_type = check_name(entity_type, "entity type")
        self.id_prefix = check_name(id_prefix, "id prefix")
        self.core_schema = check_name(core_schema, "core schema")
        self.schema = check_name(resolution_schema, "resolution schema")
        if not run_id:
            raise ValueError("run_id must not be empty")
        self.run_id = run_id
        self.resolved_at = resolved_at
        self.noise = noise
        self.max_rounds = max_rounds
        self.full_refresh = full_refresh
        self.since = since
        self.core = self.d.table(self.core_schema, CORE_TABLE)
        self.map = self.d.table(self.schema, map_table_name(entity_type))
        self.log = self.d.table(self.schema, LOG_TABLE)
        self.audit = self.d.table(self.schema, AUDIT_TABLE)
        self._scratch_names: list[str] = []

    # -- helpers -------------------------------------------------------------------------------
    def t(self, name: str) -> str:
        """A scratch table of this entity type (dropped at the end of the call)."""
        qualified = self.d.table(self.schema, f"nexus_{self.entity_type}__tmp_{name}")
        if qualified not in self._scratch_names:
            self._scratch_names.append(qualified)
        return qualified

    def lit(self, value: Any) -> str:
        return self.d.literal(value)

    def ctas(self, name: str, select_sql: str) -> str:
        target = self.t(name)
        replace_table(self.wh, target, select_sql)
        return target

    def exec(self, sql: str) -> None:
        run_statement(self.wh, sql)

    def count(self, sql: str) -> int:
        return int(self.wh.scalar(sql) or 0)

    def entity_hash(self, itype: str, ivalue: str, *extra: str) -> str:
        sep = self.lit(":")
        parts = [self.lit(self.entity_type), sep, itype, sep, ivalue]
        for e in extra:
            parts += [sep, e]
        digest = self.d.hash_hex(self.d.concat(parts))
        return self.d.concat([self.lit(self.id_prefix + "_"), f"substr({digest}, 1, 16)"])

    def bin(self, expr: str) -> str:
        return self.d.binary_collate(expr)

    # -- DDL -------------------------------------------------------------------------------
    def ensure_tables(self) -> None:
        ensure_resolution_tables(self.wh, self.schema, self.entity_type)

    # -- the run ---------------------------------------------------------------------------
    def run(self) -> ResolutionSummary:
        started = time.perf_counter()
        s = ResolutionSummary(
            entity_type=self.entity_type, run_id=self.run_id, full_refresh=self.full_refresh
        )
        if not self.wh.table_exists(self.core_schema, CORE_TABLE):
            raise NexusDataError(
                f"identity resolution needs {self.core}, which does not exist: run the core layer first"
            )
        with self.wh.transaction():
            self.ensure_tables()
            self._resolve(s)
            # On failure the rollback removes the scratch tables with everything else.
            for name in self._scratch_names:
                run_statement(self.wh, f"DROP TABLE IF EXISTS {name}")
        s.seconds = round(time.perf_counter() - started, 3)
        return s

    def _resolve(self, s: ResolutionSummary) -> None:
        lit, bin_ = self.lit, self.bin
        et = lit(self.entity_type)
        where = (
            f"entity_type = {et} AND identifier_type IS NOT NULL AND identifier_value IS NOT NULL "
            f"AND identifier_value <> ''"
        )
        if self.since is not None and not self.full_refresh:
            s.batch_rows = self.count(
                f"SELECT count(*) FROM {self.core} WHERE {where} AND _loaded_at > {lit(self.since)}"
            )
        else:
            s.batch_rows = self.count(f"SELECT count(*) FROM {self.core} WHERE {where}")

        # 1. identifiers with their edge-group counts, noise flags and dense node ids ----------
        memb = self.ctas(
            "memb",
            f"SELECT DISTINCT COALESCE(source, '') AS source, edge_id, identifier_type AS itype, "
            f"identifier_value AS ivalue FROM {self.core} WHERE {where} AND edge_id IS NOT NULL",
        )
        blocked = self.noise.blocked_predicate(self.d, "i.itype", "i.ivalue")
        limit = self.noise.hub_limit_expr(self.d, "i.itype")
        hub = "FALSE" if limit is None else f"(COALESCE(g.n_groups, 0) > {limit})"
        stats = self.ctas(
            "stats",
            f"""SELECT i.itype, i.ivalue, i.first_seen_at, i.last_seen_at, i.n_rows,
    COALESCE(g.n_groups, 0) AS n_groups,
    {blocked} AS is_blocked,
    CASE WHEN {blocked} THEN FALSE ELSE COALESCE({hub}, FALSE) END AS is_hub
FROM (
    SELECT identifier_type AS itype, identifier_value AS ivalue, min(occurred_at) AS first_seen_at,
        max(occurred_at) AS last_seen_at, count(*) AS n_rows
    FROM {self.core} WHERE {where} GROUP BY identifier_type, identifier_value
) i
LEFT JOIN (SELECT itype, ivalue, count(*) AS n_groups FROM {memb} GROUP BY itype, ivalue) g
    ON g.itype = i.itype AND g.ivalue = i.ivalue""",
        )
        nodes = self.ctas(
            "nodes",
            f"""SELECT ROW_NUMBER() OVER (ORDER BY {bin_("itype")}, {bin_("ivalue")}) AS node,
    itype, ivalue, first_seen_at, last_seen_at, is_hub
FROM {stats} WHERE NOT is_blocked""",
        )
        # 2. edges: a star from each (source, edge_id) group to its smallest node ---------------
        gm = self.ctas(
            "gm",
            f"SELECT m.source, m.edge_id, n.node FROM {memb} m JOIN {nodes} n "
            f"ON n.itype = m.itype AND n.ivalue = m.ivalue WHERE NOT n.is_hub",
        )
        edges = self.ctas(
            "edges",
            f"""SELECT DISTINCT r.rep AS a, g.node AS b
FROM {gm} g
JOIN (SELECT source, edge_id, min(node) AS rep FROM {gm} GROUP BY source, edge_id) r
    ON r.source = g.source AND r.edge_id = g.edge_id
WHERE g.node <> r.rep""",
        )
        s.edges = self.count(f"SELECT count(*) FROM {edges}")
        # 3. exact components ----------------------------------------------------------------
        labels = self.t("labels")
        cc = connected_components(
            self.wh,
            nodes_sql=f"SELECT node FROM {nodes}",
            edges=edges,
            labels=labels,
            scratch=self.t,
            max_rounds=self.max_rounds,
            what=f"identity resolution of {self.entity_type!r}",
        )
        s.rounds, s.rows_per_round, s.seconds_per_round = cc.rounds, cc.rows_per_round, cc.seconds_per_round

        # 4. ids against the previous map ---------------------------------------------------
        cur = self.ctas(
            "cur",
            f"""SELECT n.node, n.itype, n.ivalue, n.first_seen_at, n.last_seen_at, n.is_hub, l.label AS cid,
    m.entity_id AS prev_eid, m.is_hub AS prev_hub, m.first_seen_at AS prev_first,
    m.last_seen_at AS prev_last, m.resolved_at AS prev_resolved_at
FROM {nodes} n
JOIN {labels} l ON l.node = n.node
LEFT JOIN {self.map} m ON m.identifier_type = n.itype AND m.identifier_value = n.ivalue""",
        )
        prev_size = self.ctas(
            "prev_size", f"SELECT entity_id, count(*) AS n_prev FROM {self.map} GROUP BY entity_id"
        )
        # each previous entity is claimed by the component holding most of its identifiers
        claim = self.ctas(
            "claim",
            f"""SELECT prev_eid, cid FROM (
    SELECT prev_eid, cid, ROW_NUMBER() OVER (PARTITION BY prev_eid ORDER BY count(*) DESC, cid) AS rn
    FROM {cur} WHERE prev_eid IS NOT NULL GROUP BY prev_eid, cid
) t WHERE rn = 1""",
        )
        # the survivor of a component: the claimed entity with most identifiers in the old map
        surv = self.ctas(
            "surv",
            f"""SELECT cid, entity_id FROM (
    SELECT c.cid, c.prev_eid AS entity_id,
        ROW_NUMBER() OVER (PARTITION BY c.cid ORDER BY s.n_prev DESC, {bin_("c.prev_eid")}) AS rn
    FROM {claim} c JOIN {prev_size} s ON s.entity_id = c.prev_eid
) t WHERE rn = 1""",
        )
        birth = self.entity_hash("n.itype", "n.ivalue")
        alt = self.entity_hash("n.itype", "n.ivalue", lit("split"), lit(self.run_id))
        comp = self.ctas(
            "comp",
            f"""SELECT c.cid, s.entity_id AS survivor,
    COALESCE(s.entity_id, CASE
        WHEN EXISTS (SELECT 1 FROM {prev_size} p WHERE p.entity_id = {birth}) THEN {alt}
        ELSE {birth} END) AS entity_id
FROM (SELECT DISTINCT cid FROM {cur}) c
JOIN {nodes} n ON n.node = c.cid
LEFT JOIN {surv} s ON s.cid = c.cid""",
        )
        ra = lit(self.resolved_at)
        same = (
            "cur.prev_eid = comp.entity_id AND cur.prev_hub IS NOT DISTINCT FROM cur.is_hub "
            "AND cur.prev_first IS NOT DISTINCT FROM cur.first_seen_at "
            "AND cur.prev_last IS NOT DISTINCT FROM cur.last_seen_at"
        )
        new = self.ctas(
            "new",
            f"""SELECT cur.itype, cur.ivalue, comp.entity_id, cur.first_seen_at, cur.last_seen_at, cur.is_hub,
    cur.prev_eid,
    CASE WHEN cur.prev_eid IS NULL THEN
            CASE WHEN comp.survivor IS NULL THEN 'born' ELSE 'accreted' END
        WHEN cur.prev_eid = comp.entity_id THEN NULL
        WHEN cl.cid = cur.cid THEN 'merged'
        ELSE 'split' END AS reason,
    CASE WHEN {same} THEN cur.prev_resolved_at ELSE {ra} END AS resolved_at,
    CASE WHEN {same} THEN FALSE ELSE TRUE END AS changed
FROM {cur} cur
JOIN {comp} comp ON comp.cid = cur.cid
LEFT JOIN {claim} cl ON cl.prev_eid = cur.prev_eid""",
        )
        # 5. summary counts (before the map changes) ------------------------------------------
        s.born = self.count(f"SELECT count(DISTINCT entity_id) FROM {new} WHERE reason = 'born'")
        s.accreted = self.count(f"SELECT count(DISTINCT entity_id) FROM {new} WHERE reason = 'accreted'")
        s.merged = self.count(f"SELECT count(DISTINCT prev_eid) FROM {new} WHERE reason = 'merged'")
        s.split = self.count(f"SELECT count(DISTINCT prev_eid) FROM {new} WHERE reason = 'split'")
        s.changed_rows = self.count(f"SELECT count(*) FROM {new} WHERE changed")
        gone = (
            f"NOT EXISTS (SELECT 1 FROM {new} n WHERE n.itype = {self.map}.identifier_type "
            f"AND n.ivalue = {self.map}.identifier_value)"
        )
        s.removed = self.count(f"SELECT count(*) FROM {self.map} WHERE {gone}")

        # 6. writes: log, map, audit ---------------------------------------------------------
        log_cols = (
            "entity_type, identifier_type, identifier_value, entity_id, previous_entity_id, "
            "reason, run_id, resolved_at"
        )
        rid = lit(self.run_id)
        if s.removed:
            self.exec(
                f"INSERT INTO {self.log} ({log_cols}) SELECT {et}, identifier_type, identifier_value, "
                f"NULL, entity_id, 'removed', {rid}, {ra} FROM {self.map} WHERE {gone}"
            )
            self.exec(f"DELETE FROM {self.map} WHERE {gone}")
        s.log_rows = s.removed + self.count(f"SELECT count(*) FROM {new} WHERE reason IS NOT NULL")
        self.exec(
            f"""INSERT INTO {self.log} ({log_cols})
SELECT {et}, itype, ivalue, entity_id, prev_eid, reason, {rid}, {ra}
FROM {new} WHERE reason IS NOT NULL
ORDER BY reason, {bin_("itype")}, {bin_("ivalue")}"""
        )
        if s.changed_rows:
            self.exec(
                f"DELETE FROM {self.map} WHERE EXISTS (SELECT 1 FROM {new} n WHERE n.changed "
                f"AND n.itype = {self.map}.identifier_type AND n.ivalue = {self.map}.identifier_value)"
            )
            self.exec(
                f"""INSERT INTO {self.map} (entity_type, identifier_type, identifier_value, entity_id,
    first_seen_at, last_seen_at, resolved_at, is_hub)
SELECT {et}, itype, ivalue, entity_id, first_seen_at, last_seen_at, resolved_at, is_hub
FROM {new} WHERE changed ORDER BY entity_id, {bin_("itype")}, {bin_("ivalue")}"""
            )
        self.exec(f"DELETE FROM {self.audit} WHERE entity_type = {et} AND run_id = {rid}")
        rows_col = self.d.quote("rows")
        self.exec(
            f"""INSERT INTO {self.audit} (entity_type, identifier_type, identifier_value, kind, edge_groups,
    {rows_col}, run_id, seen_at)
SELECT {et}, itype, ivalue, CASE WHEN is_blocked THEN 'blocked' ELSE 'hub' END, n_groups, n_rows, {rid}, {ra}
FROM {stats} WHERE is_blocked OR is_hub"""
        )
        s.blocked = self.count(f"SELECT count(*) FROM {stats} WHERE is_blocked")
        s.hubs = self.count(f"SELECT count(*) FROM {stats} WHERE is_hub")
        s.identifiers = self.count(f"SELECT count(*) FROM {self.map}")
        s.entities = self.count(f"SELECT count(DISTINCT entity_id) FROM {self.map}")


def resolve_entity_type(
    wh: Warehouse,
    *,
    entity_type: str,
    id_prefix: str,
    core_schema: str,
    resolution_schema: str,
    run_id: str,
    resolved_at: datetime,
    noise: NoiseRules | None = None,
    max_rounds: int = 100,
    full_refresh: bool = False,
    since: datetime | None = None,
) -> ResolutionSummary:
    """Resolve every identifier of `entity_type` into stable entity ids (see module docstring).

    ``noise=None`` applies no noise control at all; pass ``NoiseRules.defaults()`` (or rules
    from config) for blocked values and hub limits. Raises ResolutionCapError when the
    components do not converge within ``max_rounds`` rounds (nothing is written then).
    """
    return _Resolver(
        wh,
        entity_type=entity_type,
        id_prefix=id_prefix,
        core_schema=core_schema,
        resolution_schema=resolution_schema,
        run_id=run_id,
        resolved_at=resolved_at,
        noise=noise or NoiseRules(),
        max_rounds=max_rounds,
        full_refresh=full_refresh,
        since=since,
    ).run()
