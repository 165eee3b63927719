"""Resolve one entity type: identifiers -> exact components -> stable entity ids.

Two paths compute the same result:

* **full** (``since`` is None, ``full_refresh``, or the persisted state cannot be trusted):
  the partition is recomputed over every identifier ever loaded;
* **incremental** (``since`` given and the state is valid): only the components touched by the
  rows of ``nexus_identifiers`` loaded after the state's own watermark, or replaced since (the
  core layer copies those to ``nexus_identifiers_retracted``), are recomputed (see
  ``_Resolver._resolve_incremental`` for what "touched" means and why it is closed).

Either way ids are then assigned against the previous identity map:

* a component with no previously mapped identifier is **born**: its id is the hash of its
  smallest ``(identifier_type, identifier_value)`` (byte order);
* a component holding identifiers of exactly one existing entity keeps that id; its new
  identifiers are **accreted**;
* a component holding identifiers of two or more existing entities is a **merge**: the survivor
  is the entity with the most identifiers in the previous map (tie: the smaller entity_id); every
  identifier of a loser is re-pointed and logged **merged** with ``previous_entity_id``;
* **split** (a re-synced row drops the link that held an entity together, a value becomes a hub,
  or the noise rules change): an existing entity whose
  identifiers now fall in several components keeps its id in the component holding most of them
  (tie: the component with the smaller smallest identifier); the identifiers in the other
  components are logged ``split`` with ``previous_entity_id``. A split-off component with no other
  existing entity gets the birth hash of its smallest identifier, or, if that id is already
  taken, the identifier's "split" hash (data only, so DuckDB and PostgreSQL runs agree whatever
  their run ids); only if that is taken too (the same identifier split off twice) does the hash
  include the run id;
* **removed**: an identifier that was in the map and is now blocked or no longer in core (its
  rows were replaced by rows without it) leaves the map and is logged ``removed`` (``entity_id``
  NULL, ``previous_entity_id`` set). Blocking happens on the full path only (the incremental
  path never runs when the rules changed).

Untouched components are fixed points of these rules (their one entity claims them, with the same
identifiers and seen-times), so recomputing only the touched ones gives the same map, log and ids
as the full path for the same history.

State kept between calls in the resolution schema (rewritten by the full path, patched by the
incremental one; only the map view over the nodes is public contract):

* ``nexus_{type}_nodes``: one row per identifier (blocked ones too): integer ``node``, type,
  value, first/last seen, row count, ``n_groups`` (distinct ``(source, edge_id)`` groups, for hub
  detection), ``is_blocked``, ``is_hub``, the component ``label`` (smallest node id of the
  component), the ``entity_id`` and ``resolved_at`` (when that row's entity, flags or sightings
  last changed). The identity map ``nexus_{type}_identity_map`` is a view of its rows that are
  not blocked, so each identifier is written once per run that changes it;
* ``nexus_{type}_edge_groups``: integer ``gid`` per ``(source, edge_id)``;
* ``nexus_{type}_edge_members``: ``(gid, node)`` memberships with their core row count (a pair
  whose count drops to zero leaves the group);
* ``nexus_{type}_resolution_state``: one row: state version, fingerprint of the noise rules and
  id prefix, the ``_loaded_at`` watermark and row count of core covered, map row count, entity
  count, highest node id and gid.

Everything is written in one transaction; re-running with no new data changes nothing. Where DDL
commits an open transaction (Snowflake, BigQuery, Databricks: ``transactional_ddl = False``), the
run first computes everything in temporary tables and queues its writes to the permanent tables,
then applies them as DML only, in one transaction; the other state tables are a cache
validated against the map (the node rows), so an interruption at any point leaves the map and
log consistent.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from airflow_provider_nexus.dialects.base import Dialect, check_name
from airflow_provider_nexus.errors import NexusDataError, ResolutionCapError
from airflow_provider_nexus.layers.common import ensure_indexes, retracted_table_name
from airflow_provider_nexus.resolution._sql import drop_table, integer_aggregate, replace_table, run_statement
from airflow_provider_nexus.resolution.components import connected_components
from airflow_provider_nexus.resolution.noise import NoiseRules
from airflow_provider_nexus.warehouse import Warehouse

LOG_TABLE = "nexus_resolution_log"
AUDIT_TABLE = "nexus_resolution_audit"
CORE_TABLE = "nexus_identifiers"
#: Copies of core identifier rows the core layer replaced (a re-synced event): the incremental
#: path subtracts them, so replaced rows need no full pass.
RETRACTED_TABLE = retracted_table_name("identifiers")

#: Bump when the layout or meaning of the state tables changes: old state then forces a full run.
#: 3: the identity map became a view of the node table (which gained `resolved_at`).
STATE_VERSION = 3
#: Layout of each state table: column -> kind (mapped to the dialect's type when created).
STATE_LAYOUTS: dict[str, dict[str, str]] = {
    "nodes": {
        "node": "big",
        "identifier_type": "text",
        "identifier_value": "text",
        "first_seen_at": "ts",
        "last_seen_at": "ts",
        "n_rows": "big",
        "n_groups": "big",
        "is_blocked": "bool",
        "is_hub": "bool",
        "label": "big",
        "entity_id": "text",
        "resolved_at": "ts",
    },
    "groups": {"gid": "big", "source": "text", "edge_id": "text"},
    "members": {"gid": "big", "node": "big", "n_rows": "big"},
    "state": {
        "version": "big",
        "fingerprint": "text",
        "loaded_high": "ts",
        "loaded_rows": "big",
        "map_rows": "big",
        "entities": "big",
        "max_node": "big",
        "max_gid": "big",
    },
}
NODES_COLUMNS = list(STATE_LAYOUTS["nodes"])
STATE_COLUMNS = list(STATE_LAYOUTS["state"])


def ensure_resolution_tables(wh: Warehouse, schema: str, entity_type: str) -> None:
    """Create the identity map of one entity type (and the node table it reads), the log and
    the audit table if missing."""
    d = wh.dialect
    txt, ts, big = d.text_type, d.timestamp_type, d.bigint_type
    wh.ensure_schema(schema)
    _ensure_identity_map(wh, schema, entity_type)
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


def _ensure_identity_map(wh: Warehouse, schema: str, entity_type: str) -> None:
    """The identity map is a view of the node table's linkable rows, so resolution writes each
    identifier's row once (the map and the incremental state would otherwise hold the same
    5.7M strings of a 1M-person base twice).

    A map that is still a table (state version 2 and before) seeds the new node table with its
    rows, so the full run that the version change forces keeps every entity id.
    """
    d = wh.dialect
    map_name, nodes_name = map_table_name(entity_type), state_table_names(entity_type)["nodes"]
    map_t, nodes_t = d.table(schema, map_name), d.table(schema, nodes_name)
    have_nodes = wh.columns(schema, nodes_name)
    map_is_view = map_name in wh.views(schema)
    if have_nodes == NODES_COLUMNS and map_is_view:
        return
    legacy_map = not map_is_view and wh.table_exists(schema, map_name)
    if map_is_view:
        run_statement(wh, f"DROP VIEW {map_t}")
    if have_nodes:
        run_statement(wh, f"DROP TABLE {nodes_t}")
    run_statement(wh, _create_state_table(d, nodes_t, "nodes"))
    if legacy_map:
        big = d.bigint_type
        run_statement(
            wh,
            f"""INSERT INTO {nodes_t} ({", ".join(NODES_COLUMNS)})
SELECT CAST(NULL AS {big}), identifier_type, identifier_value, first_seen_at, last_seen_at, CAST(NULL AS {big}),
    CAST(NULL AS {big}), FALSE, is_hub, CAST(NULL AS {big}), entity_id, resolved_at
FROM {map_t}""",
        )
        run_statement(wh, f"DROP TABLE {map_t}")
    run_statement(
        wh,
        f"""CREATE VIEW {map_t} AS
SELECT CAST({d.literal(entity_type)} AS {d.text_type}) AS entity_type, identifier_type, identifier_value, entity_id,
    first_seen_at, last_seen_at, resolved_at, is_hub
FROM {nodes_t} WHERE NOT is_blocked""",
    )


def _create_state_table(d: Dialect, table: str, kind: str) -> str:
    """CREATE TABLE of state table `kind` with its layout, in the dialect's types."""
    types = {"big": d.bigint_type, "text": d.text_type, "ts": d.timestamp_type, "bool": d.boolean_type}
    return f"CREATE TABLE {table} ({', '.join(f'{col} {types[k]}' for col, k in STATE_LAYOUTS[kind].items())})"


#: Keys the identity map is looked up by: an identifier, an entity's identifiers.
MAP_INDEXES: list[tuple[str, ...]] = [("identifier_value", "identifier_type"), ("entity_id",)]


