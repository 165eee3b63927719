"""Incremental runs of the final layer give the rows a full rebuild gives, batch after batch.

The demo's sources are delivered batch by batch and run through every layer (no Airflow: the
layer functions the operators call). Later batches re-sync CRM contacts, so core replaces rows,
resolution subtracts them and the final layer recomputes only what changed. After each batch the
incremental result is compared with a full rebuild of the same data, on DuckDB and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_nexus.config import PipelineConfig, SchemasConfig, load_config
from airflow_provider_nexus.demo.generator import DemoSpec, write_batch
from airflow_provider_nexus.layers.common import RunContext
from airflow_provider_nexus.layers.core import build_core
from airflow_provider_nexus.layers.final import EDGE_ENTITIES, FINAL_TEMPLATES, build_final, final_tables
from airflow_provider_nexus.layers.raw import load_source
from airflow_provider_nexus.layers.source import build_source
from airflow_provider_nexus.resolution import ResolutionSummary, resolve_entity_type
from airflow_provider_nexus.resolution.noise import noise_rules_from_config
from airflow_provider_nexus.templates import TemplateEngine, packaged_sql_dir
from airflow_provider_nexus.warehouse import Warehouse

DEMO_CONFIG = Path(__file__).resolve().parents[1] / "dags" / "configs" / "nexus_demo.yml"
T0 = dt.datetime(2024, 3, 1, 6, 0, 0)
#: The file-based demo sources; billing reads a landing schema outside the test's own schemas.
FILE_SOURCES = {"crm", "product", "support"}


def _config(backend: tuple[Warehouse, SchemasConfig], data: Path) -> PipelineConfig:
    config = load_config(DEMO_CONFIG)
    return config.model_copy(
        update={
            "schemas": backend[1],
            "data_dir": str(data),
            "sources": [s for s in config.sources if s.name in FILE_SOURCES],
        }
    )


def _run_batch(
    wh: Warehouse, config: PipelineConfig, run: RunContext, since: dt.datetime | None
) -> tuple[dict[str, ResolutionSummary], dict[str, Any]]:
    _ingest(wh, config, run)
    resolved = {entity_type: _resolve(wh, config, entity_type, run, since) for entity_type in config.entity_types}
    engine = TemplateEngine(wh.dialect, config.resolved_template_dirs())
    return resolved, build_final(wh, engine, config.entity_types, config.schemas, run)


def _final(wh: Warehouse, config: PipelineConfig) -> dict[str, list[tuple[Any, ...]]]:
    d = wh.dialect
    return {
        table: sorted(wh.fetchall(f"SELECT * FROM {d.table(config.schemas.final, table)}"), key=repr)
        for table in [*final_tables(config.entity_types), EDGE_ENTITIES]
    }


def _built_base(backend: tuple[Warehouse, SchemasConfig], tmp_path: Path) -> PipelineConfig:
    """The config of a 200-person demo batch run through every layer at T0."""
    config = _config(backend, tmp_path / "data")
    write_batch(DemoSpec(persons=200, batches=1, seed=7), 0, tmp_path / "data", None)
    _run_batch(backend[0], config, RunContext(run_id="b0", now=T0), None)
    return config


@pytest.fixture(autouse=True)
def always_incremental(monkeypatch: pytest.MonkeyPatch) -> None:
    """Small batches change a large share of a small demo's entities; take the incremental path
    whatever the share, as a large base would."""
    monkeypatch.setattr("airflow_provider_nexus.layers.final.FULL_REBUILD_SHARE", float("inf"))


def test_incremental_final_equals_a_full_rebuild(backend: tuple[Warehouse, SchemasConfig], tmp_path: Path) -> None:
    wh = backend[0]
    config = _config(backend, tmp_path / "data")
    spec = DemoSpec(persons=400, batches=4, seed=11)
    since = None
    retracted = 0
    for batch in range(spec.batches):
        write_batch(spec, batch, tmp_path / "data", None)
        run = RunContext(run_id=f"b{batch}", now=T0 + dt.timedelta(hours=batch))
        resolved, final = _run_batch(wh, config, run, since)
        if batch:
            assert final["mode"] == "incremental", final
            assert 0 < final["changed_entities"], final
            for entity_type, summary in resolved.items():
                assert summary.mode == "incremental", (entity_type, summary.fallback_reason)
                retracted += summary.retracted_rows
        incremental = _final(wh, config)
        assert all(incremental[t] for t in final_tables(config.entity_types)), "a final table is empty"
        rebuilt = build_final(
            wh,
            TemplateEngine(wh.dialect, config.resolved_template_dirs()),
            config.entity_types,
            config.schemas,
            RunContext(run_id=f"b{batch}_full", now=run.now, full_refresh=True),
        )
        assert rebuilt["mode"] == "full"
        full = _final(wh, config)
        for table in full:
            assert incremental[table] == full[table], f"batch {batch}: {table} differs from a full rebuild"
        since = run.now
    # the demo re-syncs contacts: resolution subtracted replaced rows instead of starting over
    assert retracted > 0


def test_an_overriding_final_template_may_read_any_core_column(
    backend: tuple[Warehouse, SchemasConfig], tmp_path: Path
) -> None:
    """An incremental run stages only the core identifier columns the packaged final templates
    read; a user's template in their place gets whole rows, so it may read any column."""
    wh = backend[0]
    packaged = (packaged_sql_dir() / "default" / "final" / "event_participants.sql").read_text()
    assert "WHERE i.event_id IS NOT NULL" in packaged
    override = tmp_path / "templates" / "final" / "event_participants.sql"
    override.parent.mkdir(parents=True)
    # `id` is not among the narrow columns: the staged rows must be whole for this to run
    override.write_text(packaged.replace("WHERE i.event_id IS NOT NULL", "WHERE i.event_id IS NOT NULL AND i.id <> ''"))
    config = _config(backend, tmp_path / "data")
    config = config.model_copy(update={"template_dirs": [*config.template_dirs, str(override.parents[1])]})
    spec = DemoSpec(persons=200, batches=2, seed=13)
    for batch in range(spec.batches):
        write_batch(spec, batch, tmp_path / "data", None)
        run = RunContext(run_id=f"b{batch}", now=T0 + dt.timedelta(hours=batch))
        _, final = _run_batch(wh, config, run, T0 if batch else None)
    assert final["mode"] == "incremental" and final["changed_entities"] > 0, final
    incremental = _final(wh, config)
    engine = TemplateEngine(wh.dialect, config.resolved_template_dirs())
    full_run = RunContext(run_id="full", now=T0 + dt.timedelta(hours=1), full_refresh=True)
    assert build_final(wh, engine, config.entity_types, config.schemas, full_run)["mode"] == "full"
    assert _final(wh, config) == incremental


