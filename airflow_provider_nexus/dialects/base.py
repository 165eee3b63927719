"""The dialect interface: everything that differs between warehouses lives behind it.

Operators and templates never test a dialect by name; they ask for a capability or a fragment.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from airflow_provider_nexus.lineage import DatasetSource
    from airflow_provider_nexus.warehouse import Warehouse

#: Characters that count as blank around an identifier, besides the space: tab and line breaks,
#: the Unicode space separators, and the zero-width characters and byte-order mark that exports
#: leave in cells. Engines' own TRIM strip different sets (PostgreSQL, Snowflake, Redshift and
#: Databricks the space only, DuckDB and BigQuery more), so Nexus names the set itself. Kept, one
#: "empty" cell of them would link every person who has it. Vertical tab, form feed, NEL and the
#: line and paragraph separators are left out: not every engine's string literal takes them unescaped.
BLANK_CHARACTERS = (
    "\t\n\r\u00a0\u1680\u180e"
    + "".join(chr(c) for c in range(0x2000, 0x200E))  # en quad .. zero-width joiner
    + "\u202f\u205f\u2060\u3000\ufeff"
)

#: Names that come from config (sources, tables, columns, entity types, schemas) must match this.
SAFE_NAME = re.compile(r"\A[a-z_][a-z0-9_]{0,62}\Z")


class UnsafeNameError(ValueError):
    """A name that would have to be quoted creatively to be safe; we refuse it instead."""


def check_name(name: str, what: str = "name") -> str:
    if not isinstance(name, str) or not SAFE_NAME.match(name):
        raise UnsafeNameError(
            f"{what} {name!r} is not a safe identifier: use lower-case letters, digits and "
            "underscores, starting with a letter or underscore (at most 63 characters)"
        )
    return name


#: Column of a staged file's rows giving their position (where the dialect's staging adds one).
SOURCE_ROW = "_source_row"


class Dialect:
    """Quoting, typed literals, capability flags and the few SQL fragments that differ."""

    name: ClassVar[str] = "default"
    #: sqlglot's name for this dialect (used by golden/parse tests and `nexus render`).
    sqlglot_name: ClassVar[str] = ""
    supports_transactions: ClassVar[bool] = True
    supports_merge: ClassVar[bool] = False
    supports_qualify: ClassVar[bool] = False
    supports_create_or_replace: ClassVar[bool] = False
    #: DDL inside a transaction is rolled back with it (DuckDB, PostgreSQL: yes; Snowflake: no).
    transactional_ddl: ClassVar[bool] = True
    #: A pseudo-column giving each row's position in its table, stable within one transaction, if
    #: the engine has one that its scans filter on cheaply (DuckDB's rowid). Replacing rows then
    #: finds the old ones in one pass over the key columns and copies and deletes them by
    #: position, instead of a join that carries every column of the whole table.
    row_locator: ClassVar[str | None] = None
    #: `create_index` makes B-tree indexes that a join from a small set of keys probes row by
    #: row (PostgreSQL), so such a join costs the keys it looks up, not the table it looks into.
    probes_indexes: ClassVar[bool] = False
    #: CREATE OR REPLACE works for temporary tables too (where `supports_create_or_replace`).
    replaces_temp_tables: ClassVar[bool] = True
    #: A timeout's SIGALRM may not stop a running statement (DuckDB runs some to their end and
    #: only then reports the interruption), so a watchdog thread cancels it when the alarm is due.
    needs_alarm_watchdog: ClassVar[bool] = False
    #: A running task renews its claims (`state.renewing`) so that no other run's task enters
    #: while it runs; False where the engine itself keeps other processes out meanwhile.
    renews_claims: ClassVar[bool] = True
    quote_char: ClassVar[str] = '"'
    timestamp_type: ClassVar[str] = "TIMESTAMP"
    text_type: ClassVar[str] = "VARCHAR"
    bigint_type: ClassVar[str] = "BIGINT"
    double_type: ClassVar[str] = "DOUBLE PRECISION"
    boolean_type: ClassVar[str] = "BOOLEAN"

    # -- names ---------------------------------------------------------------------------
    def canonical(self, name: str) -> str:
        """`name` as the engine stores it when written unquoted (engines that fold case say how)."""
        return name

    def quote(self, name: str) -> str:
        q = self.quote_char
        return q + self.canonical(str(name)).replace(q, q + q) + q

    def table(self, schema: str, name: str) -> str:
        return f"{self.quote(schema)}.{self.quote(name)}"

    # -- literals --------------------------------------------------------------------------
    def literal(self, value: Any) -> str:
        """Render a typed Python value as a SQL literal of this dialect."""
        if value is None:
            return "NULL"
        if isinstance(value, bool):
            return "TRUE" if value else "FALSE"
        if isinstance(value, int):
            return str(value)
        if isinstance(value, float):
            if not math.isfinite(value):
                raise ValueError(f"cannot render non-finite float {value!r} as SQL")
            return repr(value)
        if isinstance(value, dt.datetime):
            return self.timestamp_literal(value)
        if isinstance(value, dt.date):
            return f"DATE '{value.isoformat()}'"
        if isinstance(value, str):
            return self.string_literal(value)
        raise TypeError(f"no SQL literal for {type(value).__name__}")

    #: Python codec of the database's text (PostgreSQL reads its server_encoding on connect).
    text_encoding: str = "utf-8"

    def can_encode(self, text: str) -> bool:
        """Whether the database's text encoding holds `text`."""
        try:
            text.encode(self.text_encoding)
        except (UnicodeEncodeError, LookupError):
            return False
        return True

    def string_literal(self, value: str) -> str:
        if "\x00" in value:
            raise ValueError("NUL characters cannot be rendered in a SQL string literal")
        return "'" + value.replace("'", "''") + "'"

    def timestamp_literal(self, value: dt.datetime) -> str:
        return f"CAST('{utc_naive(value).isoformat(sep=' ')}' AS {self.timestamp_type})"

    def literal_list(self, values: Sequence[Any]) -> str:
        return ", ".join(self.literal(v) for v in values)

    # -- fragments -------------------------------------------------------------------------
    def hash_hex(self, expr: str) -> str:
        """Lower-case hex MD5 of a text expression (the same digest on every dialect)."""
        return f"md5({expr})"

    def concat(self, parts: Sequence[str]) -> str:
        return "(" + " || ".join(parts) + ")"

    def key_text(self, exprs: Sequence[str]) -> str:
        """'a|b|c' from expressions, nulls as empty text: the input of surrogate keys."""
        if isinstance(exprs, str):
            exprs = [exprs]
        parts = [f"COALESCE({self.cast_text(e)}, '')" for e in exprs]
        return "(" + " || '|' || ".join(parts) + ")"

    def cast_text(self, expr: str) -> str:
        return f"CAST({expr} AS {self.text_type})"

    def cast_timestamp(self, expr: str) -> str:
        return f"CAST({expr} AS {self.timestamp_type})"

    def utc_timestamp(self, expr: str) -> str:
        """`expr` (text, a timestamp with or without a zone, a date) as a naive UTC timestamp: an
        offset in the text is applied ('10:00+02:00' is 08:00), text without one is UTC. Goes
        through the zoned type, which every session reads in UTC (see `connect`)."""
        return f"CAST(CAST({expr} AS TIMESTAMPTZ) AS {self.timestamp_type})"

    def try_cast_timestamp(self, expr: str) -> str:
        return f"TRY_CAST({expr} AS {self.timestamp_type})"

    def regexp_replace(self, expr: str, pattern: str, replacement: str) -> str:
        return f"regexp_replace({expr}, {self.string_literal(pattern)}, {self.string_literal(replacement)}, 'g')"

    def trim_characters(self, expr: str, characters: str) -> str:
        """`expr` without the characters of the literal `characters` at either end."""
        return f"TRIM({expr}, {characters})"

    def blank_characters(self) -> str:
        """The space and `BLANK_CHARACTERS` the database's encoding can hold (a LATIN1
        PostgreSQL database would refuse a literal with the others)."""
        return " " + "".join(ch for ch in BLANK_CHARACTERS if self.can_encode(ch))

    def blank_characters_sql(self) -> str:
        """`blank_characters` as a constant text expression built from code points, so the SQL
        that runs (and shows in the task log) holds no invisible or line-breaking characters."""
        return "(" + " || ".join(f"CHR({ord(ch)})" for ch in self.blank_characters()) + ")"

    def string_position(self, haystack: str, needle: str) -> str:
        """1-based position of `needle` in `haystack`, 0 when absent."""
        return f"STRPOS({haystack}, {needle})"

    def is_blank_character(self, char: str) -> str:
        """The one-character text `char` is one of `blank_characters`."""
        return f"{self.string_position(self.blank_characters_sql(), char)} > 0"

    def starts_or_ends_blank(self, expr: str) -> str:
        """`expr`'s first or last character is one of `blank_characters`."""
        return f"{self.is_blank_character(f'LEFT({expr}, 1)')} OR {self.is_blank_character(f'RIGHT({expr}, 1)')}"

    def trim_blank(self, expr: str) -> str:
        """`expr` without blank characters (the space and `BLANK_CHARACTERS`) at either end, the
        same on every engine. Trimming a set of characters costs several times a plain TRIM, so
        it runs only for a value that starts or ends with one of them."""
        trimmed = self.trim_characters(expr, self.blank_characters_sql())
        return f"CASE WHEN {self.starts_or_ends_blank(expr)} THEN {trimmed} ELSE {expr} END"

    def regexp_matches(self, expr: str, pattern: str) -> str:
        return f"regexp_matches({expr}, {self.string_literal(pattern)})"

    def current_timestamp(self) -> str:
        return f"CAST(now() AT TIME ZONE 'UTC' AS {self.timestamp_type})"

    def create_schema(self, schema: str) -> str:
        return f"CREATE SCHEMA IF NOT EXISTS {self.quote(schema)}"

    # -- catalog -----------------------------------------------------------------------------
    def ensure_schema(self, wh: Warehouse, schema: str) -> None:
        wh.execute(self.create_schema(schema))

    def list_columns(self, wh: Warehouse, schema: str, table: str) -> list[str]:
        """Column names of `schema`.`table`, lower-cased, in order ([] when it does not exist)."""
        rows = wh.fetchall(
            "SELECT column_name FROM information_schema.columns "
            f"WHERE table_schema = {self.literal(self.canonical(schema))} "
            f"AND table_name = {self.literal(self.canonical(table))} "
            "ORDER BY ordinal_position"
        )
        return [str(r[0]).lower() for r in rows]

    def list_tables(self, wh: Warehouse, schema: str) -> list[str]:
        """Table names of `schema`, sorted."""
        rows = wh.fetchall(
            "SELECT table_name FROM information_schema.tables "
            f"WHERE table_schema = {self.literal(self.canonical(schema))} "
            "ORDER BY table_name"
        )
        return [str(r[0]) for r in rows]

    def list_views(self, wh: Warehouse, schema: str) -> list[str]:
        """View names of `schema`, sorted."""
        rows = wh.fetchall(
            "SELECT table_name FROM information_schema.views "
            f"WHERE table_schema = {self.literal(self.canonical(schema))} ORDER BY table_name"
        )
        return [str(r[0]) for r in rows]

    def empty_table(self, target: str) -> str:
        """Remove every row of `target` inside the current transaction, keeping the table (and
        what depends on it, such as a view)."""
        return f"DELETE FROM {target} WHERE TRUE"  # BigQuery wants a WHERE

    def create_table_as(self, target: str, select_sql: str) -> str:
        """Replace `target` with the result of `select_sql`."""
        if self.supports_create_or_replace:
            return f"CREATE OR REPLACE TABLE {target} AS {select_sql}"
        return f"DROP TABLE IF EXISTS {target};\nCREATE TABLE {target} AS {select_sql}"

    def create_temp_table_as(self, name: str, select_sql: str) -> str:
        return f"CREATE OR REPLACE TEMP TABLE {self.quote(name)} AS {select_sql}"

    def arg_max(self, value: str, order_by: str) -> str:
        """Value of `value` on the row with the greatest `order_by` within a group."""
        return f"arg_max({value}, {order_by})"

    def publish_tables(self, wh: Warehouse, schema: str, renames: Sequence[tuple[str, str]]) -> None:
        """Replace each target with its staged table, all at once (readers never see a mix)."""
        with wh.transaction():
            for staged, target in renames:
                wh.execute(f"DROP TABLE IF EXISTS {self.table(schema, target)}")
                wh.execute(f"ALTER TABLE {self.table(schema, staged)} RENAME TO {self.quote(target)}")

    def arg_max_where(self, value: str, order_by: str, condition: str) -> str:
        """The latest non-null `value` by `order_by` among rows meeting `condition` (NULL if none).

        Ties on `order_by` go to the greatest value, so every engine picks the same row.
        """
        return (
            f"(array_agg({value} ORDER BY {order_by} DESC NULLS LAST, {self.binary_collate(value)} DESC) "
            f"FILTER (WHERE {condition} AND {value} IS NOT NULL))[1]"
        )

    def drop_table(self, name: str, *, temp: bool = False) -> str:
        """Drop a table if it exists (`temp`: a session temporary table)."""
        return f"DROP TABLE IF EXISTS {name}"

    def null_safe_equal(self, a: str, b: str) -> str:
        """`a` equals `b`, two NULLs counting as equal."""
        return f"{a} IS NOT DISTINCT FROM {b}"

    def create_index(self, table: str, name: str, columns: Sequence[str], *, block_range: bool = False) -> str | None:
        """DDL for a secondary index `name` on `table` if missing, or None where the engine keeps
        none worth having (columnar engines read past rows by their zone maps or clustering).

        `block_range`: the column follows the order rows were written in (load times), so a
        summary per block of rows serves range filters at a fraction of a full index's size.
        """
        return None

    def analyze(self, table: str) -> str | None:
        """A statement that refreshes the planner's statistics of a table just written, if the
        engine needs one (PostgreSQL never auto-analyzes temporary tables)."""
        return None

    def delete_target(self, target: str, alias: str) -> tuple[str, str]:
        """The ``DELETE FROM`` clause for `target`, and how its WHERE clause names the target's
        columns (Redshift allows no alias there, BigQuery resolves columns only through one)."""
        return f"DELETE FROM {target}", target

    def delete_matching_keys(self, target: str, source: str, keys: Sequence[str]) -> str:
        """DELETE the rows of `target` whose key (one or more columns) has a row in `source`."""
        delete, t = self.delete_target(target, "t")
        return f"{delete} WHERE {self.key_in(t, source, keys)}"

    def key_in(self, alias: str, source: str, keys: Sequence[str]) -> str:
        """A predicate: the key (one or more columns) of row `alias` has a row in `source`."""
        cols = ", ".join(f"{alias}.{self.quote(k)}" for k in keys)
        return f"({cols}) IN (SELECT {', '.join(self.quote(k) for k in keys)} FROM {source})"

    def key_exists(self, alias: str, source: str, keys: Sequence[str]) -> str:
        """`key_in` through EXISTS, for engines without row-value IN over a subquery."""
        # an alias no caller uses: a caller's `s` would otherwise compare the source to itself
        match = " AND ".join(f"nexus_k.{self.quote(k)} = {alias}.{self.quote(k)}" for k in keys)
        return f"EXISTS (SELECT 1 FROM {source} AS nexus_k WHERE {match})"

    def bool_and(self, expr: str) -> str:
        return f"bool_and({expr})"

    def string_agg_distinct(self, expr: str, sep: str = ",") -> str:
        # byte-wise, so the list reads the same under any database collation (en_US or C)
        ordered = self.binary_collate(expr)
        return f"string_agg(DISTINCT {ordered}, {self.string_literal(sep)} ORDER BY {ordered})"

    def type_name(self, expr: str) -> str:
        """SQL type name of an expression's value (to add a drifted column with its type)."""
        return f"typeof({expr})"

    # -- file input --------------------------------------------------------------------------
    def staged_row_order(self) -> str | None:
        """An expression over a table `stage_files` made that grows with each row's position in
        its file, so a key repeated inside one file keeps its last row; None if staging keeps no
        order (a repeated key then keeps any one of its rows)."""
        return None

    def stage_files(self, wh: Warehouse, stage: str, paths: Sequence[str], file_format: str, file_column: str) -> None:
        """Create temp table `stage` with the rows of the files, plus `file_column` naming each file."""
        raise NotImplementedError(f"the {self.name} dialect cannot load local files")

    # -- execution ---------------------------------------------------------------------------
    def hook_class_path(self) -> str:
        raise NotImplementedError

    def make_hook(self, conn_id: str) -> Any:
        """Build the standard Airflow hook for this warehouse (imported lazily)."""
        raise NotImplementedError

    def connect(self, hook: Any) -> Any:
        """A DB-API connection from the hook."""
        return hook.get_conn()

    def lineage_source(self, hook: Any, conn_id: str) -> DatasetSource | None:
        """The warehouse in OpenLineage terms, as the hook's own OpenLineage support names it
        (None where the hook gives no name). Reads the connection only: no query is run."""
        from airflow.providers.openlineage.sqlparser import SQLParser

        from airflow_provider_nexus.lineage import DatasetSource

        info = hook.get_openlineage_database_info(hook.get_connection(conn_id))
        if info is None:
            return None
        uppercase = bool(getattr(info, "is_uppercase_names", False))
        return DatasetSource(SQLParser.create_namespace(info), info.database or None, uppercase)

    def cursor(self, connection: Any) -> Any:
        """The object statements run on; it must share the connection's session and transaction."""
        return connection.cursor()

    @contextmanager
    def translate_errors(self) -> Iterator[None]:
        """Turn driver errors that need a clearer story (locks, missing objects) into ours."""
        yield

    #: Driver exception classes, by name anywhere in an error's class hierarchy, that mean the
    #: SQL or the data is at fault, so a retry cannot help (PEP 249's classes for those, which
    #: the DuckDB, psycopg, Snowflake and Databricks drivers all use). A lost connection, a
    #: deadlock, a timeout or a resource limit (OperationalError and the rest) is worth a retry.
    permanent_error_classes: ClassVar[frozenset[str]] = frozenset(
        {"ProgrammingError", "DataError", "IntegrityError", "NotSupportedError"}
    )

    def is_permanent_error(self, exc: BaseException) -> bool:
        """True if retrying the statement that raised `exc` cannot succeed."""
        return any(cls.__name__ in self.permanent_error_classes for cls in type(exc).__mro__)

    def cancel(self, connection: Any) -> bool:
        """Ask the engine to stop the statement running on `connection`; True if asked.

        Called by a killed task (its ``on_kill`` runs in a signal handler while the statement
        waits) and after a wait was interrupted, so it must not touch the connection's own
        session. Where the driver has no way to ask, the statement runs to its end on the
        server; inside a transaction that commits nothing, because the task sends no COMMIT.
        """
        return False

    def settle_after_cancel(self, connection: Any) -> None:
        """Make `connection` usable again after a statement whose wait was interrupted (a
        timeout raised inside the driver) was cancelled: read what the server still owes."""

    # -- added for identity resolution ---------------------------------------------------------
    #: the CREATE ... TABLE kind for scratch tables that parallel workers must read, where the
    #: engine's temporary tables are private to one process; None: temporary tables will do
    parallel_scratch_kind: ClassVar[str | None] = None
    #: session settings `(name, value)` under which an aggregate keyed by integers alone runs
    #: faster; resolution applies them to such statements only, for their transaction's time
    integer_aggregate_settings: ClassVar[tuple[tuple[str, str], ...]] = ()
    #: `SELECT DISTINCT ON (...)` keeps the first row per key in one sorted pass; where it is
    #: cheaper than two aggregates and a join (PostgreSQL), resolution picks each component's
    #: smallest identifier with it
    smallest_by_distinct_on: ClassVar[bool] = False

    def smallest_pair(self, rows: str, key: str, first: str, second: str) -> str | None:
        """A SELECT of `key`, `first`, `second` keeping, per `key`, the smallest (`first`,
        `second`) pair of `rows` (a table or a parenthesised SELECT with those columns), the
        strings compared byte-wise, in one aggregate: the rows are read once, so `rows` may be a
        SELECT over a join. None where the engine cannot aggregate over row values; resolution
        then uses two aggregates and a join, which read a materialised table twice."""
        return None

    def collect_list(self, expr: str) -> str | None:
        """An aggregate collecting `expr` over a group's rows into a list that `unnest_list` and
        `list_min` read back, or None where the engine has no such list type.

        With it, resolution's full path numbers the edge groups and lists their members in one
        aggregate, and takes each group's star from the list, instead of joining every core row to
        the numbered groups and ranking the members by a window (at 1M persons 0.5-3.3 s less of
        30-33 s on DuckDB; on PostgreSQL the arrays were slower, so it keeps the joins)."""
        return None

    def unnest_list(self, expr: str) -> str:
        """A SELECT-list expression giving one row per element of the list `expr`."""
        raise NotImplementedError(f"{type(self).__name__} collects no lists")

    def list_min(self, expr: str) -> str:
        """The smallest element of the list `expr`."""
        raise NotImplementedError(f"{type(self).__name__} collects no lists")

    def row_ids(self, order_by: str, partition_by: str = "") -> str:
        """A window expression numbering rows 1..n (per `partition_by`) in no promised order.

        Resolution numbers identifiers and groups this way: any numbering will do, and skipping
        the sort saves a pass over millions of strings. `order_by` is used only where the engine
        requires ROW_NUMBER to be ordered.
        """
        return f"ROW_NUMBER() OVER ({partition_clause(partition_by)})"

    def binary_collate(self, expr: str) -> str:
        """`expr` compared byte-wise (code-point order), whatever the database's collation.

        Identity resolution orders identifiers with it so that "the smallest identifier of a
        component" (which fixes the entity id at birth) is the same on every warehouse.
        DuckDB compares strings byte-wise already and accepts `COLLATE "C"`; PostgreSQL needs it
        when the database collation is not C. Snowflake/BigQuery should override (e.g. return
        `expr` unchanged where the default is already binary).
        """
        return f'{expr} COLLATE "C"'


def partition_clause(partition_by: str) -> str:
    """The PARTITION BY clause of a window, or nothing."""
    return f"PARTITION BY {partition_by}" if partition_by else ""


def utc_naive(value: dt.datetime) -> dt.datetime:
    """All timestamps are stored as naive UTC."""
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value