def ensure_resolution_indexes(wh: Warehouse, schema: str, entity_type: str) -> None:
    """Secondary indexes of an identity map (on the node table it is a view of) and the log,
    where the engine has them (see Dialect.create_index); readers of what changed filter both
    by `resolved_at`.

    Not made with the tables: a first full resolution writes the nodes faster without them.
    """
    nodes = state_table_names(entity_type)["nodes"]
    ensure_indexes(wh, schema, nodes, MAP_INDEXES, load_time="resolved_at")
    ensure_indexes(wh, schema, LOG_TABLE, [], load_time="resolved_at")


def map_table_name(entity_type: str) -> str:
    return f"nexus_{check_name(entity_type, 'entity type')}_identity_map"


def state_table_names(entity_type: str) -> dict[str, str]:
    """The incremental state tables of one entity type (kind -> table name)."""
    et = check_name(entity_type, "entity type")
    return {
        "nodes": f"nexus_{et}_nodes",
        "groups": f"nexus_{et}_edge_groups",
        "members": f"nexus_{et}_edge_members",
        "state": f"nexus_{et}_resolution_state",
    }


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
    #: previously resolved core rows replaced or dropped since (incremental path only)
    retracted_rows: int = 0
    #: edges the component search ran on: all on the full path, the touched ones otherwise (those
    #: between whole old components when the batch only added rows)
    edges: int = 0
    rounds: int = 0
    blocked: int = 0
    hubs: int = 0
    #: nodes whose parent pointer changed in each round
    rows_per_round: list[int] = field(default_factory=list)
    seconds_per_round: list[float] = field(default_factory=list)
    seconds: float = 0.0
    full_refresh: bool = False
    #: "full" or "incremental"
    mode: str = "full"
    #: why a call with `since` ran the full path ("" when it did not)
    fallback_reason: str = ""
    #: identifiers whose components were recomputed
    touched: int = 0

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["rows_per_round"] = [int(x) for x in self.rows_per_round]
        out["seconds_per_round"] = [float(x) for x in self.seconds_per_round]
        return out


