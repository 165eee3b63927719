"""Statement helpers for resolution: many small single statements, run without re-parsing.

`Warehouse.execute` splits scripts with sqlparse, which costs more than the statements
themselves in the component loop; every statement built here is exactly one statement, so it
is run directly.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from airflow_provider_nexus.warehouse import Warehouse


def run_statement(wh: Warehouse, sql: str) -> None:
    """Run one statement (never a script) on the warehouse's session."""
    wh.execute_statement(sql)


def replace_table(wh: Warehouse, target: str, select_sql: str, *, temp: bool = False, kind: str = "") -> None:
    """`target` := result of `select_sql`, as one or two single statements.

    ``temp``: a session-local temporary table (`target` must then be unqualified). Scratch tables
    are temporary: on DuckDB a persistent table pays for compression and block writes (about ten
    times the cost of the same temporary table), on PostgreSQL for WAL.
    ``kind``: the kind of a non-temporary table, e.g. ``UNLOGGED TABLE`` (default ``TABLE``).
    """
    kind = "TEMP TABLE" if temp else (kind or "TABLE")
    if wh.dialect.supports_create_or_replace and (wh.dialect.replaces_temp_tables or not temp):
        run_statement(wh, f"CREATE OR REPLACE {kind} {target} AS {select_sql}")
    else:
        drop_table(wh, target, temp=temp)
        run_statement(wh, f"CREATE {kind} {target} AS {select_sql}")
    analyze = wh.dialect.analyze(target)
    if analyze:
        run_statement(wh, analyze)


def drop_table(wh: Warehouse, target: str, *, temp: bool = False) -> None:
    run_statement(wh, wh.dialect.drop_table(target, temp=temp))


@contextmanager
def integer_aggregate(wh: Warehouse) -> Iterator[None]:
    """Run the statements inside under the dialect's `integer_aggregate_settings`, then put the
    session's own values back. Set for the transaction only (resolution always runs in one):
    on a failure the rollback restores them, so nothing is run on an aborted transaction."""
    settings = wh.dialect.integer_aggregate_settings
    if not settings:
        yield
        return
    lit = wh.dialect.literal
    saved = [(name, wh.scalar(f"SELECT current_setting({lit(name)})")) for name, _ in settings]
    for name, value in settings:
        wh.scalar(f"SELECT set_config({lit(name)}, {lit(value)}, true)")
    yield
    for name, value in saved:
        wh.scalar(f"SELECT set_config({lit(name)}, {lit(value)}, true)")
