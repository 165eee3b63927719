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
