"""The script splitter every rendered template goes through."""

from __future__ import annotations

import pytest

from airflow_provider_nexus.config import SchemasConfig
from airflow_provider_nexus.warehouse import Warehouse, split_statements


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        ("SELECT 1", ["SELECT 1"]),
        ("  SELECT 1;  ", ["SELECT 1"]),
        ("SELECT 1; SELECT 2;", ["SELECT 1", "SELECT 2"]),
        ("SELECT 'a;b' AS x; SELECT 2", ["SELECT 'a;b' AS x", "SELECT 2"]),
        ("SELECT 1 -- a note; not a statement\n", ["SELECT 1 -- a note; not a statement"]),
        ("SELECT 1 -- a note", ["SELECT 1 -- a note"]),
        ("-- only a comment", []),
        ("/* only a comment */", []),
        ("-- a note\nSELECT 1", ["-- a note\nSELECT 1"]),
        ("SELECT 1;\n-- trailing note\n", ["SELECT 1"]),
        ("/* a; b */ SELECT 1; SELECT 2", ["/* a; b */ SELECT 1", "SELECT 2"]),
        ("", []),
        ("  \n ", []),
    ],
)
def test_split_statements(script: str, expected: list[str]) -> None:
    assert split_statements(script) == expected


def test_latest_value_ranks_an_undated_row_last(backend: tuple[Warehouse, SchemasConfig]) -> None:
    """PostgreSQL sorts NULLs first when descending; the latest value must not be an undated one."""
    wh, _ = backend
    d = wh.dialect
    rows = "('old', TIMESTAMP '2024-01-01 00:00:00'), ('new', TIMESTAMP '2024-06-01 00:00:00'), ('undated', NULL)"
    latest = wh.scalar(f"SELECT {d.arg_max_where('v', 'ts', 'TRUE')} FROM (VALUES {rows}) AS t (v, ts)")
    assert latest == "new"


def test_lists_of_names_sort_byte_wise_under_any_collation(backend: tuple[Warehouse, SchemasConfig]) -> None:
    """A database created with a language collation (en_US, common on managed PostgreSQL) sorts
    'crm_eu' before 'crm2'; the `sources` list of an entity must read the same everywhere."""
    wh, _ = backend
    d = wh.dialect
    column = 's COLLATE "en-US-x-icu"' if d.name == "postgres" else "s"
    listed = wh.scalar(
        f"SELECT {d.string_agg_distinct('x')} FROM (SELECT {column} AS x FROM "
        "(VALUES ('crmeu'), ('crm_eu'), ('crm2'), ('crm2')) AS v (s)) AS t"
    )
    assert listed == "crm2,crm_eu,crmeu"


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_postgres_session_reads_backslashes_as_plain_characters(
    backend: tuple[Warehouse, SchemasConfig], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server or role with standard_conforming_strings off would read a backslash in a rendered
    literal as an escape; the session turns it on."""
    from conftest import POSTGRES_URI

    monkeypatch.setenv("PGOPTIONS", "-c standard_conforming_strings=off")
    monkeypatch.setenv("AIRFLOW_CONN_NEXUS_SCS", POSTGRES_URI.replace("postgresql://", "postgres://", 1))
    with Warehouse.open("nexus_scs") as wh:
        value = "a\\' OR TRUE --"
        assert wh.scalar(f"SELECT {wh.dialect.literal(value)}") == value
