"""fakesnow for the Snowflake tests: the connector patched onto DuckDB, plus the work-arounds.

The product SQL is real Snowflake SQL. Where fakesnow translates or supports something wrongly,
the work-around lives here, in the tests, never in the dialect:

1. ``ALTER TABLE ... SWAP WITH`` is not parsed by fakesnow: ``SnowflakeDialect.publish_tables`` is
   replaced by the base class's version (DROP target + RENAME staged, in a transaction). The SWAP
   version is checked separately for the SQL it emits (tests/test_snowflake.py).
2. ``ALTER SESSION SET TIMEZONE = 'UTC'`` (run by ``SnowflakeDialect.connect``) is "not implemented"
   in fakesnow: skipped with ``fakesnow.patch(nop_regexes=...)``.
3. fakesnow turns ``ARRAY_AGG(x) WITHIN GROUP (ORDER BY ...)`` into DuckDB's ``ARRAY_AGG(x ORDER BY
   ...)``, which keeps NULLs; Snowflake's ARRAY_AGG skips them (``arg_max_where`` relies on it, so
   the final layer picked NULL for most identifiers). ``_skip_nulls_in_array_agg`` patches
   fakesnow's two transforms to add ``FILTER (WHERE x IS NOT NULL)`` under its TO_JSON wrapper.

Processes started by a test (``dag.test()`` runs in a child process) get the same patch through
``tests/fakesnow_site/sitecustomize.py`` when ``NEXUS_FAKESNOW_DB`` names the database folder.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import fakesnow
import fakesnow.transforms
from sqlglot import exp

from airflow_provider_nexus.dialects.base import Dialect
from airflow_provider_nexus.dialects.snowflake import SnowflakeDialect

SITE_DIR = Path(__file__).resolve().parent / "fakesnow_site"
#: An Airflow connection of conn_type snowflake; fakesnow accepts any credentials.
CONNECTION: dict[str, Any] = {
    "conn_type": "snowflake",
    "login": "u",
    "password": "p",
    "schema": "public",
    "extra": {"account": "acct", "database": "nexus_db", "warehouse": "wh"},
}

Setter = Callable[[Any, str, Any], None]


def apply_workarounds(setter: Setter = setattr) -> None:
    """Work-arounds 1 and 3 (pass ``monkeypatch.setattr`` to undo them after a test)."""
    setter(SnowflakeDialect, "publish_tables", Dialect.publish_tables)
    _skip_nulls_in_array_agg(setter)


def patch(db_path: Path | str) -> AbstractContextManager[Any]:
    """The Snowflake connector on fakesnow, databases kept as DuckDB files under `db_path`
    (work-around 2 included). Close every connection before another process opens the folder."""
    return fakesnow.patch(db_path=str(db_path), nop_regexes=[r"^ALTER SESSION SET TIMEZONE"])


def activate(db_path: Path | str) -> None:
    """Patch this whole process (used by sitecustomize in child processes)."""
    apply_workarounds()
    context = patch(db_path)
    context.__enter__()
    _ACTIVE.append(context)


_ACTIVE: list[AbstractContextManager[Any]] = []


def _skip_nulls_in_array_agg(setter: Setter) -> None:
    """Work-around 3: make fakesnow's ARRAY_AGG ... WITHIN GROUP skip NULLs, as Snowflake does."""
    transforms = fakesnow.transforms
    within_group, to_json = transforms.array_agg_within_group, transforms.array_agg

    def array_agg_within_group(expression: exp.Expression) -> exp.Expression:
        out = within_group(expression)
        if out is not expression and isinstance(out, exp.ArrayAgg):
            value = out.this.this if isinstance(out.this, exp.Order) else out.this
            not_null = exp.Not(this=exp.Is(this=value.copy(), expression=exp.Null()))
            return exp.Filter(this=out, expression=exp.Where(this=not_null))
        return out

    def array_agg(expression: exp.Expression) -> exp.Expression:
        if (
            isinstance(expression, exp.Filter)
            and isinstance(expression.this, exp.ArrayAgg)
            and not isinstance(expression.parent, exp.Window)
        ):
            return exp.Anonymous(this="TO_JSON", expressions=[expression])
        return to_json(expression)

    setter(transforms, "array_agg_within_group", array_agg_within_group)
    setter(transforms, "array_agg", array_agg)
