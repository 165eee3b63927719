"""Snowflake, through SnowflakeHook (snowflake-connector-python).

Snowflake differs from DuckDB/PostgreSQL in ways the layers already account for:

* DDL auto-commits (``transactional_ddl = False``): the layers stage with DDL before the
  transaction and run only DML inside it.
* Unquoted identifiers resolve as upper case, quoted ones keep their case. Templates name
  columns unquoted, so a plain lower-case name is quoted in upper case (``"NEXUS_EVENTS"``, what
  ``nexus_events`` unquoted finds): what Nexus creates, an unquoted reference and a table made
  by an ingestion tool the usual way all agree. Catalog lookups compare the same way and report
  names lower-cased, like every other dialect.
* Local files are loaded with ``write_pandas`` (PUT + COPY INTO under the hood), never row by row.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from airflow_provider_nexus.dialects.base import SOURCE_ROW, Dialect, partition_clause
from airflow_provider_nexus.errors import NexusDataError

if TYPE_CHECKING:
    from airflow_provider_nexus.warehouse import Warehouse

#: Arrow type families -> Snowflake column types for Parquet input.
_ARROW_TYPES = (
    ("is_boolean", "BOOLEAN"),
    ("is_integer", "BIGINT"),
    ("is_floating", "DOUBLE"),
    ("is_timestamp", "TIMESTAMP_NTZ"),
    ("is_date", "DATE"),
)

#: Names Snowflake would fold to upper case if they were not quoted.
_FOLDABLE = re.compile(r"[a-z_][a-z0-9_$]*")
#: Python's leading inline flags that Snowflake's regex functions take as their parameter string.
_LEADING_FLAGS = re.compile(r"\A\(\?([ims]+)\)")


class SnowflakeDialect(Dialect):
    name: ClassVar[str] = "snowflake"
    sqlglot_name: ClassVar[str] = "snowflake"
    supports_merge: ClassVar[bool] = True
    supports_qualify: ClassVar[bool] = True
    supports_create_or_replace: ClassVar[bool] = True
    transactional_ddl: ClassVar[bool] = False
    timestamp_type: ClassVar[str] = "TIMESTAMP_NTZ"
    text_type: ClassVar[str] = "VARCHAR"
    bigint_type: ClassVar[str] = "BIGINT"
    double_type: ClassVar[str] = "DOUBLE"

    # -- names -----------------------------------------------------------------------------
    def canonical(self, name: str) -> str:
        """The case Snowflake stores `name` in when it is written unquoted (other names as given)."""
        return name.upper() if _FOLDABLE.fullmatch(name) else name

    def list_tables(self, wh: Warehouse, schema: str) -> list[str]:
        """Lower-cased, like every other dialect's names (the catalog keeps them upper case)."""
        return sorted(name.lower() for name in super().list_tables(wh, schema))

    def list_views(self, wh: Warehouse, schema: str) -> list[str]:
        return sorted(name.lower() for name in super().list_views(wh, schema))

    # -- literals --------------------------------------------------------------------------
    def string_literal(self, value: str) -> str:
        """Backslash is an escape character in Snowflake string literals ('\\.' would reach a
        regular expression as '.'), so it is doubled as well as the quote."""
        if "\x00" in value:
            raise ValueError("NUL characters cannot be rendered in a SQL string literal")
        return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"

    # -- fragments -------------------------------------------------------------------------
    def current_timestamp(self) -> str:
        return f"CAST(CONVERT_TIMEZONE('UTC', CURRENT_TIMESTAMP()) AS {self.timestamp_type})"

    def utc_timestamp(self, expr: str) -> str:
        # TIMESTAMP_TZ -> NTZ keeps the wall clock of the value's own offset; convert to UTC first
        return f"CAST(CONVERT_TIMEZONE('UTC', CAST({expr} AS TIMESTAMP_TZ)) AS {self.timestamp_type})"

    def regexp_replace(self, expr: str, pattern: str, replacement: str) -> str:
        # Snowflake replaces every occurrence by default; its 4th argument is a start position.
        return f"REGEXP_REPLACE({expr}, {self.string_literal(pattern)}, {self.string_literal(replacement)})"

    def string_position(self, haystack: str, needle: str) -> str:
        return f"POSITION({needle}, {haystack})"  # Snowflake has no STRPOS

    def regexp_matches(self, expr: str, pattern: str) -> str:
        # REGEXP_LIKE / RLIKE anchor the pattern to the whole string; a partial match is wanted.
        # Snowflake takes no inline flags: a leading (?i), (?m) or (?s) becomes its parameter.
        flags = _LEADING_FLAGS.match(pattern)
        if flags:
            pattern, params = pattern[flags.end() :], flags.group(1)
            return f"(REGEXP_INSTR({expr}, {self.string_literal(pattern)}, 1, 1, 0, {self.string_literal(params)}) > 0)"
        return f"(REGEXP_INSTR({expr}, {self.string_literal(pattern)}) > 0)"

    def create_temp_table_as(self, name: str, select_sql: str) -> str:
        return f"CREATE OR REPLACE TEMPORARY TABLE {self.quote(name)} AS {select_sql}"

    def arg_max(self, value: str, order_by: str) -> str:
        return f"MAX_BY({value}, {order_by})"

    def arg_max_where(self, value: str, order_by: str, condition: str) -> str:
        """ARRAY_AGG skips NULLs, so rows not meeting `condition` (or with a null value) drop out."""
        return (
            f"(ARRAY_AGG(CASE WHEN {condition} THEN {value} END) "
            f"WITHIN GROUP (ORDER BY {order_by} DESC NULLS LAST, {self.binary_collate(value)} DESC))[0]::{self.text_type}"
        )

    def bool_and(self, expr: str) -> str:
        return f"BOOLAND_AGG({expr})"

    def string_agg_distinct(self, expr: str, sep: str = ",") -> str:
        return f"LISTAGG(DISTINCT {expr}, {self.string_literal(sep)}) WITHIN GROUP (ORDER BY {expr})"

    def row_ids(self, order_by: str, partition_by: str = "") -> str:
        """Snowflake requires ROW_NUMBER to have an ORDER BY."""
        return f"ROW_NUMBER() OVER ({partition_clause(partition_by)} ORDER BY {order_by})"

    def binary_collate(self, expr: str) -> str:
        """Snowflake compares strings without a collation unless one is set on the column, the
        schema/database (DEFAULT_DDL_COLLATION) or the expression; without one the comparison is
        byte-wise on the UTF-8 encoding, the order this method promises. Nexus creates its
        columns without a collation, so `expr` is returned unchanged. (An account that sets
        DEFAULT_DDL_COLLATION would need ``COLLATE(expr, '')`` here.)"""
        return expr

    def type_name(self, expr: str) -> str:
        """Snowflake has no scalar TYPEOF for non-VARIANT values (SYSTEM$TYPEOF returns a
        description like ``NUMBER(38,0)[SB1]``, not a column type). Drifted columns come from staged
        files, which are text (CSV/NDJSON), so a drifted column is added as VARCHAR."""
        return self.string_literal(self.text_type)

    def publish_tables(self, wh: Warehouse, schema: str, renames: Sequence[tuple[str, str]]) -> None:
        """Replace each target with its staged table through ``ALTER TABLE ... SWAP WITH``.

        Each swap is atomic (readers see the old table or the new one), but DDL auto-commits in
        Snowflake, so the set of tables is NOT replaced atomically as a whole: a reader between
        two swaps may see a new table next to an old one, and a failure half-way leaves the
        earlier tables published. Re-running the layer completes it.
        """
        for staged, target in renames:
            staged_q = self.table(schema, staged)
            if wh.table_exists(schema, target):
                wh.execute(f"ALTER TABLE {self.table(schema, target)} SWAP WITH {staged_q}")
                wh.execute(f"DROP TABLE IF EXISTS {staged_q}")
            else:
                wh.execute(f"ALTER TABLE {staged_q} RENAME TO {self.table(schema, target)}")

    # -- file input --------------------------------------------------------------------------
    def staged_row_order(self) -> str | None:
        return self.quote(SOURCE_ROW)

    def stage_files(self, wh: Warehouse, stage: str, paths: Sequence[str], file_format: str, file_column: str) -> None:
        """Load local files into temp table `stage` with ``write_pandas`` (one COPY per file).

        CSV and NDJSON values are loaded as text (CSV: empty fields are NULL, like DuckDB's reader);
        Parquet keeps its types. Column names are lower-cased, then quoted like every name.
        """
        import pandas as pd
        from snowflake.connector.pandas_tools import write_pandas

        from airflow_provider_nexus.dialects.files import column_types, csv_rows, ndjson_rows

        types = column_types(paths, file_format, file_column, self.text_type, _ARROW_TYPES)
        columns = list(types)
        cols = ", ".join(f"{self.quote(c)} {t}" for c, t in types.items())
        wh.execute(
            f"CREATE OR REPLACE TEMPORARY TABLE {self.quote(stage)} ({cols}, {self.quote(file_column)} {self.text_type}, "
            f"{self.quote(SOURCE_ROW)} NUMBER)"
        )
        for path in paths:
            if file_format == "parquet":
                df = _parquet_frame(path, columns)
            else:
                rows = csv_rows(path, columns) if file_format == "csv" else list(ndjson_rows(path, columns))
                df = pd.DataFrame(rows, columns=columns, dtype=object)
            df[file_column] = path
            df[SOURCE_ROW] = range(1, len(df) + 1)
            df.columns = [self.canonical(c) for c in df.columns]  # the names the table was made with
            wh.executed.append(f"-- write_pandas {self.quote(stage)} <- {Path(path).name} ({len(df)} rows)")
            ok, _, _, _ = write_pandas(
                wh.connection, df, self.canonical(stage), quote_identifiers=True, auto_create_table=False
            )
            if not ok:
                raise NexusDataError(f"write_pandas could not load {path} into {stage}")

    # -- execution ---------------------------------------------------------------------------
    def hook_class_path(self) -> str:
        return "airflow.providers.snowflake.hooks.snowflake.SnowflakeHook"

    def make_hook(self, conn_id: str) -> Any:
        from airflow.providers.snowflake.hooks.snowflake import SnowflakeHook

        return SnowflakeHook(snowflake_conn_id=conn_id)

    def connect(self, hook: Any) -> Any:
        conn = hook.get_conn()
        # Every timestamp Nexus writes is naive UTC; make CURRENT_TIMESTAMP and casts agree.
        cur = conn.cursor()
        try:
            cur.execute("ALTER SESSION SET TIMEZONE = 'UTC'")
        finally:
            cur.close()
        return conn


def _parquet_frame(path: str, columns: list[str]) -> Any:
    from airflow_provider_nexus.dialects.files import parquet_module

    pq = parquet_module()
    df = pq.read_table(path).to_pandas()
    df.columns = [str(c).lower() for c in df.columns]
    for c in columns:
        if c not in df.columns:
            df[c] = None
    return df[columns]
