"""Final tables: the customer model people query, built from core and the identity maps.

The first run (and a full refresh, or a run after the templates or the config changed) builds
every table under a staging name and publishes them together, so readers see the previous
complete model or the new one, never a mix. Later runs are incremental: they recompute only the
rows of what changed since the previous build (events, identifiers and traits loaded into or
replaced in core, identity-map rows rewritten by resolution, entities merged, split or left) and
replace those rows by key, with the new watermark, in one transaction. Both ways give the same
rows, and a re-run changes nothing, as long as the edge-entity and participant templates read
only an identifier's entity and hub flag from the maps, and the entity-identifier template
keeps both as the maps give them (what decides which groups and events are recomputed).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from airflow_provider_nexus.config import EntityTypeConfig, SchemasConfig, has_memberships
from airflow_provider_nexus.layers.common import (
    FINAL_STATE,
    PendingWrites,
    RunContext,
    ensure_indexes,
    ensure_model_table,
    retracted_table_name,
)
from airflow_provider_nexus.layers.core import _EXTRA_COLUMNS, CORE_MODELS
from airflow_provider_nexus.templates import TemplateEngine
from airflow_provider_nexus.warehouse import Warehouse

log = logging.getLogger(__name__)

#: The incremental path gives way to a full rebuild above this share of entities changed.
FULL_REBUILD_SHARE = 0.3
#: Bump when what the state row means changes: the next run then rebuilds in full.
FINAL_STATE_VERSION = 1


def map_table(entity_type: str) -> str:
    return f"nexus_{entity_type}_identity_map"


def entity_table(entity_type: str) -> str:
    return f"nexus_{entity_type}s"


def final_indexes(entity_types: dict[str, EntityTypeConfig]) -> dict[str, list[tuple[str, ...]]]:
    """Keys each final table is looked up by: the incremental run's deletes, and readers' joins."""
    keys: dict[str, list[tuple[str, ...]]] = {
        EDGE_ENTITIES: [("edge_id", "source", "entity_type")],
        "nexus_events": [("id",)],
        "nexus_entity_identifiers": [("identifier_value", "identifier_type", "entity_type"), ("entity_id",)],
        "nexus_entity_traits": [("trait_id",), ("entity_id",)],
        "nexus_event_participants": [("event_id",), ("entity_id",)],
        "nexus_memberships": [("person_id",), ("group_id",)],
    }
    keys |= {entity_table(t): [("id",)] for t in entity_types}
    return {table: keys[table] for table in [*final_tables(entity_types), EDGE_ENTITIES]}


def final_tables(entity_types: dict[str, EntityTypeConfig]) -> list[str]:
    """Names of every table the final layer writes (for Assets and docs)."""
    names = ["nexus_events", "nexus_entity_identifiers", "nexus_entity_traits", "nexus_event_participants"]
    names += [entity_table(t) for t in entity_types]
    if has_memberships(entity_types):
        names.append("nexus_memberships")
    return names


STAGED_PREFIX = "nexus__next_"
EDGE_ENTITIES = "nexus__edge_entities"
#: Scratch tables of an incremental run: what changed since the previous build.
CHANGED_PREFIX = "nexus_final__changed_"
#: Join conditions between two aliases {a} and {b}: the same identifier, the same edge group.
SAME_IDENTIFIER = (
    "{a}.entity_type = {b}.entity_type AND {a}.identifier_type = {b}.identifier_type "
    "AND {a}.identifier_value = {b}.identifier_value"
)
SAME_GROUP = "{a}.source = {b}.source AND {a}.edge_id = {b}.edge_id AND {a}.entity_type = {b}.entity_type"
GROUP_KEY = ("source", "edge_id", "entity_type")
IDENTIFIER_KEY = ("entity_type", "identifier_type", "identifier_value")
#: The templates `render_final` renders (under final/).
FINAL_TEMPLATES = (
    "all_maps",
    "edge_entities",
    "events",
    "entity_identifiers",
    "entity_traits",
    "event_participants",
    "entities",
    "memberships",
)
#: The columns of core identifier rows that the packaged final templates read. An incremental run
#: stages only these for the rows the changes reach (at 1M persons 815k rows, read in 1.2 s instead
#: of 1.9 s on DuckDB); an overriding final template may read any column, so then whole rows.
TEMPLATE_IDENTIFIER_COLUMNS = (
    "source",
    "edge_id",
    "entity_type",
    "event_id",
    "identifier_type",
    "identifier_value",
    "role",
)


def render_final(
    engine: TemplateEngine,
    entity_types: dict[str, EntityTypeConfig],
    schemas: SchemasConfig,
    run: RunContext,
    staged: bool = False,
    changed: dict[str, str] | None = None,
    edge_entities: str | None = None,
    traits: str | None = None,
    only: Collection[str] | None = None,
    core_rows: dict[str, str] | None = None,
    map_rows: dict[str, str] | None = None,
) -> dict[str, str]:
    """table name -> SELECT, in build order (later tables read earlier ones).

    With `staged`, tables read each other under their staging names, as a full build makes them.
    With `changed` (relation names by kind: events, groups, identifiers, traits,
    participant_events, entities, and with memberships moved_entities: the entities an
    identifier left or joined), each SELECT gives only the rows of what changed; then
    `edge_entities` and `traits` name the relations to read those two tables from, and
    `core_rows` and `map_rows` may stand in for core models and identity maps (by entity type)
    with just the rows the changes reach. `only` limits the output to those tables.
    """
    prefix = STAGED_PREFIX if staged else ""
    d = engine.dialect
    core = {m: d.table(schemas.core, f"nexus_{m}") for m in CORE_MODELS} | (core_rows or {})
    maps = {t: d.table(schemas.resolution, map_table(t)) for t in entity_types} | (map_rows or {})
    common: dict[str, Any] = {"core": core, "maps": maps, "updated_at": run.now, "changed": changed}
    all_maps = engine.render("final/all_maps.sql", **common)
    common["all_maps"] = all_maps
    edge_entities = edge_entities or d.table(schemas.final, EDGE_ENTITIES)
    traits = traits or d.table(schemas.final, prefix + "nexus_entity_traits")
    plan: dict[str, tuple[str, dict[str, Any]]] = {
        EDGE_ENTITIES: ("edge_entities", {}),
        "nexus_events": ("events", {}),
        "nexus_entity_identifiers": ("entity_identifiers", {}),
        "nexus_entity_traits": ("entity_traits", {"edge_entities": edge_entities}),
        "nexus_event_participants": ("event_participants", {}),
    }
    for entity_type, config in entity_types.items():
        plan[entity_table(entity_type)] = (
            "entities",
            {"entity_type": entity_type, "config": config, "map": maps[entity_type], "traits": traits},
        )
    if has_memberships(entity_types):
        plan["nexus_memberships"] = ("memberships", {})
    return {
        table: engine.render(f"final/{template}.sql", **extra, **common)
        for table, (template, extra) in plan.items()
        if only is None or table in only
    }


def _latest(values: Sequence[Any]) -> Any:
    return max((v for v in values if v is not None), default=None)


@dataclass(frozen=True)
class _Snapshot:
    """How far core and resolution had got when a build started, and core's row counts then."""

    core_high: Any
    resolution_high: Any
    counts: dict[str, int]
    #: per core model: rows loaded up to the previous build's cut that are still here, plus those
    #: replaced since; equal to that build's counts unless rows changed without a record
    kept: dict[str, int] | None = None