def test_final_templates_lists_every_packaged_final_template() -> None:
    """Whether any final template is overridden is judged from this list (see the test above)."""
    packaged = {path.stem for path in (packaged_sql_dir() / "default" / "final").glob("*.sql")}
    assert packaged == set(FINAL_TEMPLATES)


def test_rerun_and_empty_batch_change_nothing(backend: tuple[Warehouse, SchemasConfig], tmp_path: Path) -> None:
    wh = backend[0]
    config = _config(backend, tmp_path / "data")
    spec = DemoSpec(persons=200, batches=2, seed=5)
    for batch in range(2):
        write_batch(spec, batch, tmp_path / "data", None)
        _run_batch(
            wh, config, RunContext(run_id=f"b{batch}", now=T0 + dt.timedelta(hours=batch)), T0 if batch else None
        )
    before = _final(wh, config)
    resolved, final = _run_batch(
        wh, config, RunContext(run_id="empty", now=T0 + dt.timedelta(hours=5)), T0 + dt.timedelta(hours=1)
    )
    assert all(r.batch_rows == 0 and r.retracted_rows == 0 for r in resolved.values()), resolved
    assert final["mode"] == "incremental" and final["changed_entities"] == 0, final
    assert all(rows == 0 for rows in final["tables"].values()), final
    assert _final(wh, config) == before


