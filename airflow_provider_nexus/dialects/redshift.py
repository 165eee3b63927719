"""Amazon Redshift, through the Amazon provider's RedshiftSQLHook (redshift_connector).

Redshift descends from PostgreSQL 8.0, so it shares PostgreSQL's quoting, typed literals and
transactional DDL, and differs where this module overrides:

* Backslash is an escape character in Redshift string literals (its docs write a regular
  expression's ``\\.`` as ``'\\\\.'``), so string literals double it.
* ``VARCHAR`` and ``TEXT`` without a length are ``VARCHAR(256)`` in Redshift; Nexus text columns
  are ``VARCHAR(MAX)`` (65535 bytes) so long identifier or trait values are not cut off or refused.
* No ``COLLATE "C"``: Redshift has no locale collations (only ``case_sensitive``, the default, and
  ``case_insensitive``).
* ``REGEXP_REPLACE`` replaces every match by default (no ``'g'`` flag); patterns are read as PCRE
  (parameter ``'p'``), the dialect closest to the Python ``re`` syntax Nexus validates them with.
* No ``array_agg`` with ``FILTER`` and no ``MAX_BY``: "latest value" aggregates are built from
  ``MAX`` over a sortable text key (see ``arg_max_where``); ``string_agg`` is ``LISTAGG``.
* ``MERGE`` (April 2023), ``QUALIFY`` (July 2023) and ``TRY_CAST`` exist; ``CREATE OR REPLACE
  TABLE`` does not.
* No ``COPY ... FROM STDIN``: ``COPY`` reads from S3, so local files are not loaded (``stage_files``
  raises); land the data in a table and use a raw ``table:`` source instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from airflow_provider_nexus.dialects.postgres import PostgresDialect

if TYPE_CHECKING:
    from airflow_provider_nexus.warehouse import Warehouse

#: Fixed-width, sortable text form of a timestamp (26 characters: 'YYYY-MM-DD HH:MI:SS.ffffff').
_SORTABLE_TS = "YYYY-MM-DD HH24:MI:SS.US"
_SORTABLE_TS_WIDTH = 26
#: Sorts below every formatted timestamp: a row without an order key loses to any row with one.
_NO_TS = "0000-00-00 00:00:00.000000"


class RedshiftDialect(PostgresDialect):
    name: ClassVar[str] = "redshift"
    sqlglot_name: ClassVar[str] = "redshift"
    supports_merge: ClassVar[bool] = True
    supports_qualify: ClassVar[bool] = True
    supports_create_or_replace: ClassVar[bool] = False
    transactional_ddl: ClassVar[bool] = True
    timestamp_type: ClassVar[str] = "TIMESTAMP"
    text_type: ClassVar[str] = "VARCHAR(MAX)"
    probes_indexes: ClassVar[bool] = False  # no secondary indexes (see create_index)
    parallel_scratch_kind: ClassVar[str | None] = None  # no UNLOGGED; every node reads temp tables
    integer_aggregate_settings: ClassVar[tuple[tuple[str, str], ...]] = ()  # no enable_hashagg to set
    smallest_by_distinct_on: ClassVar[bool] = False  # PostgreSQL's DISTINCT ON is not in Redshift
    bigint_type: ClassVar[str] = "BIGINT"
    double_type: ClassVar[str] = "DOUBLE PRECISION"

    # -- literals --------------------------------------------------------------------------
    def string_literal(self, value: str) -> str:
        """Quote doubled, and backslash doubled: Redshift reads ``\\`` in a literal as an escape."""
        if "\x00" in value:
            raise ValueError("NUL characters cannot be rendered in a SQL string literal")
        return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"

    def blank_characters_sql(self) -> str:
        # Redshift's CHR knows ASCII only, and returns a CHAR, whose trailing spaces do not
        # survive a concatenation: the control characters by CHR, the rest in a literal.
        chars = self.blank_characters()
        controls = " || ".join(f"CHR({ord(ch)})" for ch in chars if ord(ch) < 32)
        return f"({controls} || {self.string_literal(''.join(ch for ch in chars if ord(ch) >= 32))})"

    # -- fragments -------------------------------------------------------------------------
    def empty_table(self, target: str) -> str:
        """DELETE, not TRUNCATE: Redshift's TRUNCATE commits the open transaction."""
        return f"DELETE FROM {target}"

    def create_index(self, table: str, name: str, columns: Sequence[str], *, block_range: bool = False) -> str | None:
        """Redshift has no secondary indexes (its zone maps and sort keys play that part)."""
        return None

    def current_timestamp(self) -> str:
        # GETDATE() is the session time zone's wall clock; `connect` sets the session to UTC.
        # (Redshift lists NOW() among its deprecated leader-node-only functions.)
        return f"CAST(GETDATE() AS {self.timestamp_type})"

    def key_in(self, alias: str, source: str, keys: Sequence[str]) -> str:
        """Redshift's IN takes a subquery of one column only: several key columns match through
        EXISTS."""
        return super().key_in(alias, source, keys) if len(keys) == 1 else self.key_exists(alias, source, keys)

    def regexp_replace(self, expr: str, pattern: str, replacement: str) -> str:
        # Every match is replaced by default; 1 = start position, 'p' = PCRE syntax.
        return f"REGEXP_REPLACE({expr}, {self.string_literal(pattern)}, {self.string_literal(replacement)}, 1, 'p')"

    def regexp_matches(self, expr: str, pattern: str) -> str:
        # A match anywhere in the value (like PostgreSQL's ~), with the pattern read as PCRE so
        # inline flags such as (?i) mean what they mean in Python.
        return f"(REGEXP_INSTR({expr}, {self.string_literal(pattern)}, 1, 1, 0, 'p') > 0)"

    def try_cast_timestamp(self, expr: str) -> str:
        return f"TRY_CAST({expr} AS {self.timestamp_type})"

    def null_safe_equal(self, a: str, b: str) -> str:
        """Redshift does not implement IS [NOT] DISTINCT FROM."""
        return f"({a} = {b} OR ({a} IS NULL AND {b} IS NULL))"

    def arg_max(self, value: str, order_by: str) -> str:
        """Redshift has no MAX_BY; same formulation as ``arg_max_where`` (null values are skipped,
        `order_by` must be a timestamp)."""
        return self.arg_max_where(value, order_by, "TRUE")

    def arg_max_where(self, value: str, order_by: str, condition: str) -> str:
        """The latest non-null text `value` by timestamp `order_by` among rows meeting `condition`.

        Redshift has neither ``array_agg ... FILTER`` nor ``MAX_BY``, so each qualifying row becomes
        one text key, the timestamp in a fixed-width sortable form followed by the value, and the
        ``MAX`` of the keys (an ordinary aggregate, no window or LISTAGG size limit) is cut back to
        the value. Ties on the timestamp go to the greatest value, compared byte-wise like the
        other dialects. A row whose `order_by` is NULL sorts below every dated row (DuckDB's
        ``NULLS LAST`` for a descending order). `order_by` must be a TIMESTAMP and `value` text.
        """
        ts = f"COALESCE(TO_CHAR({order_by}, '{_SORTABLE_TS}'), '{_NO_TS}')"
        key = f"CASE WHEN {condition} AND {value} IS NOT NULL THEN {ts} || {value} END"
        return f"SUBSTRING(MAX({key}), {_SORTABLE_TS_WIDTH + 1}, 65535)"

    def bool_and(self, expr: str) -> str:
        return f"BOOL_AND({expr})"

    def string_agg_distinct(self, expr: str, sep: str = ",") -> str:
        # LISTAGG's result is a VARCHAR(MAX): fine for the short lists Nexus builds (source names).
        return f"LISTAGG(DISTINCT {expr}, {self.string_literal(sep)}) WITHIN GROUP (ORDER BY {expr})"

    def binary_collate(self, expr: str) -> str:
        """Redshift has no locale collations: under its default ``case_sensitive`` collation strings
        compare by their bytes, the order this method promises, so `expr` is returned unchanged.
        (A database created with ``COLLATE CASE_INSENSITIVE`` would tie 'A' and 'a'; Nexus does not
        support such a database.)"""
        return expr

    def type_name(self, expr: str) -> str:
        """Redshift documents no type-of function that works on table columns (PostgreSQL's
        ``pg_typeof`` is not part of it). A drifted input column is added as text, which holds any
        value."""
        return self.string_literal(self.text_type)

    # -- file input --------------------------------------------------------------------------
    def stage_files(self, wh: Warehouse, stage: str, paths: Sequence[str], file_format: str, file_column: str) -> None:
        raise NotImplementedError(
            "the redshift dialect cannot load local files: Redshift's COPY reads from Amazon S3, not "
            "from the Airflow worker. Load the files into a Redshift table first (COPY from S3, or an "
            "ingestion tool) and declare that raw table as a landed-table source (`table:` with its "
            "`synced_at` column) instead of `path:`."
        )

    # -- execution ---------------------------------------------------------------------------
    def hook_class_path(self) -> str:
        return "airflow.providers.amazon.aws.hooks.redshift_sql.RedshiftSQLHook"

    def make_hook(self, conn_id: str) -> Any:
        from airflow.providers.amazon.aws.hooks.redshift_sql import RedshiftSQLHook

        return RedshiftSQLHook(redshift_conn_id=conn_id)

    def connect(self, hook: Any) -> Any:
        conn = hook.get_conn()
        # As on PostgreSQL: transactions are explicit (BEGIN ... COMMIT in Warehouse.transaction),
        # every other statement stands alone.
        conn.autocommit = True
        cur = conn.cursor()
        try:
            # Every timestamp Nexus writes is naive UTC; make GETDATE() and casts agree.
            cur.execute("SET timezone TO 'UTC'")
        finally:
            cur.close()
        return conn
