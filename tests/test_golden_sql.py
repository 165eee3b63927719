"""Golden SQL: every template of the demo pipeline, rendered per dialect, checked in.

A change to generated SQL shows up in review as a diff of tests/golden/. Regenerate with
`NEXUS_UPDATE_GOLDEN=1 pytest tests/test_golden_sql.py`. Each statement must also parse with
sqlglot's reader for that dialect (no fallback to an unparsed command).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import sqlglot
from sqlglot import exp

from airflow_provider_nexus.config import load_config
from airflow_provider_nexus.dialects import DIALECTS, get_dialect
from airflow_provider_nexus.render import render_pipeline

REPO = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).resolve().parent / "golden"
CONFIG = REPO / "dags" / "configs" / "nexus_demo.yml"
UPDATE = os.environ.get("NEXUS_UPDATE_GOLDEN") == "1"


def _rendered(dialect_name: str) -> dict[str, str]:
    return {
        name: sql.strip() + "\n"
        for name, sql in render_pipeline(load_config(CONFIG), get_dialect(dialect_name)).items()
    }


@pytest.mark.parametrize("dialect_name", sorted(DIALECTS))
def test_rendered_sql_matches_golden_files(dialect_name: str) -> None:
    rendered = _rendered(dialect_name)
    folder = GOLDEN / dialect_name
    if UPDATE:
        for stale in folder.rglob("*.sql"):
            stale.unlink()
        for name, sql in rendered.items():
            path = folder / f"{name}.sql"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(sql)
    on_disk = {p.relative_to(folder).with_suffix("").as_posix(): p.read_text() for p in folder.rglob("*.sql")}
    assert sorted(on_disk) == sorted(rendered), "golden files out of date: run NEXUS_UPDATE_GOLDEN=1 pytest " + __file__
    changed = [name for name in rendered if on_disk[name] != rendered[name]]
    assert not changed, f"generated SQL changed for {changed}: review, then NEXUS_UPDATE_GOLDEN=1 pytest {__file__}"


@pytest.mark.parametrize("dialect_name", sorted(DIALECTS))
def test_rendered_sql_parses_in_the_dialect(dialect_name: str) -> None:
    reader = get_dialect(dialect_name).sqlglot_name
    for name, sql in _rendered(dialect_name).items():
        statements = sqlglot.parse(sql, read=reader)
        assert statements, name
        for statement in statements:
            assert statement is not None and not isinstance(statement, exp.Command), (
                f"{name} did not parse: {sql[:200]}"
            )


@pytest.mark.parametrize("dialect_name", sorted(DIALECTS))
def test_incremental_final_sql_parses_in_the_dialect(dialect_name: str) -> None:
    """The final layer's incremental SELECTs (each template with its `changed` filter) parse too."""
    from airflow_provider_nexus.layers.common import RunContext
    from airflow_provider_nexus.layers.final import render_final
    from airflow_provider_nexus.templates import TemplateEngine

    config = load_config(CONFIG)
    dialect = get_dialect(dialect_name)
    kinds = ("events", "groups", "identifiers", "traits", "participant_events", "entities", "moved_entities")
    changed = {kind: dialect.quote(f"nexus_final__changed_{kind}") for kind in kinds}
    selects = render_final(
        TemplateEngine(dialect, config.resolved_template_dirs()),
        config.entity_types,
        config.schemas,
        RunContext(run_id="r"),
        changed=changed,
        edge_entities=f"(SELECT * FROM {changed['groups']})",
        traits=f"(SELECT * FROM {changed['traits']})",
    )
    for table, sql in selects.items():
        statement = sqlglot.parse_one(sql, read=dialect.sqlglot_name)
        assert not isinstance(statement, exp.Command), f"{table} did not parse: {sql[:200]}"
        tables = {t.name for t in statement.find_all(exp.Table)}
        assert tables & {name.strip('"`') for name in changed.values()}, f"{table} reads no change set"
