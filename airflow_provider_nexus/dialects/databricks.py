"""Databricks SQL (Spark SQL on Delta tables), through the Databricks provider's DatabricksSqlHook.

How Databricks differs from the other dialects, and what Nexus does about it:

* Identifiers are quoted with backticks; string literals escape with a backslash (``\\'`` and
  ``\\\\``). Doubling a quote does *not* escape it there: ``'it''s'`` is two adjacent literals that
  Spark concatenates into ``its``.
* Text is ``STRING``; timestamps are ``TIMESTAMP_NTZ`` (naive, as Nexus stores UTC) and the
  session time zone is set to UTC when connecting, so casts from zoned values agree.
* ``MERGE INTO``, ``QUALIFY`` and ``CREATE OR REPLACE TABLE`` exist; ``max_by`` gives the
  "latest value" aggregates; ``regexp_replace`` replaces every match and ``RLIKE`` matches anywhere
  in the value (Java regular expressions).
* No multi-statement transactions: see ``supports_transactions`` below.
* Temporary tables (``CREATE TEMPORARY TABLE``) exist on SQL warehouses only (Public Preview at the
  time of writing), not on classic or serverless job compute; Nexus stages its batches in them, so
  a Databricks connection must point at a SQL warehouse (``http_path`` of a warehouse).
* The catalog queries Nexus makes (``information_schema.columns``) need Unity Catalog.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from airflow_provider_nexus.dialects.base import Dialect, partition_clause

if TYPE_CHECKING:
    from airflow_provider_nexus.warehouse import Warehouse


class DatabricksDialect(Dialect):
    """Databricks SQL warehouse (Delta Lake tables, Unity Catalog).

    ``supports_transactions = False``: Databricks runs each statement as its own transaction (a
    Delta commit) and has no ``BEGIN ... COMMIT`` spanning several statements, so
    ``Warehouse.transaction()`` does not group anything here. The consequence for Nexus: a layer's
    writes and its watermark are applied one statement after another, not atomically. The
    watermark is still written after the rows it covers, so a task killed half-way never skips
    data: it leaves the old watermark, and its retry re-reads the same window and re-applies the
    same key-based deletes and inserts (idempotent). Until that retry, readers may see the
    half-applied batch (for example a batch's old rows deleted and its new rows not yet
    inserted), and a set of final tables is published one table at a time (each table swap is
    atomic on its own).
    """

    name: ClassVar[str] = "databricks"
    sqlglot_name: ClassVar[str] = "databricks"
    supports_transactions: ClassVar[bool] = False
    supports_merge: ClassVar[bool] = True
    supports_qualify: ClassVar[bool] = True
    supports_create_or_replace: ClassVar[bool] = True
    #: The temporary tables of SQL warehouses (Public Preview) refuse CREATE OR REPLACE; runtimes
    #: from 18.1 take it. Drop and create works on both.
    replaces_temp_tables: ClassVar[bool] = False
    #: Without multi-statement transactions nothing is rolled back, DDL included.
    transactional_ddl: ClassVar[bool] = False
    quote_char: ClassVar[str] = "`"
    timestamp_type: ClassVar[str] = "TIMESTAMP_NTZ"
    text_type: ClassVar[str] = "STRING"
    bigint_type: ClassVar[str] = "BIGINT"
    double_type: ClassVar[str] = "DOUBLE"

    # -- literals --------------------------------------------------------------------------
    def string_literal(self, value: str) -> str:
        """Backslash-escaped: Spark SQL reads ``\\`` as an escape and joins adjacent literals, so
        ``''`` would silently drop the quote instead of escaping it."""
        if "\x00" in value:
            raise ValueError("NUL characters cannot be rendered in a SQL string literal")
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"

    # -- fragments -------------------------------------------------------------------------
    def current_timestamp(self) -> str:
        # The session time zone is UTC (see `connect`), so the cast gives UTC wall-clock time.
        return f"CAST(current_timestamp() AS {self.timestamp_type})"

    def regexp_replace(self, expr: str, pattern: str, replacement: str) -> str:
        # Replaces every match; in the replacement, `$n` and `\` are special (Java's Matcher).
        return f"regexp_replace({expr}, {self.string_literal(pattern)}, {self.string_literal(replacement)})"

    def regexp_matches(self, expr: str, pattern: str) -> str:
        # RLIKE is true when the pattern matches a part of the value (Java's Matcher.find).
        return f"({expr} RLIKE {self.string_literal(pattern)})"

    def blank_characters_sql(self) -> str:
        # Spark's CHR wraps code points above 255; a literal's \uXXXX escapes do not
        return "'" + "".join(f"\\u{ord(ch):04X}" for ch in self.blank_characters()) + "'"

    def string_position(self, haystack: str, needle: str) -> str:
        return f"INSTR({haystack}, {needle})"

    def trim_characters(self, expr: str, characters: str) -> str:
        return f"BTRIM({expr}, {characters})"

    def create_temp_table_as(self, name: str, select_sql: str) -> str:
        name = self.quote(name)
        return f"DROP TEMPORARY TABLE IF EXISTS {name};\nCREATE TEMPORARY TABLE {name} AS {select_sql}"

    def drop_table(self, name: str, *, temp: bool = False) -> str:
        """Databricks refuses DROP TABLE on a temporary table: it has its own statement."""
        return f"DROP TEMPORARY TABLE IF EXISTS {name}" if temp else f"DROP TABLE IF EXISTS {name}"

    def utc_timestamp(self, expr: str) -> str:
        # TIMESTAMP (with local time zone) applies an offset; the session is UTC (see `connect`)
        return f"CAST(CAST({expr} AS TIMESTAMP) AS {self.timestamp_type})"

    def arg_max(self, value: str, order_by: str) -> str:
        return f"max_by({value}, {order_by})"

    def arg_max_where(self, value: str, order_by: str, condition: str) -> str:
        """``max_by`` over the qualifying rows, ordered by ``(order_by, value)`` so a tie on
        `order_by` goes to the greatest value (Spark compares strings byte-wise) and every run
        picks the same row. A NULL `order_by` sorts below every other (Spark's struct order)."""
        return (
            f"max_by({value}, struct({order_by}, {self.binary_collate(value)})) "
            f"FILTER (WHERE {condition} AND {value} IS NOT NULL)"
        )

    def delete_target(self, target: str, alias: str) -> tuple[str, str]:
        return f"DELETE FROM {target} AS {alias}", alias

    def bool_and(self, expr: str) -> str:
        return f"bool_and({expr})"

    def string_agg_distinct(self, expr: str, sep: str = ",") -> str:
        # collect_set drops NULLs and duplicates; array_sort orders byte-wise, like the others.
        return f"array_join(array_sort(collect_set({expr})), {self.string_literal(sep)})"

    def row_ids(self, order_by: str, partition_by: str = "") -> str:
        """Databricks requires ROW_NUMBER to have an ORDER BY."""
        return f"ROW_NUMBER() OVER ({partition_clause(partition_by)} ORDER BY {order_by})"

    def binary_collate(self, expr: str) -> str:
        """Databricks compares strings byte-wise under its default ``UTF8_BINARY`` collation, the
        order this method promises, so `expr` is returned unchanged. (A schema or table created
        with another DEFAULT COLLATION would need ``expr COLLATE UTF8_BINARY`` here.)"""
        return expr

    def publish_tables(self, wh: Warehouse, schema: str, renames: Sequence[tuple[str, str]]) -> None:
        """Replace each target with a copy of its staged table (``CREATE OR REPLACE TABLE``).

        Each replacement is one atomic Delta commit (readers see the old version or the new one,
        and the table's history is kept), but without multi-statement transactions the set of
        tables is not replaced atomically as a whole: a reader between two replacements may see a
        new table next to an old one, and a failure half-way leaves the earlier tables published.
        Re-running the layer completes it. The staged tables are dropped by the caller.
        """
        for staged, target in renames:
            wh.execute(self.create_table_as(self.table(schema, target), f"SELECT * FROM {self.table(schema, staged)}"))

    # -- file input --------------------------------------------------------------------------
    def stage_files(self, wh: Warehouse, stage: str, paths: Sequence[str], file_format: str, file_column: str) -> None:
        raise NotImplementedError(
            "the databricks dialect cannot load local files: a SQL warehouse cannot read the Airflow "
            "worker's disk. Put the files in cloud storage or a Unity Catalog volume, load them into a "
            "Delta table (COPY INTO, Auto Loader or an ingestion tool), and declare that raw table as a "
            "landed-table source (`table:` with its `synced_at` column) instead of `path:`."
        )

    # -- execution ---------------------------------------------------------------------------
    def hook_class_path(self) -> str:
        return "airflow.providers.databricks.hooks.databricks_sql.DatabricksSqlHook"

    def make_hook(self, conn_id: str) -> Any:
        from airflow.providers.databricks.hooks.databricks_sql import DatabricksSqlHook

        return DatabricksSqlHook(databricks_conn_id=conn_id)

    def connect(self, hook: Any) -> Any:
        conn = hook.get_conn()
        cur = conn.cursor()
        try:
            # Every timestamp Nexus writes is naive UTC; make current_timestamp() and casts agree.
            cur.execute("SET TIME ZONE 'UTC'")
        finally:
            cur.close()
        return conn