def test_core_rows_changed_without_a_record_force_a_full_build(
    backend: tuple[Warehouse, SchemasConfig], tmp_path: Path
) -> None:
    """A hand edit of core (or a core full refresh) leaves no replaced-row copies to follow: the
    next build must notice from the counts and rebuild in full, not patch from stale change sets."""
    wh = backend[0]
    config = _config(backend, tmp_path / "data")
    spec = DemoSpec(persons=200, batches=1, seed=3)
    write_batch(spec, 0, tmp_path / "data", None)
    _run_batch(wh, config, RunContext(run_id="b0", now=T0), None)
    core = wh.dialect.table(config.schemas.core, "nexus_traits")
    wh.execute(f"DELETE FROM {core} WHERE id IN (SELECT min(id) FROM {core})")
    engine = TemplateEngine(wh.dialect, config.resolved_template_dirs())
    later = RunContext(run_id="after_edit", now=T0 + dt.timedelta(hours=1))
    final = build_final(wh, engine, config.entity_types, config.schemas, later)
    assert final["mode"] == "full", final
    assert "nexus_traits" in final["reason"] and "without a record" in final["reason"], final
    # with the counts recorded again, the next run is incremental and changes nothing
    again = build_final(
        wh, engine, config.entity_types, config.schemas, RunContext(run_id="next", now=T0 + dt.timedelta(hours=2))
    )
    assert again["mode"] == "incremental" and again["changed_entities"] == 0, again


def test_postgres_final_and_core_tables_get_their_lookup_indexes(
    backend: tuple[Warehouse, SchemasConfig], tmp_path: Path
) -> None:
    """Incremental runs find changed rows by key; on PostgreSQL that needs indexes, or every
    lookup is a sequential scan of the whole table. Engines without indexes create none."""
    wh, schemas = backend
    config = _config(backend, tmp_path / "data")
    write_batch(DemoSpec(persons=100, batches=1, seed=2), 0, tmp_path / "data", None)
    _run_batch(wh, config, RunContext(run_id="b0", now=T0), None)
    if wh.dialect.name == "duckdb":  # zone maps serve it; ART indexes would only slow writes
        assert wh.fetchall("SELECT index_name FROM duckdb_indexes()") == []
        return
    rows = wh.fetchall(
        "SELECT schemaname, tablename, indexdef FROM pg_indexes WHERE schemaname IN "
        f"({wh.dialect.literal_list([schemas.core, schemas.final, schemas.resolution])})"
    )
    indexed = {(schema, table) for schema, table, _ in rows}
    for table in [*final_tables(config.entity_types), EDGE_ENTITIES]:
        assert (schemas.final, table) in indexed, table
    for model in ("events", "identifiers", "traits", "memberships"):
        assert (schemas.core, f"nexus_{model}") in indexed, model
    assert (schemas.resolution, "nexus_person_nodes") in indexed  # the table the identity map is a view of
    assert any("USING brin" in definition and "_loaded_at" in definition for _, _, definition in rows)


