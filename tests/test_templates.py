"""Template lookup: user dirs before packaged, dialect folder before default, macros override."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from airflow_provider_nexus.dialects import get_dialect
from airflow_provider_nexus.errors import NexusTemplateError
from airflow_provider_nexus.templates import TemplateEngine, TemplateNotFoundError, packaged_sql_dir


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_lookup_order_user_dialect_then_default_then_packaged(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    engine = TemplateEngine(get_dialect("duckdb"), [first, second])
    # Only the packaged template exists.
    assert engine.find("core/events.sql") == packaged_sql_dir() / "default" / "core" / "events.sql"
    assert engine.is_packaged("core/events.sql")
    _write(second / "core" / "events.sql", "second-root")
    assert engine.find("core/events.sql") == second / "core" / "events.sql"
    assert not engine.is_packaged("core/events.sql")
    _write(second / "default" / "core" / "events.sql", "second-default")
    assert engine.find("core/events.sql") == second / "default" / "core" / "events.sql"
    _write(second / "duckdb" / "core" / "events.sql", "second-duckdb")
    assert engine.find("core/events.sql") == second / "duckdb" / "core" / "events.sql"
    _write(first / "core" / "events.sql", "first")
    assert engine.find("core/events.sql") == first / "core" / "events.sql"


def test_missing_template_lists_every_path_tried(tmp_path: Path) -> None:
    engine = TemplateEngine(get_dialect("duckdb"), [tmp_path / "mine"])
    with pytest.raises(TemplateNotFoundError) as info:
        engine.render("sources/crm/events.sql")
    message = str(info.value)
    for expected in (
        tmp_path / "mine" / "duckdb" / "sources/crm/events.sql",
        tmp_path / "mine" / "default" / "sources/crm/events.sql",
        tmp_path / "mine" / "sources/crm/events.sql",
        packaged_sql_dir() / "duckdb" / "sources/crm/events.sql",
        packaged_sql_dir() / "default" / "sources/crm/events.sql",
    ):
        assert str(expected) in message
    assert len(info.value.tried) == 5


def test_undefined_variable_fails_naming_it(tmp_path: Path) -> None:
    _write(tmp_path / "x.sql", "SELECT {{ not_given }}")
    engine = TemplateEngine(get_dialect("duckdb"), [tmp_path])
    with pytest.raises(NexusTemplateError, match="not_given"):
        engine.render("x.sql")


def test_template_names_cannot_escape(tmp_path: Path) -> None:
    engine = TemplateEngine(get_dialect("duckdb"), [tmp_path])
    with pytest.raises(NexusTemplateError, match="stay inside"):
        engine.render("../etc/passwd")


def test_user_macro_overrides_builtin_everywhere(tmp_path: Path) -> None:
    _write(tmp_path / "macros" / "phones.sql", "{% macro normalize_phone(expr) %}my_phone({{ expr }}){% endmacro %}")
    engine = TemplateEngine(get_dialect("duckdb"), [tmp_path])
    # Used directly and through the built-in dispatcher normalize_identifier.
    _write(tmp_path / "y.sql", "{{ normalize_phone('p') }} | {{ normalize_identifier('t', 'v', {'phone': 'phone'}) }}")
    out = engine.render("y.sql")
    assert out.startswith("my_phone(p) |")
    assert "my_phone(v)" in out


@pytest.mark.parametrize(
    ("macro", "raw", "expected"),
    [
        ("normalize_email", "'  Ann@Example.ORG '", "ann@example.org"),
        ("normalize_email", "'   '", None),
        ("normalize_phone", "'+1 (415) 555-0100'", "14155550100"),
        ("normalize_phone", "'415.555.0100'", "14155550100"),
        ("normalize_phone", "'+44 20 7946 0958'", "442079460958"),
        ("normalize_domain", "'https://WWW.Acme.com/about?x=1'", "acme.com"),
        ("normalize_domain", "' acme.COM '", "acme.com"),
        ("normalize_trim", "'  x '", "x"),
    ],
)
def test_builtin_normalisers_on_duckdb(macro: str, raw: str, expected: str | None) -> None:
    engine = TemplateEngine(get_dialect("duckdb"))
    sql = engine.env.from_string("SELECT {{ " + macro + "(raw) }}").render(raw=raw)
    assert duckdb.sql(sql).fetchall() == [(expected,)]


def test_surrogate_key_is_md5_of_pipe_joined_text() -> None:
    engine = TemplateEngine(get_dialect("duckdb"))
    sql = engine.env.from_string("SELECT {{ surrogate_key([\"'a'\", 'NULL', '1']) }}").render()
    import hashlib

    assert duckdb.sql(sql).fetchall() == [(hashlib.md5(b"a||1").hexdigest(),)]
