"""The script splitter every rendered template goes through."""

from __future__ import annotations

import pytest

from airflow_provider_nexus.warehouse import split_statements


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