def test_a_trait_moved_to_an_untouched_entity_reaches_that_entity(
    backend: tuple[Warehouse, SchemasConfig], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A re-synced trait that moves to another edge group changes the entity of that group, which
    nothing else in the batch touched: the incremental run must find it after recomputing the
    traits and read core again for its identifiers (the second, rarely taken pass)."""
    from airflow_provider_nexus.layers import final as final_layer
    from airflow_provider_nexus.layers.common import (
        MODEL_COLUMNS,
        RETRACTED_AT,
        Retraction,
        ensure_model_table,
        replace_model_rows,
        retracted_table_name,
    )

    wh, schemas = backend
    d = wh.dialect
    config = _built_base(backend, tmp_path)
    traits, edges = d.table(schemas.core, "nexus_traits"), d.table(schemas.final, EDGE_ENTITIES)
    trait_id, source, entity_type, entity_id = wh.fetchall(
        f"SELECT t.id, t.source, t.entity_type, e.entity_id FROM {traits} t JOIN {edges} e "
        "ON e.source = t.source AND e.edge_id = t.edge_id AND e.entity_type = t.entity_type ORDER BY t.id LIMIT 1"
    )[0]
    other_edge, other_entity = wh.fetchall(
        f"SELECT edge_id, entity_id FROM {edges} WHERE source = {d.literal(source)} "
        f"AND entity_type = {d.literal(entity_type)} AND entity_id <> {d.literal(entity_id)} ORDER BY edge_id LIMIT 1"
    )[0]
    moved_at = T0 + dt.timedelta(hours=1)
    columns = [name for name, _ in MODEL_COLUMNS["traits"]] + ["_loaded_at"]
    picked = {"edge_id": d.literal(other_edge), "_loaded_at": f"CAST({d.literal(moved_at)} AS {d.timestamp_type})"}
    wh.execute(
        f"CREATE TEMP TABLE nexus_test_moved AS SELECT "
        f"{', '.join(f'{picked.get(c, c)} AS {c}' for c in columns)} FROM {traits} WHERE id = {d.literal(trait_id)}"
    )
    retracted = ensure_model_table(
        wh,
        schemas.core,
        retracted_table_name("traits"),
        "traits",
        [("_loaded_at", "timestamp"), (RETRACTED_AT, "timestamp")],
    )
    with wh.transaction():
        replace_model_rows(wh, "traits", traits, "nexus_test_moved", columns, Retraction(retracted, moved_at))
    wh.execute("DROP TABLE nexus_test_moved")

    lookups: list[str] = []
    identifiers_of = final_layer._Final.identifiers_of
    monkeypatch.setattr(
        final_layer._Final,
        "identifiers_of",
        lambda self, entities: lookups.append(entities) or identifiers_of(self, entities),
    )
    engine = TemplateEngine(d, config.resolved_template_dirs())
    run = RunContext(run_id="moved", now=moved_at + dt.timedelta(minutes=1))
    summary = build_final(wh, engine, config.entity_types, config.schemas, run)
    assert summary["mode"] == "incremental", summary
    assert len(lookups) == 2, "the entity the trait moved to was not found in a second pass"
    incremental = _final(wh, config)
    moved = [r for r in incremental["nexus_entity_traits"] if r[-1] == trait_id]
    assert [r[1] for r in moved] == [other_entity]
    build_final(wh, engine, config.entity_types, config.schemas, RunContext("full", run.now, full_refresh=True))
    assert _final(wh, config) == incremental


def test_a_resighted_identifier_does_not_recompute_its_old_groups(
    backend: tuple[Warehouse, SchemasConfig], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An identifier seen again in a new event keeps its entity: resolution rewrites its map row
    (last seen), which changes its entity's row and its own, but not the groups and events of
    its earlier rows; only the new row's group and event are recomputed."""

    wh, schemas = backend
    d = wh.dialect
    config = _built_base(backend, tmp_path)
    identifiers = d.table(schemas.core, "nexus_identifiers")
    # an email seen in more than one edge group, so its earlier groups are worth not recomputing
    source, identifier_type, value = wh.fetchall(
        f"SELECT source, identifier_type, identifier_value FROM {identifiers} "
        "WHERE entity_type = 'person' AND identifier_type = 'email' "
        "GROUP BY source, identifier_type, identifier_value HAVING count(DISTINCT edge_id) > 1 "
        "ORDER BY identifier_value LIMIT 1"
    )[0]
    seen_at = T0 + dt.timedelta(days=400)
    _add_identifier_row(
        wh,
        schemas,
        {"id": "resighted-row", "event_id": "resighted-event", "edge_id": "resighted-edge"},
        seen_at,
        f"source = {d.literal(source)} AND identifier_type = {d.literal(identifier_type)} "
        f"AND identifier_value = {d.literal(value)}",
    )
    run = RunContext(run_id="resight", now=seen_at + dt.timedelta(minutes=1))
    for entity_type in config.entity_types:
        summary = _resolve(wh, config, entity_type, run, T0)
        assert summary.mode == "incremental", summary

    _, seen = _final_with_change_sets(wh, config, run, monkeypatch)
    assert seen["identifiers"] == [("person", identifier_type, value)]
    assert seen["moved"] == [], "a re-sighted identifier kept its entity; nothing moved"
    assert seen["groups"] == [(source, "resighted-edge", "person")]
    assert seen["participant_events"] == [("resighted-event",)]
    incremental = _final(wh, config)
    row = [r for r in incremental["nexus_entity_identifiers"] if r[2:4] == (identifier_type, value)]
    assert [r[5] for r in row] == [seen_at]
    engine = TemplateEngine(d, config.resolved_template_dirs())
    build_final(wh, engine, config.entity_types, schemas, RunContext("full", run.now, full_refresh=True))
    assert _final(wh, config) == incremental


def _add_identifier_row(
    wh: Warehouse, schemas: SchemasConfig, values: dict[str, Any], at: dt.datetime, like: str
) -> None:
    """A new core identifier row, seen and loaded at `at` (as core would load it): the first row
    matching the predicate `like`, with `values` in place of its columns."""
    d = wh.dialect
    identifiers = d.table(schemas.core, "nexus_identifiers")
    columns = wh.columns(schemas.core, "nexus_identifiers")
    stamp = f"CAST({d.literal(at)} AS {d.timestamp_type})"
    picked = {name: d.literal(value) for name, value in values.items()} | {"occurred_at": stamp, "_loaded_at": stamp}
    wh.execute(
        f"INSERT INTO {identifiers} ({', '.join(columns)}) SELECT {', '.join(picked.get(c, c) for c in columns)} "
        f"FROM {identifiers} WHERE {like} ORDER BY id LIMIT 1"
    )


def _final_with_change_sets(
    wh: Warehouse, config: PipelineConfig, run: RunContext, monkeypatch: pytest.MonkeyPatch
) -> tuple[dict[str, Any], dict[str, list[tuple[Any, ...]]]]:
    """An incremental final build, and the rows of each change set it made."""
    from airflow_provider_nexus.layers import final as final_layer

    seen: dict[str, list[tuple[Any, ...]]] = {}
    scratch = final_layer._Final.scratch

    def recording(self: Any, writes: Any, kind: str, select_sql: str) -> str:
        name = scratch(self, writes, kind, select_sql)
        seen[kind] = sorted(wh.fetchall(f"SELECT * FROM {name}"), key=repr)
        return name

    monkeypatch.setattr(final_layer._Final, "scratch", recording)
    engine = TemplateEngine(wh.dialect, config.resolved_template_dirs())
    summary = build_final(wh, engine, config.entity_types, config.schemas, run)
    monkeypatch.setattr(final_layer._Final, "scratch", scratch)
    assert summary["mode"] == "incremental", summary
    return summary, seen


def test_a_group_sighted_again_keeps_its_memberships_and_a_merged_group_moves_them(
    backend: tuple[Warehouse, SchemasConfig], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Memberships hang on a group's identity alone: a group seen again (its row changes) has none
    of its membership rows rewritten; two groups merged by a shared identifier have every
    membership of the loser re-pointed to the survivor. Both equal a full rebuild."""
    wh, schemas = backend
    d = wh.dialect
    config = _built_base(backend, tmp_path)
    memberships = d.table(schemas.final, "nexus_memberships")
    # two groups with members, and an identifier and an edge group of each
    picked = wh.fetchall(
        f"SELECT ei.entity_id, ei.identifier_type, ei.identifier_value, i.source, i.edge_id "
        f"FROM {d.table(schemas.final, 'nexus_entity_identifiers')} ei "
        f"JOIN {d.table(schemas.core, 'nexus_identifiers')} i ON i.entity_type = ei.entity_type "
        "AND i.identifier_type = ei.identifier_type AND i.identifier_value = ei.identifier_value "
        f"WHERE ei.entity_type = 'group' AND i.edge_id IS NOT NULL "
        f"AND ei.entity_id IN (SELECT group_id FROM {memberships}) ORDER BY ei.entity_id, i.edge_id"
    )
    first = picked[0]
    second = next(r for r in picked if r[0] != first[0])
    members_of = f"SELECT DISTINCT person_id FROM {memberships} WHERE group_id IN ({{}})"
    members = wh.fetchall(members_of.format(d.literal_list([first[0], second[0]])))

    def group_row_then_final(name: str, values: dict[str, Any], at: dt.datetime, since: dt.datetime) -> Any:
        """A new group identifier row at `at`, resolved and built incrementally; the run, the
        final summary and its change sets."""
        _add_identifier_row(
            wh, schemas, {"id": f"{name}-row", "event_id": f"{name}-event", **values}, at, "entity_type = 'group'"
        )
        run = RunContext(run_id=name, now=at + dt.timedelta(minutes=1))
        for entity_type in config.entity_types:
            assert _resolve(wh, config, entity_type, run, since).mode == "incremental"
        return (run, *_final_with_change_sets(wh, config, run, monkeypatch))

    # 1. the first group seen again, in an event and an edge group of its own
    seen_at = T0 + dt.timedelta(days=1)
    sighting = {
        "edge_id": "sighting-edge",
        "source": first[3],
        "identifier_type": first[1],
        "identifier_value": first[2],
    }
    _, summary, seen = group_row_then_final("sighting", sighting, seen_at, T0)
    assert ("group", first[0]) in seen["entities_known"], "the group's own row changes"
    assert seen["moved_entities"] == [], "a sighting moves no identifier"
    assert summary["tables"]["nexus_memberships"] == 0, "no membership row of a merely sighted group is rewritten"
    sighted = _final(wh, config)

    # 2. the second group's identifier joins the first group's edge group: the two merge
    link = {"edge_id": first[4], "source": first[3], "identifier_type": second[1], "identifier_value": second[2]}
    run, summary, seen = group_row_then_final("link", link, seen_at + dt.timedelta(days=1), seen_at)
    moved_groups = {entity_id for entity_type, entity_id in seen["moved_entities"] if entity_type == "group"}
    assert {first[0], second[0]} <= moved_groups
    incremental = _final(wh, config)
    survivors = {r[1] for r in incremental["nexus_memberships"]} & {first[0], second[0]}
    assert len(survivors) == 1, "the merged groups' memberships point at one survivor"
    assert sorted(wh.fetchall(members_of.format(d.literal(survivors.pop())))) == sorted(members)
    assert incremental != sighted
    engine = TemplateEngine(d, config.resolved_template_dirs())
    build_final(wh, engine, config.entity_types, schemas, RunContext("full", run.now, full_refresh=True))
    assert _final(wh, config) == incremental


def _copies(wh: Warehouse, schemas: SchemasConfig) -> set[tuple[str, str | None, Any]]:
    """(model, entity type, stamp) of every replaced-row copy in core."""
    d, found = wh.dialect, set()
    for model in ("identifiers", "traits", "memberships", "events"):
        table = f"nexus_{model}_retracted"
        if wh.table_exists(schemas.core, table):
            kind = "entity_type" if model in ("identifiers", "traits") else "NULL"
            sql = f"SELECT DISTINCT {kind}, _retracted_at FROM {d.table(schemas.core, table)}"
            found |= {(model, r[0], r[1]) for r in wh.fetchall(sql)}
    return found


def _ingest(wh: Warehouse, config: PipelineConfig, run: RunContext) -> dict[str, Any]:
    """Raw, source and core for one run; the core summary."""
    engine = TemplateEngine(wh.dialect, config.resolved_template_dirs())
    for source in config.sources:
        load_source(wh, source, config.schemas, config.resolved_data_dir(), config.incremental.lookback, run)
        build_source(wh, engine, source, config.entity_types, config.schemas, run)
    return build_core(wh, engine, config.sources, config.entity_types, config.schemas, run)


def _resolve(wh: Warehouse, config: PipelineConfig, entity_type: str, run: RunContext, since: Any) -> ResolutionSummary:
    with wh.transaction():
        return resolve_entity_type(
            wh,
            entity_type=entity_type,
            id_prefix=config.id_prefix(entity_type),
            core_schema=config.schemas.core,
            resolution_schema=config.schemas.resolution,
            run_id=run.run_id,
            resolved_at=run.now,
            noise=noise_rules_from_config(config.resolution.noise),
            since=since,
        )


def test_replaced_rows_are_pruned_once_every_reader_has_read_them(
    backend: tuple[Warehouse, SchemasConfig], tmp_path: Path
) -> None:
    """Core prunes the copies of replaced rows that every reader of them has read past, and
    keeps those a lagging reader still needs: an entity type without new work does not hold
    back the other type's copies, a lagging entity type keeps its own, a lagging final layer
    keeps every model's, and the readers that catch up run incrementally and equal a full
    rebuild."""
    wh, schemas = backend
    config = _config(backend, tmp_path / "data")
    engine = TemplateEngine(wh.dialect, config.resolved_template_dirs())
    spec = DemoSpec(persons=300, batches=5, seed=11)
    at = [T0 + dt.timedelta(hours=batch) for batch in range(spec.batches)]
    runs = [RunContext(run_id=f"b{batch}", now=at[batch]) for batch in range(spec.batches)]
    for batch in range(2):
        write_batch(spec, batch, tmp_path / "data", None)
        _run_batch(wh, config, runs[batch], at[batch - 1] if batch else None)
    # the demo re-syncs contacts from batch 1 on: person identifiers and events are replaced
    assert {("identifiers", "person", at[1]), ("events", None, at[1])} <= _copies(wh, schemas)

    # batch 2: every reader had read b1's copies; group resolution then skips this batch
    write_batch(spec, 2, tmp_path / "data", None)
    core = _ingest(wh, config, runs[2])
    assert core["pruned"]["identifiers"] > 0, core
    assert not {c for c in _copies(wh, schemas) if c[2] <= at[1]}, "copies every reader had read are kept"
    assert ("identifiers", "person", at[2]) in _copies(wh, schemas)
    assert _resolve(wh, config, "person", runs[2], at[1]).mode == "incremental"
    assert build_final(wh, engine, config.entity_types, schemas, runs[2])["mode"] == "incremental"

    # batch 3: group resolution's cut is still b1, but it reads no person rows: b2's person
    # copies go. Then person resolution and the final layer skip this batch.
    write_batch(spec, 3, tmp_path / "data", None)
    _ingest(wh, config, runs[3])
    assert ("identifiers", "person", at[2]) not in _copies(wh, schemas), "a quiet entity type held others back"
    assert _resolve(wh, config, "group", runs[3], at[1]).mode == "incremental"

    # batch 4: b3's copies stay, person identifiers for person resolution, the rest for the
    # final layer; both catch up from them
    write_batch(spec, 4, tmp_path / "data", None)
    _ingest(wh, config, runs[4])
    copies = _copies(wh, schemas)
    assert {("identifiers", "person", at[3]), ("events", None, at[3])} <= copies, "copies a lagging reader needs"
    for entity_type, since in (("person", at[2]), ("group", at[3])):
        summary = _resolve(wh, config, entity_type, runs[4], since)
        assert summary.mode == "incremental", (entity_type, summary.fallback_reason)
    final = build_final(wh, engine, config.entity_types, schemas, runs[4])
    assert final["mode"] == "incremental", final
    incremental = _final(wh, config)
    build_final(wh, engine, config.entity_types, schemas, RunContext("full", at[4], full_refresh=True))
    assert _final(wh, config) == incremental