class _Final:
    def __init__(
        self,
        wh: Warehouse,
        engine: TemplateEngine,
        entity_types: dict[str, EntityTypeConfig],
        schemas: SchemasConfig,
        run: RunContext,
    ) -> None:
        self.wh, self.engine, self.entity_types, self.schemas, self.run = wh, engine, entity_types, schemas, run
        d = self.d = wh.dialect
        self.core = {m: d.table(schemas.core, f"nexus_{m}") for m in CORE_MODELS}
        self.retracted = {
            m: d.table(schemas.core, retracted_table_name(m))
            for m in CORE_MODELS
            if wh.table_exists(schemas.core, retracted_table_name(m))
        }
        self.maps = {t: d.table(schemas.resolution, map_table(t)) for t in entity_types}
        self.log = d.table(schemas.resolution, "nexus_resolution_log")
        self.narrow_identifiers = all(engine.is_packaged(f"final/{name}.sql") for name in FINAL_TEMPLATES)
        self.identifier_columns = (
            ", ".join(f"i.{c}" for c in TEMPLATE_IDENTIFIER_COLUMNS) if self.narrow_identifiers else "i.*"
        )
        self.state = d.table(schemas.core, FINAL_STATE)
        # rendered for a fixed moment: a template that stamps the run time must not look changed
        fixed = RunContext(run_id="fingerprint", now=datetime(2000, 1, 1))
        self.fingerprint = hashlib.md5(
            "\n".join([str(FINAL_STATE_VERSION), *render_final(engine, entity_types, schemas, fixed).values()]).encode()
        ).hexdigest()

    def render(self, **kwargs: Any) -> dict[str, str]:
        """render_final for this build (see its arguments)."""
        return render_final(self.engine, self.entity_types, self.schemas, self.run, **kwargs)

    def f(self, table: str) -> str:
        return self.d.table(self.schemas.final, table)

    # -- state -------------------------------------------------------------------------------
    def snapshot(self, prev: _Snapshot | None) -> _Snapshot:
        """One statement, so the counts and the highs describe the same moment.

        Given the previous build, it also counts what the check for unrecorded changes needs:
        rows loaded since that build's cut, and rows from before it replaced since. Each table
        is read once for all of its figures (PostgreSQL scans a table for a count and again for
        each max or filtered count asked in a subquery of its own).
        """
        per_table: dict[str, dict[tuple[str, str], str]] = {}
        cut = None if prev is None or prev.core_high is None else self.d.literal(prev.core_high)
        for model, table in self.core.items():
            per_table[table] = {("rows", model): "count(*)", ("high", model): "max(_loaded_at)"}
            if cut is not None:
                per_table[table]["since", model] = f"count(CASE WHEN _loaded_at > {cut} THEN 1 END)"
        for model, table in self.retracted.items():
            per_table[table] = {("high", f"{model} replaced"): "max(_retracted_at)"}
            if cut is not None:
                per_table[table]["gone", model] = (
                    f"count(CASE WHEN _loaded_at <= {cut} AND _retracted_at > {cut} THEN 1 END)"
                )
        for name, table in [*self.maps.items(), ("log", self.log)]:
            per_table[table] = {("resolved", name): "max(resolved_at)"}
        parts: list[tuple[str, str]] = []
        derived: list[str] = []
        for i, (table, figures) in enumerate(per_table.items()):
            columns = []
            for key, expr in figures.items():
                columns.append(f"{expr} AS f{len(parts)}")
                parts.append(key)
            derived.append(f"(SELECT {', '.join(columns)} FROM {table}) t{i}")
        sql = f"SELECT {', '.join(f'f{n}' for n in range(len(parts)))} FROM {' CROSS JOIN '.join(derived)}"
        row = self.wh.fetchone(sql) or [None] * len(parts)
        got = dict(zip(parts, row, strict=True))
        counts = {model: int(got["rows", model] or 0) for model in self.core}
        kept = None
        if prev is not None and prev.core_high is not None:
            # rows the previous build counted that are still here, plus those replaced since
            kept = {
                model: counts[model] - int(got["since", model] or 0) + int(got.get(("gone", model)) or 0)
                for model in self.core
            }
        return _Snapshot(
            _latest([v for (kind, _), v in got.items() if kind == "high"]),
            _latest([v for (kind, _), v in got.items() if kind == "resolved"]),
            counts,
            kept,
        )

    def ensure_state(self) -> None:
        d = self.d
        txt, ts, big = d.text_type, d.timestamp_type, d.bigint_type
        counts = ", ".join(f"{m}_rows {big}" for m in CORE_MODELS)
        self.wh.execute(
            f"CREATE TABLE IF NOT EXISTS {self.state} (fingerprint {txt}, core_high {ts}, resolution_high {ts}, "
            f"{counts}, run_id {txt}, updated_at {ts})"
        )

    def read_state(self) -> tuple[_Snapshot | None, str]:
        rows = self.wh.fetchall(
            f"SELECT fingerprint, core_high, resolution_high, {', '.join(f'{m}_rows' for m in CORE_MODELS)} "
            f"FROM {self.state}"
        )
        if len(rows) != 1:
            return None, "no previous build"
        fingerprint, core_high, resolution_high, *counts = rows[0]
        if fingerprint != self.fingerprint:
            return None, "the final templates or the entity config changed"
        return _Snapshot(core_high, resolution_high, dict(zip(CORE_MODELS, (int(c) for c in counts), strict=True))), ""

    def state_writes(self, snap: _Snapshot) -> list[str]:
        d, lit = self.d, self.d.literal
        counts = ", ".join(str(snap.counts[m]) for m in CORE_MODELS)
        return [
            f"DELETE FROM {self.state} WHERE TRUE",  # BigQuery wants a WHERE
            f"INSERT INTO {self.state} (fingerprint, core_high, resolution_high, "
            f"{', '.join(f'{m}_rows' for m in CORE_MODELS)}, run_id, updated_at) VALUES ("
            f"{lit(self.fingerprint)}, CAST({lit(snap.core_high)} AS {d.timestamp_type}), "
            f"CAST({lit(snap.resolution_high)} AS {d.timestamp_type}), {counts}, {lit(self.run.run_id)}, "
            f"{lit(self.run.now)})",
        ]

    def unrecorded_change(self, prev: _Snapshot, snap: _Snapshot) -> str:
        """Why core's rows up to the previous build differ from what it recorded, or ""."""
        if prev.core_high is None:
            return "" if not any(prev.counts.values()) else "core rows had no load time"
        kept = snap.kept or {}
        for model, table in self.core.items():
            if kept.get(model) != prev.counts[model]:
                return f"rows of {table} changed without a record (a core full refresh?)"
        return ""

    # -- the build ---------------------------------------------------------------------------
    def build(self) -> dict[str, Any]:
        self.ensure_state()
        prev, reason = (None, "full refresh") if self.run.full_refresh else self.read_state()
        snap = self.snapshot(prev)
        if prev is not None:
            missing = set(final_tables(self.entity_types)) | {EDGE_ENTITIES}
            missing -= set(self.wh.tables(self.schemas.final))
            reason = f"missing table(s) {', '.join(sorted(missing))}" if missing else self.unrecorded_change(prev, snap)
        if prev is not None and not reason:
            self.ensure_indexes()  # tables made before indexes existed get them here
            summary = self.incremental(prev, snap)
            if summary is not None:
                return summary
            reason = f"more than {FULL_REBUILD_SHARE:.0%} of the entities changed"
        log.info("final tables: full build (%s)", reason)
        summary = {**self.full(snap), "mode": "full", "reason": reason}
        self.ensure_indexes()  # the published tables are new ones
        return summary

    def ensure_indexes(self) -> None:
        for table, keys in final_indexes(self.entity_types).items():
            ensure_indexes(self.wh, self.schemas.final, table, keys)

    def full(self, snap: _Snapshot) -> dict[str, Any]:
        """Build every table under a staging name, then publish them all at once."""
        d, wh, schemas = self.d, self.wh, self.schemas
        statements = self.render(staged=True)
        for table, select_sql in statements.items():
            wh.show_rendered(f"final: {table}", select_sql)
        counts: dict[str, int] = {}
        built: list[str] = []
        try:
            for table, select_sql in statements.items():
                name = table if table == EDGE_ENTITIES else STAGED_PREFIX + table
                built.append(name)
                wh.execute(d.create_table_as(self.f(name), select_sql))
                if table != EDGE_ENTITIES:
                    counts[table] = wh.count(self.f(name))
            d.publish_tables(wh, schemas.final, [(STAGED_PREFIX + table, table) for table in counts])
        finally:
            for name in built:
                if name != EDGE_ENTITIES:
                    wh.execute(f"DROP TABLE IF EXISTS {self.f(name)}")
        # After the tables: if this fails, the next run re-applies changes since the previous
        # state to tables that already hold them, which gives the same rows.
        with wh.transaction():
            for sql in self.state_writes(snap):
                wh.execute(sql)
        return {"tables": counts}

    def incremental(self, prev: _Snapshot, snap: _Snapshot) -> dict[str, Any] | None:
        """Replace the rows of what changed since `prev`; None if a full build is cheaper.

        Everything is computed into scratch tables first; the transaction then only deletes the
        changed keys from each table, inserts their new rows and moves the state (DML only, so
        it stays one transaction where DDL would commit).
        """
        wh = self.wh
        writes = PendingWrites(wh)
        try:
            changed = self.changes(prev, writes)
            n_changed = wh.count(changed["entities"])
            total = sum(wh.count(self.f(entity_table(t))) for t in self.entity_types)
            if total and n_changed > FULL_REBUILD_SHARE * total:
                writes.cleanup()
                return None
            # edge entities and traits were computed with the change sets; participants read the
            # core rows of the changed events (which the changed entities' rows include), entities
            # and memberships those of the changed entities, and all of them the staged map rows
            selects = {
                EDGE_ENTITIES: f"SELECT * FROM {changed['edge_entities']}",
                "nexus_entity_traits": f"SELECT * FROM {changed['new_traits']}",
            }
            # every changed event was loaded since the previous build (or is gone): the cut
            # skips old rows by their load time, which engines with zone maps read past
            core_events = f"(SELECT * FROM {self.core['events']} WHERE {self.loaded_since(prev)})"
            core_rows = {"identifiers": changed["identifiers_of_entities"]}
            if "memberships_of_entities" in changed:
                core_rows["memberships"] = changed["memberships_of_entities"]
            selects |= self.render(
                changed=changed,
                traits=self.traits_of_entities(changed, writes),
                core_rows={**core_rows, "events": core_events},
                map_rows=self.staged_maps(changed),
                only=set(final_tables(self.entity_types)) - set(selects),
            )
            written: dict[str, int] = {}
            for table, select_sql in selects.items():
                wh.show_rendered(f"final (incremental): {table}", select_sql)
                rows = self.scratch(writes, f"rows_{table}", select_sql)
                if table != EDGE_ENTITIES:
                    written[table] = wh.count(rows)
                for delete in self.delete_changed(table, changed):
                    writes.sql(delete)
                writes.sql(f"INSERT INTO {self.f(table)} SELECT * FROM {rows}")
        except BaseException:
            writes.cleanup()
            raise
        for sql in self.state_writes(snap):
            writes.sql(sql)
        writes.apply()
        log.info("final tables: incremental, %d entit(ies) changed", n_changed)
        return {"tables": written, "mode": "incremental", "reason": "", "changed_entities": n_changed}

    def memberships_of(self, keys: str, writes: PendingWrites, kind: str) -> str:
        """Core membership rows with a side among the identifier keys `keys`, staged.

        The templates would find them in the whole core table too; a small staged set keeps
        planners without good estimates (PostgreSQL) from joining all of core to all the maps
        first and filtering afterwards.
        """
        held = (
            "EXISTS (SELECT 1 FROM {k} k WHERE k.entity_type = {lit} AND k.identifier_type = ms.{t}_identifier_type "
            "AND k.identifier_value = ms.{t}_identifier_value)"
        )
        by_person = held.format(k=keys, t="person", lit=self.d.literal("person"))
        by_group = held.format(k=keys, t="group", lit=self.d.literal("group"))
        # two SELECTs, not an OR of the two EXISTS, so that each plans as a join
        return self.scratch(
            writes,
            kind,
            f"SELECT ms.* FROM {self.core['memberships']} ms WHERE {by_person} "
            f"UNION ALL SELECT ms.* FROM {self.core['memberships']} ms WHERE {by_group} AND NOT {by_person}",
        )

    def staged_maps(self, changed: dict[str, str]) -> dict[str, str]:
        """entity type -> the staged identity-map rows `changes` made."""
        return {entity_type: changed[f"map_rows_{entity_type}"] for entity_type in self.maps}

    def membership_sides(self, memberships: str) -> list[str]:
        """SELECTs of the identifier keys of both sides of the staged `memberships` rows."""
        return [
            f"SELECT {self.d.literal(side)} AS entity_type, {side}_identifier_type AS identifier_type, "
            f"{side}_identifier_value AS identifier_value FROM {memberships}"
            for side in ("person", "group")
        ]

    def add_map_rows(self, changed: dict[str, str], writes: PendingWrites, keys: list[str]) -> None:
        """Stage the map rows of the identifier keys the SELECTs `keys` give, beside those staged."""
        d = self.d
        more = self.scratch(
            writes,
            "map_keys_more",
            f"SELECT DISTINCT * FROM ({' UNION ALL '.join(keys)}) k "
            f"WHERE NOT {d.key_exists('k', changed['map_keys'], IDENTIFIER_KEY)}",
        )
        if not self.wh.count(more):
            return
        for entity_type, staged in self.staged_maps(changed).items():
            changed[f"map_rows_{entity_type}"] = self.scratch(
                writes,
                f"map_rows_all_{entity_type}",
                f"SELECT * FROM {staged} UNION ALL "
                f"SELECT m.* FROM {self.maps[entity_type]} m WHERE {d.key_in('m', more, IDENTIFIER_KEY)}",
            )

    def traits_of_entities(self, changed: dict[str, str], writes: PendingWrites) -> str:
        """The changed entities' trait rows as they will be after this run, staged.

        Their kept rows come from the final table, filtered by entity before anything else, so
        the other entities' traits are never joined with the change sets.
        """

        def of_changed(alias: str) -> str:
            return self.d.key_in(alias, changed["entities"], ["entity_type", "entity_id"])

        return self.scratch(
            writes,
            "traits_of_entities",
            f"""SELECT o.* FROM {self.f("nexus_entity_traits")} o WHERE {of_changed("o")}
    AND NOT EXISTS (SELECT 1 FROM {changed["traits"]} c WHERE c.id = o.trait_id)
UNION ALL SELECT n.* FROM {changed["new_traits"]} n WHERE {of_changed("n")}""",
        )

    def scratch(self, writes: PendingWrites, kind: str, select_sql: str) -> str:
        name, d = CHANGED_PREFIX + kind, self.d
        writes.temp_table(name)
        self.wh.execute(d.create_temp_table_as(name, select_sql))
        # planner statistics: change sets are small, and joined against whole core tables
        analyze = d.analyze(d.quote(name))
        if analyze:
            self.wh.execute(analyze)
        return d.quote(name)

    def delete_changed(self, table: str, changed: dict[str, str]) -> list[str]:
        """The DELETEs of the rows of `table` that the incremental run recomputes."""
        d, target = self.d, self.f(table)
        of_type = "(SELECT entity_id FROM {c} WHERE entity_type = {t})"
        if table == EDGE_ENTITIES:
            return [d.delete_matching_keys(target, changed["groups"], GROUP_KEY)]
        if table == "nexus_entity_identifiers":
            return [d.delete_matching_keys(target, changed["identifiers"], IDENTIFIER_KEY)]
        if table == "nexus_events":
            where = [f"id IN (SELECT id FROM {changed['events']})"]
        elif table == "nexus_entity_traits":
            where = [f"trait_id IN (SELECT id FROM {changed['traits']})"]
        elif table == "nexus_event_participants":
            where = [f"event_id IN (SELECT event_id FROM {changed['participant_events']})"]
        elif table == "nexus_memberships":  # two statements rather than an OR of subqueries
            where = [
                f"person_id IN {of_type.format(c=changed['entities'], t=d.literal('person'))}",
                f"group_id IN {of_type.format(c=changed['moved_entities'], t=d.literal('group'))}",
            ]
        else:  # an entity table
            entity_type = next(t for t in self.entity_types if entity_table(t) == table)
            where = [f"id IN {of_type.format(c=changed['entities'], t=d.literal(entity_type))}"]
        return [f"DELETE FROM {target} WHERE {w}" for w in where]

    def loaded_since(self, prev: _Snapshot) -> str:
        """Predicate on a core row: loaded after the previous build."""
        return "TRUE" if prev.core_high is None else f"_loaded_at > {self.d.literal(prev.core_high)}"

    def changes(self, prev: _Snapshot, writes: PendingWrites) -> dict[str, str]:
        """Scratch tables naming what changed since `prev` (kind -> quoted temp table)."""
        d, lit = self.d, self.d.literal
        core_cut = self.loaded_since(prev)
        res_cut = "TRUE" if prev.resolution_high is None else f"resolved_at > {lit(prev.resolution_high)}"

        def touched(model: str, columns: str) -> str:
            """Rows of a core model loaded since the cut, and those it replaced since."""
            sql = f"SELECT {columns} FROM {self.core[model]} WHERE {core_cut}"
            if model in self.retracted and prev.core_high is not None:
                sql += (
                    f" UNION ALL SELECT {columns} FROM {self.retracted[model]} "
                    f"WHERE _retracted_at > {lit(prev.core_high)}"
                )
            return sql

        def scratch(kind: str, select_sql: str) -> str:
            return self.scratch(writes, kind, select_sql)

        key = "entity_type, identifier_type, identifier_value"
        out: dict[str, str] = {}
        out["events"] = scratch("events", f"SELECT DISTINCT id FROM ({touched('events', 'id')}) x")
        core_ids = scratch("core_identifiers", touched("identifiers", f"source, event_id, edge_id, {key}"))
        # identity-map rows rewritten by resolution, and the log's word on ids that went away
        resolved = [
            f"SELECT {key}, entity_id, CAST(NULL AS {d.text_type}) AS previous_entity_id, is_hub FROM {m} "
            f"WHERE {res_cut}"
            for m in self.maps.values()
        ]
        resolved.append(
            f"SELECT {key}, entity_id, previous_entity_id, CAST(NULL AS {d.boolean_type}) AS is_hub FROM {self.log} "
            f"WHERE {res_cut} AND entity_type IN ({d.literal_list(list(self.entity_types))})"
        )
        res_ids = scratch("resolved", " UNION ALL ".join(resolved))
        out["identifiers"] = scratch("identifiers", f"SELECT DISTINCT {key} FROM {res_ids}")
        # Groups and events hang on an identifier's entity and hub flag only: those whose values
        # differ from what the final tables were built with (a log row always differs) have their
        # core rows' groups and events recomputed; a map row rewritten for its sightings alone
        # changes the identifier's and its entity's rows, not them.
        # The final rows of those identifiers are staged first: PostgreSQL (before 16) can only
        # hash the NOT EXISTS side of an anti join, which would be the whole final table.
        before = scratch(
            "resolved_before",
            f"SELECT {key}, entity_id, is_hub FROM {self.f('nexus_entity_identifiers')} o "
            f"WHERE {d.key_in('o', out['identifiers'], IDENTIFIER_KEY)}",
        )
        moved = scratch(
            "moved",
            f"""SELECT DISTINCT {key} FROM {res_ids} r WHERE NOT EXISTS (
    SELECT 1 FROM {before} o
    WHERE {SAME_IDENTIFIER.format(a="o", b="r")} AND o.entity_id = r.entity_id
        AND {d.null_safe_equal("o.is_hub", "r.is_hub")})""",
        )
        if has_memberships(self.entity_types):
            # a group's memberships change with its identity, not with its sightings or traits
            # (a company sighted again would otherwise rewrite the rows of all its members)
            hit = f"JOIN {moved} k ON {SAME_IDENTIFIER.format(a='k', b='r')}"
            out["moved_entities"] = scratch(
                "moved_entities",
                f"""SELECT DISTINCT entity_type, entity_id FROM (
    SELECT r.entity_type, r.entity_id FROM {res_ids} r {hit}
    UNION ALL SELECT r.entity_type, r.previous_entity_id FROM {res_ids} r {hit}) x
WHERE entity_id IS NOT NULL""",
            )
        repointed = scratch(
            "repointed",
            self.rows_where(
                "i.source, i.edge_id, i.entity_type, i.event_id",
                self.core["identifiers"],
                "i",
                f"JOIN {moved} k ON {SAME_IDENTIFIER.format(a='k', b='i')}",
            ),
        )
        affected = (
            f"SELECT source, edge_id, entity_type, event_id FROM {core_ids} "
            f"UNION ALL SELECT source, edge_id, entity_type, event_id FROM {repointed}"
        )
        out["groups"] = scratch(
            "groups", f"SELECT DISTINCT source, edge_id, entity_type FROM ({affected}) x WHERE edge_id IS NOT NULL"
        )
        out["participant_events"] = scratch(
            "participant_events", f"SELECT DISTINCT event_id FROM ({affected}) x WHERE event_id IS NOT NULL"
        )
        # The core traits of changed groups, and those loaded since (one pass over core traits);
        # with the ones replaced since, that is every changed trait id.
        traits = self.core["traits"]
        trait_rows = scratch(
            "trait_rows",
            f"SELECT t.* FROM {traits} t WHERE {core_cut} UNION ALL "
            + self.rows_where(
                "t.*",
                traits,
                "t",
                f"WHERE {d.key_in('t', out['groups'], GROUP_KEY)} AND NOT COALESCE({core_cut}, FALSE)",
            ),
        )
        replaced = ""
        if "traits" in self.retracted and prev.core_high is not None:
            replaced = (
                f" UNION ALL SELECT id FROM {self.retracted['traits']} WHERE _retracted_at > {lit(prev.core_high)}"
            )
        out["traits"] = scratch("traits", f"SELECT DISTINCT id FROM (SELECT id FROM {trait_rows}{replaced}) x")
        # Entities whose row changes, as far as known before the edge groups are recomputed:
        # re-pointed ones (old and new ids), those of changed core identifiers (their sources), of
        # changed traits' previous rows, of changed memberships.
        et = self.f("nexus_entity_traits")
        # the identifiers of changed core rows and of both sides of changed memberships: their
        # entities, found in one pass over the maps
        held = [f"SELECT {key} FROM {core_ids}"]
        if has_memberships(self.entity_types):
            memberships = touched(
                "memberships",
                "person_identifier_type, person_identifier_value, group_identifier_type, group_identifier_value",
            )
            held += [
                f"SELECT {lit(kind)}, ms.{kind}_identifier_type, ms.{kind}_identifier_value FROM ({memberships}) ms"
                for kind in ("person", "group")
            ]
        parts = [
            f"SELECT entity_type, entity_id FROM {res_ids}",
            f"SELECT entity_type, previous_entity_id FROM {res_ids}",
            f"""SELECT m.entity_type, m.entity_id FROM {self.all_maps()} m
JOIN (SELECT DISTINCT * FROM ({" UNION ALL ".join(held)}) h) k ON {SAME_IDENTIFIER.format(a="k", b="m")}""",
            f"SELECT entity_type, entity_id FROM {et} WHERE trait_id IN (SELECT id FROM {out['traits']})",
        ]
        union = " UNION ALL ".join(f"SELECT * FROM ({p}) p{i}" for i, p in enumerate(parts))
        known = scratch("entities_known", f"SELECT DISTINCT * FROM ({union}) x WHERE entity_id IS NOT NULL")
        known_keys = scratch("entity_keys_known", self.identifiers_of(known))
        if has_memberships(self.entity_types):
            out["memberships_of_entities"] = self.memberships_of(known_keys, writes, "memberships_of_entities")
        out["identifiers_of_changes"] = scratch(
            "identifiers_of_changes", self.identifiers_of_changes(out["groups"], out["participant_events"], known_keys)
        )
        # The identity-map rows every later statement reads, staged once: those of the changed
        # identifiers, of every identifier of the changed entities, and of every identifier in the
        # staged core rows (a changed event's other participants, a changed membership's other
        # side). Each table then joins small sets instead of whole maps.
        map_keys = [
            f"SELECT {key} FROM {out['identifiers']}",
            f"SELECT {key} FROM {known_keys}",
            f"SELECT {key} FROM {out['identifiers_of_changes']}",
        ]
        if "memberships_of_entities" in out:
            map_keys += self.membership_sides(out["memberships_of_entities"])
        out["map_keys"] = scratch("map_keys", f"SELECT DISTINCT * FROM ({' UNION ALL '.join(map_keys)}) k")
        for entity_type, table in self.maps.items():
            out[f"map_rows_{entity_type}"] = scratch(
                f"map_rows_{entity_type}",
                f"SELECT m.* FROM {table} m WHERE {d.key_in('m', out['map_keys'], IDENTIFIER_KEY)}",
            )
        selects = self.render(
            changed=out,
            only=[EDGE_ENTITIES],
            core_rows={"identifiers": out["identifiers_of_changes"]},
            map_rows=self.staged_maps(out),
        )
        out["edge_entities"] = scratch("edge_entities", selects[EDGE_ENTITIES])
        # the edge entities of the trait rows' groups as they will be after this run
        edge_entities = scratch(
            "edge_entities_of_traits",
            f"""SELECT o.* FROM {self.f(EDGE_ENTITIES)} o WHERE {d.key_in("o", trait_rows, GROUP_KEY)}
    AND NOT EXISTS (SELECT 1 FROM {out["groups"]} g WHERE {SAME_GROUP.format(a="g", b="o")})
UNION ALL SELECT * FROM {out["edge_entities"]}""",
        )
        selects = self.render(
            changed=out,
            edge_entities=edge_entities,
            only=["nexus_entity_traits"],
            core_rows={"traits": trait_rows},
        )
        out["new_traits"] = scratch("new_traits", selects["nexus_entity_traits"])
        # The entities the changed traits now belong to are nearly always known already; any
        # others join the set, and only then is core read again for their identifiers' rows.
        unknown = scratch(
            "entities_unknown",
            f"""SELECT DISTINCT n.entity_type, n.entity_id FROM {out["new_traits"]} n
WHERE n.entity_id IS NOT NULL AND NOT EXISTS (
    SELECT 1 FROM {known} k WHERE k.entity_type = n.entity_type AND k.entity_id = n.entity_id)""",
        )
        if not self.wh.count(unknown):
            out["entities"], out["entity_keys"] = known, known_keys
            out["identifiers_of_entities"] = out["identifiers_of_changes"]
            return out
        unknown_keys = scratch("entity_keys_unknown", self.identifiers_of(unknown))
        out["entities"] = scratch("entities", f"SELECT * FROM {known} UNION ALL SELECT * FROM {unknown}")
        out["entity_keys"] = scratch(
            "entity_keys", f"SELECT * FROM {known_keys} UNION ALL SELECT * FROM {unknown_keys}"
        )
        # UNION, not UNION ALL: a row may be in both
        out["identifiers_of_entities"] = scratch(
            "identifiers_of_entities",
            f"SELECT * FROM {out['identifiers_of_changes']} UNION "
            f"SELECT {self.identifier_columns} FROM {self.core['identifiers']} i "
            f"WHERE {d.key_in('i', unknown_keys, IDENTIFIER_KEY)}",
        )
        more_keys = [f"SELECT {key} FROM {unknown_keys}"]
        if "memberships_of_entities" in out:
            unknown_memberships = self.memberships_of(unknown_keys, writes, "memberships_of_unknown")
            out["memberships_of_entities"] = scratch(
                "memberships_of_all_entities",
                f"SELECT * FROM {out['memberships_of_entities']} UNION SELECT * FROM {unknown_memberships}",
            )
            more_keys += self.membership_sides(unknown_memberships)
        self.add_map_rows(out, writes, more_keys)
        return out

    def identifiers_of_changes(self, groups: str, events: str, keys: str) -> str:
        """SELECT of the core identifier rows of the changed `groups` and `events` (edge entities
        and participants are recomputed from them; each template keeps its part) and of the
        identifier `keys` of the known entities (their sources), with the columns the final
        templates read (`identifier_columns`).

        Where indexes serve a join (PostgreSQL), three joins from the key sets, each kept apart
        from the ones before it by anti joins against their (small) key sets: the planner looks
        rows up by index where that is cheaper than a scan, and no sort of whole rows removes
        duplicates (at 1M persons 9-11 s against 13-15 s for the one pass below, whose three
        hash joins each hash every row of the table). Elsewhere one pass over the table with
        outer joins, each key set distinct, rather than an OR of three subqueries, which cannot
        plan as joins. The narrow columns are little more than the join keys, so they are carried
        through the joins; whole rows are read a second time by row locator (`rows_where`).
        """
        core, columns = self.core["identifiers"], self.identifier_columns
        if self.d.probes_indexes:
            not_group = f"NOT EXISTS (SELECT 1 FROM {groups} g WHERE {SAME_GROUP.format(a='g', b='i')})"
            not_event = f"NOT EXISTS (SELECT 1 FROM {events} e WHERE e.event_id = i.event_id)"
            return f"""SELECT {columns} FROM {groups} g JOIN {core} i ON {SAME_GROUP.format(a="g", b="i")}
UNION ALL SELECT {columns} FROM {events} e JOIN {core} i ON i.event_id = e.event_id WHERE {not_group}
UNION ALL SELECT {columns} FROM {keys} k JOIN {core} i ON {SAME_IDENTIFIER.format(a="k", b="i")}
WHERE {not_group} AND {not_event}"""
        tail = f"""LEFT JOIN {groups} g ON {SAME_GROUP.format(a="g", b="i")}
LEFT JOIN {events} e ON e.event_id = i.event_id
LEFT JOIN {keys} k ON {SAME_IDENTIFIER.format(a="k", b="i")}
WHERE g.edge_id IS NOT NULL OR e.event_id IS NOT NULL OR k.identifier_value IS NOT NULL"""
        if self.narrow_identifiers:
            return f"SELECT {columns} FROM {core} i {tail}"
        return self.rows_where(columns, core, "i", tail)

    def rows_where(self, columns: str, table: str, alias: str, tail: str) -> str:
        """SELECT `columns` of the rows of `table` (as `alias`) that `tail` keeps: joins that match
        each row at most once, and a WHERE. With a row locator the tail reads only the columns it
        names, and the others are read for the rows it keeps alone (a whole-table join would carry
        them all); the locator is used within the one statement."""
        loc = self.d.row_locator
        if not loc:
            return f"SELECT {columns} FROM {table} {alias} {tail}"
        return (
            f"SELECT {columns} FROM {table} {alias} "
            f"WHERE {alias}.{loc} IN (SELECT {alias}.{loc} FROM {table} {alias} {tail})"
        )

    def identifiers_of(self, entities: str) -> str:
        """SELECT of the identifier keys the identity maps give the (entity_type, entity_id) rows of
        `entities`."""
        return f"""SELECT m.entity_type, m.identifier_type, m.identifier_value FROM {self.all_maps()} m
JOIN {entities} c ON c.entity_type = m.entity_type AND c.entity_id = m.entity_id"""

    def all_maps(self) -> str:
        return self.engine.render("final/all_maps.sql", maps=self.maps)


def build_final(
    wh: Warehouse,
    engine: TemplateEngine,
    entity_types: dict[str, EntityTypeConfig],
    schemas: SchemasConfig,
    run: RunContext,
) -> dict[str, Any]:
    """Bring the final tables up to date with core and the maps (see the module docstring)."""
    from airflow_provider_nexus.resolution.resolve import ensure_resolution_indexes, ensure_resolution_tables

    wh.ensure_schema(schemas.core)
    wh.ensure_schema(schemas.final)
    wh.ensure_schema(schemas.resolution)
    for model in CORE_MODELS:
        ensure_model_table(wh, schemas.core, f"nexus_{model}", model, _EXTRA_COLUMNS[model])
    for entity_type in entity_types:
        ensure_resolution_tables(wh, schemas.resolution, entity_type)
        ensure_resolution_indexes(wh, schemas.resolution, entity_type)
    summary = _Final(wh, engine, entity_types, schemas, run).build()
    for table, rows in summary["tables"].items():
        log.info("%s.%s: %d row(s) written", schemas.final, table, rows)
    return summary


__all__: Sequence[str] = ["build_final", "final_tables", "render_final"]