@dataclass
class _State:
    version: int
    fingerprint: str
    loaded_high: Any
    loaded_rows: int
    map_rows: int
    entities: int
    max_node: int
    max_gid: int


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
        before_commit: Callable[[Warehouse], None] | None = None,
    ) -> None:
        self.wh = wh
        self.before_commit = before_commit
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
        self.retracted = self.d.table(self.core_schema, RETRACTED_TABLE)
        self.map = self.d.table(self.schema, map_table_name(entity_type))
        self.log = self.d.table(self.schema, LOG_TABLE)
        self.audit = self.d.table(self.schema, AUDIT_TABLE)
        self.state_names = state_table_names(entity_type)
        self.nodes_t = self.d.table(self.schema, self.state_names["nodes"])
        self.groups_t = self.d.table(self.schema, self.state_names["groups"])
        self.members_t = self.d.table(self.schema, self.state_names["members"])
        self.state_t = self.d.table(self.schema, self.state_names["state"])
        self.fingerprint = self._fingerprint()
        self._scratch_names: list[str] = []
        #: scratch tables made by `parallel_ctas`: short name -> qualified name
        self._shared_scratch: dict[str, str] = {}
        #: writes to permanent tables queued until the computation is done (None: run them at once)
        self._pending: list[str] | None = None if self.d.transactional_ddl else []

    # -- helpers -------------------------------------------------------------------------------
    def t(self, name: str) -> str:
        """A scratch table of this entity type (dropped at the end of the call)."""
        # a temporary table: unqualified (it lives in the session's temp schema)
        qualified = self.d.quote(f"nexus_{self.entity_type}__tmp_{name}")
        if qualified not in self._scratch_names:
            self._scratch_names.append(qualified)
        return qualified

    def lit(self, value: Any) -> str:
        return self.d.literal(value)

    def ctas(self, name: str, select_sql: str) -> str:
        target = self.t(name)
        replace_table(self.wh, target, select_sql, temp=True)
        return target

    def parallel_ctas(self, name: str, select_sql: str) -> str:
        """A scratch table that parallel query workers can read, where temporary tables are read
        by the leader alone (PostgreSQL); elsewhere the same as `ctas`.

        On PostgreSQL it is an UNLOGGED table in the resolution schema (no WAL, like a temporary
        table), created and dropped (`drop`) inside the run's transaction: no other session ever
        sees it, and a failure rolls it back with everything else.
        """
        kind = self.d.parallel_scratch_kind
        if kind is None:
            return self.ctas(name, select_sql)
        target = self.d.table(self.schema, f"nexus_{self.entity_type}__scratch_{name}")
        self._shared_scratch[name] = target
        replace_table(self.wh, target, select_sql, kind=kind)
        return target

    def drop(self, *names: str) -> None:
        """Drop scratch tables that are no longer needed (keeps the peak memory of temp tables down)."""
        for name in names:
            shared = name in self._shared_scratch
            table = self._shared_scratch[name] if shared else self.t(name)
            if self._pending and any(table in sql for sql in self._pending):
                continue  # a queued write still reads it
            drop_table(self.wh, table, temp=not shared)
            self._shared_scratch.pop(name, None)

    def exec(self, sql: str) -> None:
        """A statement on scratch tables (or a read): runs now."""
        run_statement(self.wh, sql)

    def write(self, sql: str) -> None:
        """DML on a permanent table: runs now inside the run's transaction, or is queued for it."""
        if self._pending is None:
            run_statement(self.wh, sql)
        else:
            self._pending.append(sql)

    def _ensure_state_table(self, kind: str) -> None:
        """Create state table `kind` with its layout (replacing one with another layout)."""
        name = self.state_names[kind]
        layout = STATE_LAYOUTS[kind]
        have = self.wh.columns(self.schema, name)
        if have == list(layout):
            return
        d = self.d
        table = d.table(self.schema, name)
        if have:
            run_statement(self.wh, f"DROP TABLE {table}")
        run_statement(self.wh, _create_state_table(d, table, kind))

    def _rebuild(self, kind: str, select_sql: str) -> str:
        """Full path: state table `kind` := `select_sql`; returns the relation to read it from."""
        table = self.d.table(self.schema, self.state_names[kind])
        if self._pending is None and (kind != "nodes" or self.d.supports_create_or_replace):
            replace_table(self.wh, table, select_sql)
            return table
        # Refilled, not replaced: the map is a view of the nodes, and where DDL commits (queued
        # writes) the rows are staged first, so the transaction holds DML only.
        self._ensure_state_table(kind)
        cols = ", ".join(STATE_LAYOUTS[kind])
        if self._pending is None:
            rows, result = select_sql, table
        else:
            staged = self.ctas(f"next_{kind}", select_sql)
            rows, result = f"SELECT {cols} FROM {staged}", staged
        self.write(self.d.empty_table(table))
        self.write(f"INSERT INTO {table} ({cols}) {rows}")
        analyze = self.d.analyze(table) if self._pending is None else None
        if analyze:
            self.exec(analyze)
        return result

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

    def where(self, alias: str = "") -> str:
        """The identifier rows of this entity type that take part in resolution."""
        p = f"{alias}." if alias else ""
        return (
            f"{p}entity_type = {self.lit(self.entity_type)} AND {p}identifier_type IS NOT NULL "
            f"AND {p}identifier_value IS NOT NULL AND {p}identifier_value <> ''"
        )

    def hub_expr(self, type_expr: str, groups_expr: str, blocked_expr: str) -> str:
        limit = self.noise.hub_limit_expr(self.d, type_expr)
        if limit is None:
            return "FALSE"
        return f"(NOT {blocked_expr} AND COALESCE({groups_expr} > {limit}, FALSE))"

    def _fingerprint(self) -> str:
        return rules_fingerprint(self.entity_type, self.id_prefix, self.noise)

    # -- the run ---------------------------------------------------------------------------
    def run(self) -> ResolutionSummary:
        started = time.perf_counter()
        s = ResolutionSummary(
            entity_type=self.entity_type,
            run_id=self.run_id,
            full_refresh=self.full_refresh,
        )
        if not self.wh.table_exists(self.core_schema, CORE_TABLE):
            raise NexusDataError(
                f"identity resolution needs {self.core}, which does not exist: run the core layer first"
            )
        if self._pending is None:
            with self.wh.transaction():  # DDL included: a failure leaves no trace at all
                ensure_resolution_tables(self.wh, self.schema, self.entity_type)
                self._compute(s)
                if self.before_commit is not None:
                    self.before_commit(self.wh)
                if s.mode == "incremental":
                    # Before the COMMIT: where it checkpoints (DuckDB, once its WAL is large), that
                    # checkpoint was slower with the increment's scratch tables still there:
                    # 0.28-0.47 s with them dropped, 0.81-1.28 s not (1% of rows on a 1M-person
                    # base). Dropped first, the full path measured 0.4-1.0 s slower: it drops
                    # them after the COMMIT.
                    self._drop_scratch()
        else:
            ensure_resolution_tables(self.wh, self.schema, self.entity_type)
            self._compute(s)
            with self.wh.transaction():
                for sql in self._pending:
                    run_statement(self.wh, sql)
                if self.before_commit is not None:
                    self.before_commit(self.wh)
        self._drop_scratch()  # on failure the rollback, or the session's end, removes them
        if not self.noise.is_empty:  # without rules nothing is flagged (a rule change forces a full run)
            s.blocked, s.hubs = self.wh.fetchone(
                f"SELECT count(CASE WHEN is_blocked THEN 1 END), count(CASE WHEN is_hub THEN 1 END) FROM {self.nodes_t}"
            ) or (0, 0)
            s.blocked, s.hubs = int(s.blocked or 0), int(s.hubs or 0)
        s.seconds = round(time.perf_counter() - started, 3)
        return s

    def _drop_scratch(self) -> None:
        """Drop every scratch table not dropped yet."""
        for name in self._scratch_names:
            drop_table(self.wh, name, temp=True)
        for name in self._shared_scratch.values():  # one a path did not drop itself
            drop_table(self.wh, name)
        self._scratch_names.clear()
        self._shared_scratch.clear()

    def _compute(self, s: ResolutionSummary) -> None:
        state, reason = self._usable_state()
        if state is not None:
            s.mode = "incremental"
            self._resolve_incremental(s, state)
        else:
            s.mode = "full"
            s.fallback_reason = reason
            self._resolve_full(s)

    def _usable_state(self) -> tuple[_State | None, str]:
        """The persisted state if the incremental path may run, else (None, why not)."""
        if self.since is None or self.full_refresh:
            return None, ""
        for kind, layout in STATE_LAYOUTS.items():
            have = self.wh.columns(self.schema, self.state_names[kind])
            if not have:
                return None, f"no state table {self.state_names[kind]}"
            if have != list(layout):
                return None, f"state table {self.state_names[kind]} has another layout"
        rows = self.wh.fetchall(f"SELECT {', '.join(STATE_COLUMNS)} FROM {self.state_t}")
        if len(rows) != 1:
            return None, "no state row"
        st = _State(*rows[0])
        if st.version != STATE_VERSION:
            return None, f"state version {st.version} is not {STATE_VERSION}"
        if st.fingerprint != self.fingerprint:
            return None, "noise rules or id prefix changed"
        old = self._old_rows(st.loaded_high)
        expected = st.loaded_rows - self._retracted_old_rows(st.loaded_high)
        if old != expected:
            return None, (
                f"core rows loaded up to the state's watermark changed ({expected} -> {old}) beyond what "
                f"{self.retracted} records: rows were replaced without a record (a core full refresh) "
                "or arrived with an old _loaded_at"
            )
        map_rows = self.count(f"SELECT count(*) FROM {self.map}")
        if map_rows != st.map_rows:
            return (
                None,
                f"the identity map changed outside resolution ({st.map_rows} -> {map_rows} rows)",
            )
        return st, ""

    def _old_rows(self, high: Any) -> int:
        if high is None:
            return self.count(f"SELECT count(*) FROM {self.core} WHERE {self.where()} AND _loaded_at IS NULL")
        return self.count(
            f"SELECT count(*) FROM {self.core} WHERE {self.where()} "
            f"AND (_loaded_at IS NULL OR _loaded_at <= {self.lit(high)})"
        )

    def _retracted_since(self, high: Any) -> str | None:
        """Rows the state had counted (loaded up to `high`) that core replaced after it, or None."""
        if high is None or not self.wh.table_exists(self.core_schema, RETRACTED_TABLE):
            return None
        return (
            f"SELECT * FROM {self.retracted} WHERE {self.where()} "
            f"AND _loaded_at <= {self.lit(high)} AND _retracted_at > {self.lit(high)}"
        )

    def _retracted_old_rows(self, high: Any) -> int:
        rows = self._retracted_since(high)
        return 0 if rows is None else self.count(f"SELECT count(*) FROM ({rows}) r")

    # -- full path -------------------------------------------------------------------------
    def _resolve_full(self, s: ResolutionSummary) -> None:
        bin_ = self.bin
        where = self.where()
        total, high = self.wh.fetchone(f"SELECT count(*), max(_loaded_at) FROM {self.core} WHERE {where}") or (
            0,
            None,
        )
        total = int(total or 0)
        if self.since is not None and not self.full_refresh:
            s.batch_rows = self.count(
                f"SELECT count(*) FROM {self.core} WHERE {where} AND _loaded_at > {self.lit(self.since)}"
            )
        else:
            s.batch_rows = total
        self._ensure_state_table("state")  # written by DML on every path (the others: `_rebuild`)

        # 1. identifiers and (source, edge_id) groups, numbered densely in no particular order -----
        blocked = self.noise.blocked_predicate(self.d, "i.itype", "i.ivalue")
        stats = self.parallel_ctas(
            "stats",
            f"""SELECT {self.d.row_ids(f"{bin_('i.itype')}, {bin_('i.ivalue')}")} AS node,
    i.itype, i.ivalue, i.first_seen_at, i.last_seen_at, i.n_rows, {blocked} AS is_blocked
FROM (
    SELECT identifier_type AS itype, identifier_value AS ivalue, min(occurred_at) AS first_seen_at,
        max(occurred_at) AS last_seen_at, count(*) AS n_rows
    FROM {self.core} WHERE {where} GROUP BY identifier_type, identifier_value
) i""",
        )
        group_lists = self._group_lists(stats)
        if group_lists:
            groups_t = self._rebuild("groups", f"SELECT gid, source, edge_id FROM {group_lists}")
            members_t = self._rebuild(
                "members",
                f"""SELECT gid, node, count(*) AS n_rows
FROM (SELECT gid, {self.d.unnest_list("nodes")} AS node FROM {group_lists}) m
GROUP BY gid, node""",
            )
        else:
            groups_t = self._rebuild(
                "groups",
                f"""SELECT {self.d.row_ids(f"{bin_('g.source')}, {bin_('g.edge_id')}")} AS gid, g.source, g.edge_id
FROM (SELECT DISTINCT COALESCE(source, '') AS source, edge_id FROM {self.core}
      WHERE {where} AND edge_id IS NOT NULL) g""",
            )
            # memberships: core rows joined to their group and node first, then counted per
            # integer pair (a (group, identifier) pair is nearly always one row, so counting the
            # string keys first would shrink nothing and cost a second string aggregate)
            members_t = self._rebuild(
                "members",
                f"""SELECT g.gid, n.node, count(*) AS n_rows
FROM {self.core} c
JOIN {groups_t} g ON g.source = COALESCE(c.source, '') AND g.edge_id = c.edge_id
JOIN {stats} n ON n.itype = c.identifier_type AND n.ivalue = c.identifier_value
WHERE {self.where("c")} AND c.edge_id IS NOT NULL
GROUP BY g.gid, n.node""",
            )
        # groups per node, integers only (a node in no group has no row)
        with integer_aggregate(self.wh):
            degree = self.ctas("degree", f"SELECT node, count(*) AS n_groups FROM {members_t} GROUP BY node")
        flagged = self._flagged_nodes(stats, degree)
        # 2. edges: a star from each group to its smallest linkable node ---------------------------
        edges = self._star_edges(members_t, flagged, group_lists)
        if group_lists:
            self.drop("group_lists")
        s.edges = self.count(f"SELECT count(*) FROM {edges}")
        # 3. exact components ----------------------------------------------------------------
        # The labels carry each node's identifier and sightings, so the smallest identifiers and
        # the node rows need no join back to the stats: at 1M persons on PostgreSQL the three
        # statements took 24.8 s against 29.7 s; DuckDB was no slower.
        labelled = f"SELECT node, itype, ivalue, first_seen_at, last_seen_at, n_rows FROM {stats} WHERE NOT is_blocked"
        labels = self._components(s, labelled, edges, names=stats)
        self.drop("gm", "edges")

        # 4. ids against the previous map ---------------------------------------------------
        map_before = self.count(f"SELECT count(*) FROM {self.map}")
        node_rows = f"""{labels} l
LEFT JOIN {degree} g ON g.node = l.node"""
        if flagged:
            node_rows += f"\nLEFT JOIN {flagged} x ON x.node = l.node"
        # labels hold no blocked node, so a flagged one here is a hub
        node_columns = f"""l.node, l.itype, l.ivalue, l.first_seen_at, l.last_seen_at, l.n_rows,
    COALESCE(g.n_groups, 0) AS n_groups, {"x.node IS NOT NULL" if flagged else "FALSE"} AS is_hub"""
        if map_before:
            cur = self.ctas(
                "cur",
                f"""SELECT {node_columns}, l.label AS cid, m.entity_id AS prev_eid, m.is_hub AS prev_hub,
    m.first_seen_at AS prev_first, m.last_seen_at AS prev_last, m.resolved_at AS prev_resolved
FROM {node_rows}
LEFT JOIN {self.map} m ON m.identifier_type = l.itype AND m.identifier_value = l.ivalue""",
            )
            prev_size = self.ctas(
                "prev_size",
                f"SELECT entity_id, count(*) AS n_prev FROM {self.map} GROUP BY entity_id",
            )
            new = self._assign_ids(s, cur, prev_size, taken=prev_size)
            s.entities = self.count(f"SELECT count(*) FROM {self.t('comp')}")  # one row per component
            self.drop("cur", "prev_size", "cmin", "claim", "surv", "comp0", "in_use", "comp")
        else:  # first run: nothing to join the (empty) map on
            first_rows = self._first_run_rows(s, labels, node_rows, node_columns)
            s.entities = s.born  # every component is born

        def gone(m: str) -> str:  # map rows (referred to as `m`) whose identifier is no longer linkable
            return (
                f"NOT EXISTS (SELECT 1 FROM {stats} n WHERE NOT n.is_blocked AND n.itype = {m}.identifier_type "
                f"AND n.ivalue = {m}.identifier_value)"
            )

        s.removed = self.count(f"SELECT count(*) FROM {self.map} m WHERE {gone('m')}") if map_before else 0

        # 5. writes ---------------------------------------------------------------------------
        if s.removed:
            self.write(
                f"INSERT INTO {self.log} ({self._log_cols}) SELECT {self.lit(self.entity_type)}, "
                f"identifier_type, identifier_value, NULL, entity_id, 'removed', {self.lit(self.run_id)}, "
                f"{self.lit(self.resolved_at)} FROM {self.map} m WHERE {gone('m')}"
            )  # the node rows rewritten below no longer hold them, so they leave the map
        s.log_rows = s.removed
        ra = self.lit(self.resolved_at)
        if map_before:
            self._write_log(s, new)
            linked, resolved = new, f"CASE WHEN changed THEN {ra} ELSE prev_resolved END"
        else:  # the node rows are written straight from the join; the log then reads them
            linked, resolved = f"({first_rows}) new", ra
        nodes = f"""SELECT node, itype AS identifier_type, ivalue AS identifier_value, first_seen_at, last_seen_at,
    n_rows, n_groups, FALSE AS is_blocked, is_hub, label, entity_id, {resolved} AS resolved_at
FROM {linked}"""
        if flagged:  # blocked identifiers keep a node row (flagged, in no component)
            nodes += f"""
UNION ALL
SELECT n.node, n.itype, n.ivalue, n.first_seen_at, n.last_seen_at, n.n_rows, COALESCE(g.n_groups, 0), TRUE, FALSE,
    CAST(NULL AS {self.d.bigint_type}), CAST(NULL AS {self.d.text_type}), {ra}
FROM {stats} n LEFT JOIN {degree} g ON g.node = n.node WHERE n.is_blocked"""
        written = self._rebuild("nodes", nodes)
        # after the writes the map holds exactly the linkable (not blocked) identifiers: one per label row
        s.identifiers = self.count(f"SELECT count(*) FROM {labels}")
        if not map_before:
            self._write_first_log(s, written)
            self.drop("cur", "comp")  # `_first_run_rows` dropped cmin
        self.drop("stats")  # inside the transaction: a shared scratch table is never seen committed
        self._finish(s, loaded_high=high, loaded_rows=total)

    # -- incremental path ------------------------------------------------------------------
    def _resolve_incremental(self, s: ResolutionSummary, st: _State) -> None:
        """Recompute only the components the batch touches.

        The batch is every row loaded after the state's own watermark (which is the previous
        run's; the operator's ``since`` is the same instant), less the rows the state had counted
        that core has replaced since (copied to ``nexus_identifiers_retracted``). Row counts per
        identifier and per (group, identifier) pair move by the difference; a pair whose count
        reaches zero leaves its group, an identifier whose count reaches zero leaves the map
        (``removed``). Touched nodes are:

        * the batch's identifiers, added or retracted (new nodes get ids above the highest one),
        * every member of a group that gained or lost a member,
        * every member of every group of a value that stopped being a hub (it links them now);

        and the recomputed set T is every identifier of the *old* components of those nodes, plus
        the new ones. T is closed: a group with a non-hub member in T either changed membership
        (all its members are touched), or holds a value whose hub flag changed (one that became a
        hub was linking the group, so the group was inside that value's old component; one that
        stopped being a hub touched the whole group), or is unchanged and already linked all its
        non-hub members in the old partition (same old component, so in T). The old entities in
        T are exactly the old components in T, so claims, survivors and sizes computed inside T
        equal the full path's; everything outside T is a fixed point of the id rules.

        When the batch only adds rows and makes no new hub, the search runs on the old
        components of T as whole nodes (see ``_join_old_components``).
        """
        d, lit, bin_ = self.d, self.lit, self.bin
        cut = st.loaded_high
        cond = "TRUE" if cut is None else f"_loaded_at > {lit(cut)}"
        # The batch as signed rows: +1 loaded since the cut, -1 counted before and replaced since.
        # `stamp` is when the change reached core; the new watermark covers both kinds.
        cols = (
            "COALESCE(source, '') AS source, edge_id, identifier_type AS itype, identifier_value AS ivalue, occurred_at"
        )
        signed = f"SELECT {cols}, 1 AS sign, _loaded_at AS stamp FROM {self.core} WHERE {self.where()} AND {cond}"
        retracted = self._retracted_since(cut)
        if retracted:
            signed += f" UNION ALL SELECT {cols}, -1, _retracted_at FROM ({retracted}) r"
        b = self.ctas("b", signed)
        added, removed_rows, high = self.wh.fetchone(
            f"SELECT count(CASE WHEN sign = 1 THEN 1 END), count(CASE WHEN sign = -1 THEN 1 END), max(stamp) FROM {b}"
        ) or (0, 0, None)
        s.batch_rows, s.retracted_rows = int(added or 0), int(removed_rows or 0)
        if s.batch_rows == 0 and s.retracted_rows == 0:
            self._empty_incremental(s, st)
            return

        # 1. batch identifiers, with their old state (if any) and node ids for new ones ------------
        blocked = self.noise.blocked_predicate(d, "i.itype", "i.ivalue")
        plus, minus_ = "CASE WHEN sign = 1 THEN occurred_at END", "CASE WHEN sign = -1 THEN occurred_at END"
        bn = self.ctas(
            "bn",
            f"""SELECT CASE WHEN o.node IS NULL THEN {int(st.max_node)} + {d.row_ids(f"{bin_('i.itype')}, {bin_('i.ivalue')}", "o.node IS NULL")}
        ELSE o.node END AS node,
    i.itype, i.ivalue, o.node IS NULL AS is_new,
    CASE WHEN o.node IS NULL THEN {blocked} ELSE o.is_blocked END AS is_blocked,
    i.b_first, i.b_last, i.b_rows, i.r_rows, i.r_first, i.r_last,
    o.first_seen_at AS o_first, o.last_seen_at AS o_last, o.n_rows AS o_rows, o.n_groups AS o_groups,
    o.is_hub AS o_hub
FROM (
    SELECT itype, ivalue, min({plus}) AS b_first, max({plus}) AS b_last,
        count(CASE WHEN sign = 1 THEN 1 END) AS b_rows, count(CASE WHEN sign = -1 THEN 1 END) AS r_rows,
        min({minus_}) AS r_first, max({minus_}) AS r_last
    FROM {b} GROUP BY itype, ivalue
) i
LEFT JOIN {self.nodes_t} o ON o.identifier_type = i.itype AND o.identifier_value = i.ivalue
WHERE o.node IS NOT NULL OR i.b_rows > 0""",
        )
        # 2. new groups, and the (group, identifier) pairs whose row count moved -------------------
        bg = self.ctas(
            "bg",
            f"""SELECT x.source, x.edge_id, g.gid FROM (
    SELECT DISTINCT source, edge_id FROM {b} WHERE edge_id IS NOT NULL
) x LEFT JOIN {self.groups_t} g ON g.source = x.source AND g.edge_id = x.edge_id""",
        )
        newg = self.ctas(
            "newg",
            f"""SELECT {int(st.max_gid)} + {d.row_ids(f"{bin_('source')}, {bin_('edge_id')}")} AS gid,
    source, edge_id
FROM {bg} WHERE gid IS NULL""",
        )
        self.write(f"INSERT INTO {self.groups_t} (gid, source, edge_id) SELECT gid, source, edge_id FROM {newg}")
        bgid = self.ctas(
            "bgid",
            f"SELECT source, edge_id, gid FROM {bg} WHERE gid IS NOT NULL "
            f"UNION ALL SELECT source, edge_id, gid FROM {newg}",
        )
        pc = self.ctas(
            "pc",
            f"""SELECT p.gid, p.node, COALESCE(m.n_rows, 0) AS o_rows, COALESCE(m.n_rows, 0) + p.delta AS n_rows
FROM (
    SELECT g.gid, n.node, sum(r.sign) AS delta
    FROM {b} r
    JOIN {bgid} g ON g.source = r.source AND g.edge_id = r.edge_id
    JOIN {bn} n ON n.itype = r.itype AND n.ivalue = r.ivalue
    GROUP BY g.gid, n.node
) p
LEFT JOIN {self.members_t} m ON m.gid = p.gid AND m.node = p.node
WHERE p.delta <> 0""",
        )
        joined, left = "o_rows <= 0 AND n_rows > 0", "o_rows > 0 AND n_rows <= 0"
        # the memberships as they are after this run (members_t itself is rewritten at the end)
        members = f"""(SELECT m.gid, m.node FROM {self.members_t} m
    LEFT JOIN {pc} p ON p.gid = m.gid AND p.node = m.node WHERE p.gid IS NULL OR p.n_rows > 0
    UNION ALL SELECT gid, node FROM {pc} WHERE {joined})"""

        # 3. new stats of the batch identifiers ---------------------------------------------------
        n_rows = "(COALESCE(n.o_rows, 0) + n.b_rows - n.r_rows)"
        # Sightings: when every remaining row is in the batch, the batch's; when a retracted row
        # held the first or last one and no batch row matches or beats it, read core again;
        # otherwise the old and the batch's combined.
        only_batch = f"{n_rows} = n.b_rows"
        stale = (
            f"n.r_rows > 0 AND {n_rows} > 0 AND NOT {only_batch} AND ("
            "(n.r_first <= n.o_first AND NOT COALESCE(n.b_first <= n.r_first, FALSE)) "
            "OR (n.r_last >= n.o_last AND NOT COALESCE(n.b_last >= n.r_last, FALSE)))"
        )
        seen = self.ctas(
            "seen",
            f"""SELECT c.identifier_type AS itype, c.identifier_value AS ivalue,
    min(c.occurred_at) AS first_seen_at, max(c.occurred_at) AS last_seen_at
FROM {self.core} c
JOIN (SELECT itype, ivalue FROM {bn} n WHERE {stale}) k
  ON k.itype = c.identifier_type AND k.ivalue = c.identifier_value
WHERE {self.where("c")}
GROUP BY c.identifier_type, c.identifier_value""",
        )
        first = (
            f"CASE WHEN {only_batch} THEN n.b_first WHEN x.itype IS NOT NULL THEN x.first_seen_at "
            f"ELSE {_least('n.o_first', 'n.b_first')} END"
        )
        last = (
            f"CASE WHEN {only_batch} THEN n.b_last WHEN x.itype IS NOT NULL THEN x.last_seen_at "
            f"ELSE {_greatest('n.o_last', 'n.b_last')} END"
        )
        groups = "(COALESCE(n.o_groups, 0) + COALESCE(a.joined, 0) - COALESCE(a.left_, 0))"
        upd = self.ctas(
            "upd",
            f"""SELECT n.node, n.itype, n.ivalue, n.is_new, n.is_blocked, {first} AS first_seen_at,
    {last} AS last_seen_at, {n_rows} AS n_rows, {groups} AS n_groups,
    {self.hub_expr("n.itype", groups, "n.is_blocked")} AS is_hub, n.o_hub, {n_rows} <= 0 AS is_gone
FROM {bn} n
LEFT JOIN (
    SELECT node, count(CASE WHEN {joined} THEN 1 END) AS joined, count(CASE WHEN {left} THEN 1 END) AS left_
    FROM {pc} GROUP BY node
) a ON a.node = n.node
LEFT JOIN {seen} x ON x.itype = n.itype AND x.ivalue = n.ivalue""",
        )
        # 4. the touched set T: old components of the seeds, plus the new identifiers ---------------
        seeds = f"""SELECT node FROM {upd} WHERE NOT is_new AND NOT is_blocked
UNION ALL SELECT m.node FROM {members} m
    WHERE m.gid IN (SELECT gid FROM {pc} WHERE ({joined}) OR ({left}))
UNION ALL SELECT m2.node FROM {members} m JOIN {members} m2 ON m2.gid = m.gid
    WHERE m.node IN (SELECT node FROM {upd} WHERE o_hub AND NOT is_hub)"""
        old_labels = self.ctas(
            "old_labels",
            f"""SELECT DISTINCT o.label FROM {self.nodes_t} o
WHERE NOT o.is_blocked AND o.node IN ({seeds})""",
        )
        tn = self.ctas(
            "tn",
            f"""SELECT o.node, o.identifier_type AS itype, o.identifier_value AS ivalue,
    CASE WHEN u.node IS NULL THEN o.first_seen_at ELSE u.first_seen_at END AS first_seen_at,
    CASE WHEN u.node IS NULL THEN o.last_seen_at ELSE u.last_seen_at END AS last_seen_at,
    CASE WHEN u.node IS NULL THEN o.n_rows ELSE u.n_rows END AS n_rows,
    CASE WHEN u.node IS NULL THEN o.n_groups ELSE u.n_groups END AS n_groups,
    CASE WHEN u.node IS NULL THEN o.is_hub ELSE u.is_hub END AS is_hub,
    CASE WHEN u.node IS NULL THEN FALSE ELSE u.is_gone END AS is_gone, u.node IS NOT NULL AS in_batch,
    o.label AS old_label, o.entity_id AS prev_eid, o.is_hub AS prev_hub,
    o.first_seen_at AS prev_first, o.last_seen_at AS prev_last, o.resolved_at AS prev_resolved
FROM {self.nodes_t} o
LEFT JOIN {upd} u ON u.node = o.node
WHERE NOT o.is_blocked AND o.label IN (SELECT label FROM {old_labels})
UNION ALL
SELECT node, itype, ivalue, first_seen_at, last_seen_at, n_rows, n_groups, is_hub, FALSE, TRUE,
    NULL, NULL, NULL, NULL, NULL, NULL
FROM {upd} WHERE is_new AND NOT is_blocked""",
        )
        s.touched = self.count(f"SELECT count(*) FROM {tn}")
        # 5. components of T (identifiers no longer in core take no part) --------------------------
        tm = self.ctas(
            "tm",
            f"SELECT m.gid, m.node FROM {members} m "
            f"WHERE m.node IN (SELECT node FROM {tn} WHERE NOT is_hub AND NOT is_gone)",
        )
        count_became_hub = f"SELECT count(*) FROM {upd} WHERE is_hub AND NOT is_new AND NOT o_hub"
        if s.retracted_rows == 0 and not self.count(count_became_hub):  # the count only when it matters
            labels = self._join_old_components(s, tn, tm)
        else:
            edges = self._star_edges(tm, None)
            s.edges = self.count(f"SELECT count(*) FROM {edges}")
            labels = self._components(s, f"SELECT node FROM {tn} WHERE NOT is_gone", edges, names=tn)
        # 6. ids --------------------------------------------------------------------------------
        cur = self.ctas(
            "cur",
            f"""SELECT n.node, n.itype, n.ivalue, n.first_seen_at, n.last_seen_at, n.n_rows, n.n_groups, n.is_hub,
    l.label AS cid, n.prev_eid, n.prev_hub, n.prev_first, n.prev_last, n.prev_resolved
FROM {tn} n JOIN {labels} l ON l.node = n.node""",
        )
        # sizes in the previous map, identifiers that are leaving included (as on the full path)
        prev_size = self.ctas(
            "prev_size",
            f"SELECT prev_eid AS entity_id, count(*) AS n_prev FROM {tn} WHERE prev_eid IS NOT NULL GROUP BY prev_eid",
        )
        new = self._assign_ids(s, cur, prev_size, taken=self.nodes_t)
        # 7. writes -----------------------------------------------------------------------------
        ra = lit(self.resolved_at)
        gone = f"(SELECT itype, ivalue FROM {tn} WHERE is_gone AND prev_eid IS NOT NULL)"
        s.removed = self.count(f"SELECT count(*) FROM {gone} g")
        if s.removed:
            self.write(
                f"INSERT INTO {self.log} ({self._log_cols}) SELECT {lit(self.entity_type)}, itype, ivalue, NULL, "
                f"prev_eid, 'removed', {lit(self.run_id)}, {lit(self.resolved_at)} "
                f"FROM {tn} WHERE is_gone AND prev_eid IS NOT NULL"
            )  # their node rows are deleted below, which takes them out of the map
        s.log_rows = s.removed
        self._write_log(s, new)
        self.write(d.delete_matching_keys(self.members_t, pc, ["gid", "node"]))
        self.write(
            f"INSERT INTO {self.members_t} (gid, node, n_rows) SELECT gid, node, n_rows FROM {pc} WHERE n_rows > 0"
        )
        # Node rows to rewrite: the batch's identifiers, and those whose component or entity moved.
        # Most of T only shares a component with the batch and keeps its row as it is; rewriting
        # it anyway made the commit (DuckDB checkpoints the changed row groups) the slowest step.
        rewrite = self.ctas(
            "rewrite",
            f"""SELECT t.node FROM {tn} t LEFT JOIN {new} n ON n.node = t.node
WHERE t.in_batch OR n.node IS NULL OR t.old_label IS NULL OR n.label <> t.old_label
    OR NOT {d.null_safe_equal("n.entity_id", "t.prev_eid")}""",
        )
        self.write(
            f"""DELETE FROM {self.nodes_t} WHERE node IN (
    SELECT node FROM {rewrite} UNION ALL SELECT node FROM {upd} WHERE is_blocked AND NOT is_new)"""
        )
        self.write(
            f"""INSERT INTO {self.nodes_t} ({", ".join(NODES_COLUMNS)})
SELECT node, itype, ivalue, first_seen_at, last_seen_at, n_rows, n_groups, FALSE, is_hub, label, entity_id,
    CASE WHEN changed THEN {ra} ELSE prev_resolved END
FROM {new} WHERE node IN (SELECT node FROM {rewrite})
UNION ALL
SELECT node, itype, ivalue, first_seen_at, last_seen_at, n_rows, n_groups, TRUE, FALSE, NULL, NULL, {ra}
FROM {upd} WHERE is_blocked AND NOT is_gone"""
        )
        old_entities = self.count(f"SELECT count(*) FROM {old_labels}")
        new_entities = self.count(f"SELECT count(DISTINCT label) FROM {labels}")
        s.entities = st.entities - old_entities + new_entities
        s.identifiers = st.map_rows + self.count(f"SELECT count(*) FROM {tn} WHERE prev_eid IS NULL") - s.removed
        loaded_high = high if st.loaded_high is None or (high is not None and high > st.loaded_high) else st.loaded_high
        loaded_rows = st.loaded_rows + s.batch_rows - s.retracted_rows
        self._finish(s, loaded_high=loaded_high, loaded_rows=loaded_rows)

    def _join_old_components(self, s: ResolutionSummary, tn: str, tm: str) -> str:
        """Components of T when the batch only added rows and made no hub: no link was lost, so
        every old component is still connected. Each one is searched as a single node (its old
        label) and only the links between them and the new identifiers are followed, so the
        rounds no longer grow with the longest chain already resolved. An old label is the
        smallest node of its old component, so the smallest part of a new component is its
        smallest node, as the full search would label it."""
        part = self.ctas("part", f"SELECT node, COALESCE(old_label, node) AS part FROM {tn}")
        gp = self.ctas("gp", f"SELECT DISTINCT m.gid, p.part AS node FROM {tm} m JOIN {part} p ON p.node = m.node")
        edges = self._star_edges(gp, None)
        s.edges = self.count(f"SELECT count(*) FROM {edges}")
        joined = self._components(s, f"SELECT DISTINCT part AS node FROM {part}", edges, labels="part_labels")
        return self.ctas("labels", f"SELECT p.node, j.label FROM {part} p JOIN {joined} j ON j.node = p.part")

    def _empty_incremental(self, s: ResolutionSummary, st: _State) -> None:
        s.identifiers, s.entities = st.map_rows, st.entities
        s.rounds, s.rows_per_round, s.seconds_per_round = 0, [], []
        self._finish(s, loaded_high=st.loaded_high, loaded_rows=st.loaded_rows)

    # -- shared steps --------------------------------------------------------------------------
    def _star_edges(self, members: str, flagged: str | None, group_lists: str | None = None) -> str:
        """Edges from each group's smallest linkable member to its other linkable members
        (`flagged`: nodes that link nothing, hubs and blocked values; `group_lists`: the groups
        with the list of their members' nodes, where the dialect collects lists)."""

        def star(reps: str) -> str:
            """Edges from a SELECT of (rep, node): each node to its group's smallest member."""
            return f"SELECT x.rep AS a, x.node AS b FROM ({reps}) x WHERE x.node <> x.rep"

        def ranked(rows: str) -> str:
            # the smallest member by a window over the group, not an aggregate joined back to the
            # members: one pass over them (a group of one yields no edge, its member is its rep)
            return star(f"SELECT g.node, min(g.node) OVER (PARTITION BY g.gid) AS rep FROM {rows} g")

        if group_lists:
            d, lists, stars = self.d, group_lists, []
            if flagged is not None:
                # only the few groups with a flagged member need their linkable members ranked
                held = self.ctas(
                    "flagged_groups", f"SELECT DISTINCT m.gid FROM {members} m JOIN {flagged} x ON x.node = m.node"
                )
                lists = f"(SELECT * FROM {group_lists} WHERE gid NOT IN (SELECT gid FROM {held}))"
                stars.append(
                    ranked(
                        f"(SELECT m.gid, m.node FROM {members} m WHERE m.gid IN (SELECT gid FROM {held}) "
                        f"AND m.node NOT IN (SELECT node FROM {flagged}))"
                    )
                )
            # in every other group each member links: its list is its star
            stars.append(
                star(f"SELECT {d.list_min('l.nodes')} AS rep, {d.unnest_list('l.nodes')} AS node FROM {lists} l")
            )
            edges = self.ctas("edges", f"SELECT DISTINCT a, b FROM ({' UNION ALL '.join(stars)}) s")
            if flagged is not None:
                self.drop("flagged_groups")
            return edges
        if flagged is None:
            gm = members
        else:
            gm = self.ctas(
                "gm",
                f"SELECT m.gid, m.node FROM {members} m LEFT JOIN {flagged} x ON x.node = m.node WHERE x.node IS NULL",
            )
        return self.ctas("edges", f"SELECT DISTINCT a, b FROM ({ranked(gm)}) s")

    def _group_lists(self, stats: str) -> str | None:
        """Full path where the dialect collects lists: every (source, edge_id) group, numbered
        (`gid`), with the list of its members' nodes, one element per core row (None elsewhere).

        The core rows are joined to their nodes first and grouped after, in two statements: at
        1M persons that is 6.8 s on DuckDB against 8.4-9.6 s for one statement doing both."""
        collect = self.d.collect_list("node")
        if collect is None:
            return None
        rows = self.ctas(
            "group_rows",
            f"""SELECT COALESCE(c.source, '') AS source, c.edge_id, n.node
FROM {self.core} c
JOIN {stats} n ON n.itype = c.identifier_type AND n.ivalue = c.identifier_value
WHERE {self.where("c")} AND c.edge_id IS NOT NULL""",
        )
        bin_ = self.bin
        lists = self.ctas(
            "group_lists",
            f"""SELECT {self.d.row_ids(f"{bin_('g.source')}, {bin_('g.edge_id')}")} AS gid, g.source, g.edge_id, g.nodes
FROM (SELECT source, edge_id, {collect} AS nodes FROM {rows} GROUP BY source, edge_id) g""",
        )
        self.drop("group_rows")
        return lists

    def _flagged_nodes(self, stats: str, degree: str) -> str | None:
        """Full path: the nodes that link nothing, blocked values and hubs (None: there are none).

        Flagged nodes are few, so this small table is what the memberships and nodes are
        filtered or joined by, instead of a flag on every node. Only nodes in more groups than
        the lowest limit of any type can be hubs; their type's own limit is applied to those.
        """
        if self.noise.is_empty:
            return None
        flagged = f"SELECT node FROM {stats} WHERE is_blocked"
        lowest = self.noise.lowest_hub_limit
        if lowest is not None:
            hub = self.hub_expr("n.itype", "g.n_groups", "n.is_blocked")
            flagged += (
                f" UNION ALL SELECT g.node FROM {degree} g JOIN {stats} n ON n.node = g.node "
                f"WHERE g.n_groups > {int(lowest)} AND {hub}"
            )
        table = self.ctas("flagged", flagged)
        return table if self.count(f"SELECT count(*) FROM {table}") else None

    def _components(
        self, s: ResolutionSummary, nodes_sql: str, edges: str, *, labels: str = "labels", names: str | None = None
    ) -> str:
        labels = self.t(labels)
        try:
            cc = connected_components(
                self.wh,
                nodes_sql=nodes_sql,
                edges=edges,
                labels=labels,
                scratch=self.t,
                max_rounds=self.max_rounds,
                what=f"identity resolution of {self.entity_type!r}",
                temp=True,
            )
        except ResolutionCapError as exc:
            # `names` (node, itype, ivalue) turns the node number into the identifier to look at
            named = (
                self.wh.fetchone(f"SELECT itype, ivalue FROM {names} WHERE node = {int(exc.node)}")
                if names and exc.node is not None
                else None
            )
            if not named:
                raise
            raise ResolutionCapError(
                f"{exc} Node {exc.node} is the {self.entity_type} identifier {named[0]} {named[1]!r}."
            ) from exc
        s.rounds, s.rows_per_round, s.seconds_per_round = (
            cc.rounds,
            cc.rows_per_round,
            cc.seconds_per_round,
        )
        return labels

    def _assign_ids(self, s: ResolutionSummary, cur: str, prev_size: str, *, taken: str) -> str:
        """The `new` table: every node of `cur` with its entity id, log reason and changed flag.

        `cur` has node, itype, ivalue, first/last seen, n_rows, n_groups, is_hub, cid (component),
        prev_eid and the previous map values (`new` carries them on, so the writes need no join);
        `prev_size` counts the previous identifiers of every entity in `cur`; `taken` is a
        relation with an ``entity_id`` column holding every id in use.
        """
        lit, bin_ = self.lit, self.bin
        cmin = self._smallest_identifiers(cur)
        # each previous entity is claimed by the component holding most of its identifiers (tie:
        # not a lone hub, which would take the customer's id when its value turned into a hub;
        # then the component with the smaller smallest identifier)
        claim = self.ctas(
            "claim",
            f"""SELECT prev_eid, cid FROM (
    SELECT c.prev_eid, c.cid,
        ROW_NUMBER() OVER (
            PARTITION BY c.prev_eid ORDER BY c.n DESC, c.hubs_only, {bin_("k.itype")}, {bin_("k.ivalue")}) AS rn
    FROM (
        SELECT prev_eid, cid, count(*) AS n, min(CASE WHEN is_hub THEN 1 ELSE 0 END) AS hubs_only
        FROM {cur} WHERE prev_eid IS NOT NULL GROUP BY prev_eid, cid) c
    JOIN {cmin} k ON k.cid = c.cid
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
        birth = self.entity_hash("k.itype", "k.ivalue")
        split_id = self.entity_hash("k.itype", "k.ivalue", lit("split"))
        # Only if that id is taken too (the same identifier split off twice): a run-specific one.
        run_split_id = self.entity_hash("n.itype", "n.ivalue", lit("split"), lit(self.run_id))
        comp0 = self.ctas(
            "comp0",
            f"""SELECT k.cid, s.entity_id AS survivor, k.itype, k.ivalue, {birth} AS birth, {split_id} AS split_id
FROM {cmin} k
LEFT JOIN {surv} s ON s.cid = k.cid""",
        )
        # the candidate ids already in use, found in one pass over `taken`
        in_use = self.ctas(
            "in_use",
            f"""SELECT DISTINCT entity_id FROM {taken} WHERE entity_id IN (
    SELECT birth FROM {comp0} WHERE survivor IS NULL UNION ALL SELECT split_id FROM {comp0} WHERE survivor IS NULL)""",
        )
        # A birth id already in use (only after a split) gets the identifier's split id, which
        # depends on the data alone, so every engine and every run naming gives the same id.
        comp = self.ctas(
            "comp",
            f"""SELECT n.cid, n.survivor, COALESCE(n.survivor, CASE
        WHEN t.entity_id IS NULL THEN n.birth
        WHEN t2.entity_id IS NULL THEN n.split_id
        ELSE {run_split_id} END)
    AS entity_id
FROM {comp0} n
LEFT JOIN {in_use} t ON t.entity_id = n.birth AND n.survivor IS NULL
LEFT JOIN {in_use} t2 ON t2.entity_id = n.split_id AND n.survivor IS NULL""",
        )
        eq = self.d.null_safe_equal
        same = (
            f"cur.prev_eid = comp.entity_id AND {eq('cur.prev_hub', 'cur.is_hub')} "
            f"AND {eq('cur.prev_first', 'cur.first_seen_at')} AND {eq('cur.prev_last', 'cur.last_seen_at')}"
        )
        new = self.ctas(
            "new",
            f"""SELECT {_NEW_COLUMNS},
    CASE WHEN cur.prev_eid IS NULL THEN
            CASE WHEN comp.survivor IS NULL THEN 'born' ELSE 'accreted' END
        WHEN cur.prev_eid = comp.entity_id THEN NULL
        WHEN cl.cid = cur.cid THEN 'merged'
        ELSE 'split' END AS reason,
    CASE WHEN {same} THEN FALSE ELSE TRUE END AS changed
FROM {cur} cur
JOIN {comp} comp ON comp.cid = cur.cid
LEFT JOIN {claim} cl ON cl.prev_eid = cur.prev_eid""",
        )
        counts = self.wh.fetchone(
            f"""SELECT count(DISTINCT CASE WHEN reason = 'born' THEN entity_id END),
    count(DISTINCT CASE WHEN reason = 'accreted' THEN entity_id END),
    count(DISTINCT CASE WHEN reason = 'merged' THEN prev_eid END),
    count(DISTINCT CASE WHEN reason = 'split' THEN prev_eid END),
    count(CASE WHEN changed THEN 1 END),
    count(reason)
FROM {new}"""
        ) or (0, 0, 0, 0, 0, 0)
        s.born, s.accreted, s.merged, s.split, s.changed_rows, self._reasons = (int(x or 0) for x in counts)
        return new

    def _smallest_identifiers(self, rows: str) -> str:
        """Each component's smallest identifier (byte order) among `rows` (cid, itype, ivalue): one
        sorted DISTINCT ON where the dialect prefers it, else one aggregate over row values where
        the dialect has it (`rows` may then be a parenthesised SELECT), else two aggregates and
        no sort (`rows` a table: it is read twice)."""
        bin_ = self.bin
        if self.d.smallest_by_distinct_on:
            return self.ctas(
                "cmin",
                f"""SELECT DISTINCT ON (c.cid) c.cid, {bin_("c.itype")} AS itype, {bin_("c.ivalue")} AS ivalue
FROM {rows} c ORDER BY c.cid, {bin_("c.itype")}, {bin_("c.ivalue")}""",
            )
        one_pass = self.d.smallest_pair(rows, "cid", "itype", "ivalue")
        if one_pass:
            return self.ctas("cmin", one_pass)
        return self.ctas(
            "cmin",
            f"""SELECT c.cid, k.itype, min({bin_("c.ivalue")}) AS ivalue
FROM {rows} c
JOIN (SELECT cid, min({bin_("itype")}) AS itype FROM {rows} GROUP BY cid) k
  ON k.cid = c.cid AND {bin_("c.itype")} = k.itype
GROUP BY c.cid, k.itype""",
        )

    def _first_run_rows(self, s: ResolutionSummary, labels: str, node_rows: str, node_columns: str) -> str:
        """`_assign_ids` when there is no previous map: every component is born with the birth id
        of its smallest identifier (no claims, no survivors, no id in use to avoid). `node_rows`
        and `node_columns` are the labelled nodes as `_resolve_full` joins them (`labels` as l).

        Returns a SELECT of the linked nodes (node columns, `label`, `entity_id`), not a table: the
        node rows are written from it once, and the log and map read them back, so the 5.7M
        string rows of a 1M-person base are materialised once less."""
        if self.d.smallest_by_distinct_on:
            # one sorted pass reads the labelled nodes once, so no `cur` table is needed first
            cmin = self._smallest_identifiers(f"(SELECT label AS cid, itype, ivalue FROM {labels})")
            columns, rows, cid = f"{node_columns}, l.label", node_rows, "l.label"
        else:  # the node rows are written from `cur` too: joining the nodes again there costs more
            cur = self.ctas("cur", f"SELECT {node_columns}, l.label AS cid FROM {node_rows}")
            cmin = self._smallest_identifiers(cur)
            columns, rows, cid = _CUR_NODE_COLUMNS, f"{cur} cur", "cur.cid"
        comp = self.ctas("comp", f"SELECT cid, {self.entity_hash('itype', 'ivalue')} AS entity_id FROM {cmin}")
        self.drop("cmin")
        s.born = self.count(f"SELECT count(*) FROM {comp}")
        s.accreted = s.merged = s.split = 0
        return f"SELECT {columns}, comp.entity_id FROM {rows} JOIN {comp} comp ON comp.cid = {cid}"

    _log_cols = (
        "entity_type, identifier_type, identifier_value, entity_id, previous_entity_id, reason, run_id, resolved_at"
    )

    def _write_log(self, s: ResolutionSummary, new: str) -> None:
        """Log rows from `new` (the map follows from the node rows written from it)."""
        et, rid, ra = (
            self.lit(self.entity_type),
            self.lit(self.run_id),
            self.lit(self.resolved_at),
        )
        s.log_rows += self._reasons
        if self._reasons:
            self.write(
                f"""INSERT INTO {self.log} ({self._log_cols})
SELECT {et}, itype, ivalue, entity_id, prev_eid, reason, {rid}, {ra} FROM {new} WHERE reason IS NOT NULL"""
            )

    def _write_first_log(self, s: ResolutionSummary, nodes: str) -> None:
        """First run: every linkable node (`nodes`, as just written) is born and logged."""
        if not s.identifiers:
            return
        et, rid, ra = self.lit(self.entity_type), self.lit(self.run_id), self.lit(self.resolved_at)
        s.log_rows += s.identifiers
        s.changed_rows = s.identifiers
        self.write(
            f"""INSERT INTO {self.log} ({self._log_cols})
SELECT {et}, identifier_type, identifier_value, entity_id, CAST(NULL AS {self.d.text_type}), 'born', {rid}, {ra}
FROM {nodes} WHERE NOT is_blocked"""
        )

    def _finish(self, s: ResolutionSummary, *, loaded_high: Any, loaded_rows: int) -> None:
        """Audit, counts and the state row (both paths)."""
        et, rid, ra = (
            self.lit(self.entity_type),
            self.lit(self.run_id),
            self.lit(self.resolved_at),
        )
        self.write(f"DELETE FROM {self.audit} WHERE entity_type = {et} AND run_id = {rid}")
        rows_col = self.d.quote("rows")
        # reads the nodes as written above (queued writes run in order); without rules there is
        # nothing to list, so the scan of every node is skipped
        if not self.noise.is_empty:
            self.write(
                f"""INSERT INTO {self.audit} (entity_type, identifier_type, identifier_value, kind, edge_groups,
    {rows_col}, run_id, seen_at)
SELECT {et}, identifier_type, identifier_value, CASE WHEN is_blocked THEN 'blocked' ELSE 'hub' END,
    n_groups, n_rows, {rid}, {ra}
FROM {self.nodes_t} WHERE is_blocked OR is_hub"""
            )
        big, d = self.d.bigint_type, self.d
        self.write(f"DELETE FROM {self.state_t} WHERE TRUE")  # BigQuery wants a WHERE
        self.write(
            f"""INSERT INTO {self.state_t} ({", ".join(STATE_COLUMNS)})
SELECT CAST({STATE_VERSION} AS {big}), CAST({self.lit(self.fingerprint)} AS {d.text_type}),
    CAST({self.lit(loaded_high)} AS {d.timestamp_type}), CAST({int(loaded_rows)} AS {big}),
    CAST({int(s.identifiers)} AS {big}), CAST({int(s.entities)} AS {big}),
    CAST(COALESCE((SELECT max(node) FROM {self.nodes_t}), 0) AS {big}),
    CAST(COALESCE((SELECT max(gid) FROM {self.groups_t}), 0) AS {big})"""
        )

    _reasons: int = 0


#: A labelled node as `cur` (aliased `cur`) holds it, its component named `label`: what the node
#: rows are written from, with the entity id.
_CUR_NODE_COLUMNS = (
    "cur.node, cur.itype, cur.ivalue, cur.first_seen_at, cur.last_seen_at, cur.n_rows, cur.n_groups, "
    "cur.is_hub, cur.cid AS label"
)
#: What the `new` table carries from `cur` and its component (`comp`), besides the reason and the
#: changed flag: everything the log, map and nodes writes read.
_NEW_COLUMNS = f"{_CUR_NODE_COLUMNS}, comp.entity_id, cur.prev_eid, cur.prev_resolved"


def _least(a: str, b: str) -> str:
    """The smaller of two nullable expressions (NULL only if both are)."""
    return f"CASE WHEN {a} IS NULL THEN {b} WHEN {b} IS NULL OR {a} <= {b} THEN {a} ELSE {b} END"


def _greatest(a: str, b: str) -> str:
    return f"CASE WHEN {a} IS NULL THEN {b} WHEN {b} IS NULL OR {a} >= {b} THEN {a} ELSE {b} END"


#: Core's identifier rows and their replaced copies, each with the column that stamps a change.
_STAMPED_TABLES = ((CORE_TABLE, "_loaded_at"), (RETRACTED_TABLE, "_retracted_at"))


def latest_change(wh: Warehouse, core_schema: str, entity_type: str, after: datetime | None = None) -> datetime | None:
    """When core last gained or replaced identifier rows of `entity_type` (None: never).

    A caller that already resolved up to this instant has nothing to do. Replaced rows count: a
    batch that only takes rows away can still drop a link or an identifier. With `after` (the
    caller's watermark) only later stamps are looked at, and None means none is later: engines
    that keep a block-range index on the load time then read the recent rows alone, where a
    plain max reads the whole table.
    """
    d, et = wh.dialect, wh.dialect.literal(check_name(entity_type, "entity type"))
    stamps = []
    for table, column in _STAMPED_TABLES:
        if wh.table_exists(core_schema, table):
            later = "" if after is None else f" AND {column} > {d.literal(after)}"
            stamps.append(
                f"SELECT max({column}) AS stamp FROM {d.table(core_schema, table)} WHERE entity_type = {et}{later}"
            )
    if not stamps:
        return None
    latest: datetime | None = wh.scalar(f"SELECT max(stamp) FROM ({' UNION ALL '.join(stamps)}) s")
    return latest


def has_core_rows(wh: Warehouse, core_schema: str, entity_type: str) -> bool:
    """Whether core holds (or has replaced) any identifier row of `entity_type`: with
    `latest_change(after=...)` returning None, tells "nothing new" from "core emptied", which
    still has to be resolved. Stops at the first row."""
    d, et = wh.dialect, wh.dialect.literal(check_name(entity_type, "entity type"))
    probes = [
        f"EXISTS (SELECT 1 FROM {d.table(core_schema, table)} WHERE entity_type = {et})"
        for table, _ in _STAMPED_TABLES
        if wh.table_exists(core_schema, table)
    ]
    return bool(probes) and bool(wh.scalar(f"SELECT CASE WHEN {' OR '.join(probes)} THEN 1 ELSE 0 END"))


def rules_fingerprint(entity_type: str, id_prefix: str, noise: NoiseRules) -> str:
    """What the resolution state records of the rules it was made under: a change recomputes."""
    payload = json.dumps(
        {"version": STATE_VERSION, "entity_type": entity_type, "id_prefix": id_prefix, "noise": noise.to_dict()},
        sort_keys=True,
    )
    return hashlib.md5(payload.encode()).hexdigest()


def pending_change(
    wh: Warehouse,
    core_schema: str,
    entity_type: str,
    since: datetime | None,
    *,
    resolution_schema: str | None = None,
    fingerprint: str | None = None,
) -> tuple[bool, datetime | None]:
    """Whether resolving `entity_type` after the watermark `since` (None: never resolved) has
    anything to do, and the stamp to move the watermark to (None: leave it). The one place the
    operator and the benchmark take this decision from.

    With `resolution_schema` and `fingerprint` (`rules_fingerprint` of the rules to apply), rules
    other than those the state was made under are work too, even with no new core rows: a blocked
    value added to the config must split what it linked."""
    high = latest_change(wh, core_schema, entity_type, after=since)
    if since is not None and high is None and has_core_rows(wh, core_schema, entity_type):
        if resolution_schema is not None and fingerprint is not None:
            state = state_table_names(entity_type)["state"]
            if not wh.table_exists(resolution_schema, state):
                return True, None
            stored = wh.fetchall(f"SELECT fingerprint FROM {wh.dialect.table(resolution_schema, state)}")
            if [r[0] for r in stored] != [fingerprint]:
                return True, None
        return False, None
    return True, high


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
    before_commit: Callable[[Warehouse], None] | None = None,
) -> ResolutionSummary:
    """Resolve every identifier of `entity_type` into stable entity ids (see module docstring).

    ``since`` (the operator's previous watermark) allows the incremental path: only components
    touched by rows loaded since the last call are recomputed; it falls back to the full path
    (``summary.fallback_reason`` says why) when the state is missing, from another version, made
    under other noise rules or id prefix, or when already-resolved core rows changed.
    ``noise=None`` applies no noise control at all; pass ``NoiseRules.defaults()`` (or rules
    from config) for blocked values and hub limits. Raises ResolutionCapError when the
    components do not converge within ``max_rounds`` rounds (nothing is written then).
    ``before_commit`` runs inside the write transaction after the resolution's own writes, so a
    caller's watermark commits with them (DML only: on some warehouses DDL would commit early).
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
        before_commit=before_commit,
    ).run()
