"""PostgreSQL, through PostgresHook (psycopg 3, or psycopg2 on older installs)."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from airflow_provider_nexus.dialects.base import SOURCE_ROW, Dialect
from airflow_provider_nexus.dialects.files import column_types, csv_header, ndjson_rows, parquet_rows

if TYPE_CHECKING:
    from airflow_provider_nexus.warehouse import Warehouse

#: Arrow type families -> PostgreSQL column types for Parquet input.
_ARROW_TYPES = (
    ("is_boolean", "BOOLEAN"),
    ("is_integer", "BIGINT"),
    ("is_floating", "DOUBLE PRECISION"),
    ("is_timestamp", "TIMESTAMP"),
    ("is_date", "DATE"),
)


#: How often the server checks, during a statement, that this session's client is still there.
CLIENT_CHECK_INTERVAL = "5s"
#: PostgreSQL server encodings -> Python codecs, to know which characters a literal may hold. Any
#: other (SQL_ASCII, whose bytes mean nothing in particular, included) is taken as ASCII.
_PYTHON_CODECS = {
    "UTF8": "utf-8",
    "LATIN1": "latin-1",
    "LATIN9": "iso8859-15",
    "WIN1252": "cp1252",
    "EUC_JP": "euc_jp",
    "EUC_KR": "euc_kr",
    "GB18030": "gb18030",
}
#: How long a cancelled statement's session may take to answer before it is given up.
SETTLE_SECONDS = 10.0


class PostgresDialect(Dialect):
    name: ClassVar[str] = "postgres"
    sqlglot_name: ClassVar[str] = "postgres"
    supports_merge: ClassVar[bool] = True  # PostgreSQL 15+
    text_type: ClassVar[str] = "TEXT"
    # temporary tables live in the backend's local buffers, which parallel workers cannot read
    parallel_scratch_kind: ClassVar[str | None] = "UNLOGGED TABLE"
    # A hash aggregate spills in many batches under the stock 4MB work_mem (a larger work_mem
    # measured slower still). Sorted, the groups per node took 4.4-5.5 s against 7.4-11.5 s at 1M
    # persons; the string-keyed aggregates, and the component rounds, measured slower sorted.
    integer_aggregate_settings: ClassVar[tuple[tuple[str, str], ...]] = (("enable_hashagg", "off"),)
    smallest_by_distinct_on: ClassVar[bool] = True
    probes_indexes: ClassVar[bool] = True

    def current_timestamp(self) -> str:
        return "(now() AT TIME ZONE 'UTC')"

    def regexp_matches(self, expr: str, pattern: str) -> str:
        return f"({expr} ~ {self.string_literal(pattern)})"

    def try_cast_timestamp(self, expr: str) -> str:
        raise NotImplementedError("PostgreSQL has no TRY_CAST; cast strictly and let bad rows fail loudly")

    def create_temp_table_as(self, name: str, select_sql: str) -> str:
        return f"DROP TABLE IF EXISTS {self.quote(name)};\nCREATE TEMP TABLE {self.quote(name)} AS {select_sql}"

    def trim_characters(self, expr: str, characters: str) -> str:
        return f"BTRIM({expr}, {characters})"

    def analyze(self, table: str) -> str | None:
        # autovacuum never sees temp tables; without statistics the resolution joins are planned
        # as if every scratch table were tiny
        return f"ANALYZE {table}"

    def type_name(self, expr: str) -> str:
        return f"format_type(pg_typeof({expr})::oid, NULL)"

    def empty_table(self, target: str) -> str:
        # transactional, and frees the old rows at once (a DELETE leaves them for VACUUM)
        return f"TRUNCATE {target}"

    def create_index(self, table: str, name: str, columns: Sequence[str], *, block_range: bool = False) -> str | None:
        # Incremental runs look rows up by key in tables of millions: without an index each
        # lookup is a sequential scan. BRIN for load times: tiny, and rows arrive in that order.
        using = " USING brin" if block_range else ""
        cols = ", ".join(self.quote(c) for c in columns)
        return f"CREATE INDEX IF NOT EXISTS {self.quote(name)} ON {table}{using} ({cols})"

    # -- execution ---------------------------------------------------------------------------
    def hook_class_path(self) -> str:
        return "airflow.providers.postgres.hooks.postgres.PostgresHook"

    def make_hook(self, conn_id: str) -> Any:
        from airflow.providers.postgres.hooks.postgres import PostgresHook

        return PostgresHook(postgres_conn_id=conn_id)

    def connect(self, hook: Any) -> Any:
        conn = hook.get_conn()
        # Transactions are explicit (BEGIN ... COMMIT in Warehouse.transaction); outside them each
        # statement stands alone, so a failed read never poisons the session.
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SET TIME ZONE 'UTC'")
            # Literals are rendered with quotes doubled and backslashes as plain characters; a
            # server or role that turned this off would read a backslash as an escape.
            cur.execute("SET standard_conforming_strings = on")
            # A worker killed outright (SIGKILL, OOM) cancels nothing, and the server would run its
            # statement to the end, holding its locks. PostgreSQL 14+ can check for a vanished
            # client while a statement runs; turn that on where the server has it and nobody set it.
            cur.execute(
                "SELECT set_config('client_connection_check_interval', %s, false) "
                "WHERE current_setting('client_connection_check_interval', true) = '0'",
                [CLIENT_CHECK_INTERVAL],
            )
            cur.execute("SHOW server_encoding")
            row = cur.fetchone()
        self.text_encoding = _PYTHON_CODECS.get(str(row[0]).upper() if row else "", "ascii")
        return conn

    def cancel(self, connection: Any) -> bool:
        # A cancel request goes over a new connection with the backend's key, so it is safe while
        # this one waits. psycopg 3.2+ has cancel_safe (no blocking libpq call); psycopg2 cancel().
        ask = getattr(connection, "cancel_safe", None) or getattr(connection, "cancel", None)
        if ask is None:
            return False
        ask()
        return True

    def settle_after_cancel(self, connection: Any) -> None:
        # psycopg 3: an interrupted wait leaves the statement's result unread, and every later
        # statement fails with "another command is already in progress" until it is read. The
        # server answers a cancel at once; if it does not within the bound, give up: closing the
        # connection ends the session and its transaction anyway.
        import select

        pgconn = getattr(connection, "pgconn", None)
        if pgconn is None:
            return
        deadline = time.monotonic() + SETTLE_SECONDS
        while True:
            while pgconn.is_busy():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                select.select([pgconn.socket], [], [], remaining)
                pgconn.consume_input()
            if pgconn.get_result() is None:
                return

    # -- files through COPY --------------------------------------------------------------------
    def staged_row_order(self) -> str | None:
        return self.quote(SOURCE_ROW)

    def stage_files(self, wh: Warehouse, stage: str, paths: Sequence[str], file_format: str, file_column: str) -> None:
        """Load local files with COPY ... FROM STDIN (never row-by-row INSERTs)."""
        types = column_types(paths, file_format, file_column, self.text_type, _ARROW_TYPES)
        cols = ", ".join(f"{self.quote(c)} {t}" for c, t in types.items())
        wh.execute(f"DROP TABLE IF EXISTS {self.quote(stage)}")
        # COPY fills the identity column in the order the rows arrive
        wh.execute(
            f"CREATE TEMP TABLE {self.quote(stage)} ({cols}, {self.quote(file_column)} TEXT, "
            f"{self.quote(SOURCE_ROW)} BIGINT GENERATED ALWAYS AS IDENTITY)"
        )
        for path in paths:
            if file_format == "csv":
                _copy_csv(wh, self, stage, path, csv_header(path), file_column)
            else:
                rows = parquet_rows(path, list(types)) if file_format == "parquet" else ndjson_rows(path, list(types))
                _copy_rows(wh, self, stage, list(types), rows, path, file_column)


def _copy_csv(wh: Warehouse, d: Dialect, stage: str, path: str, header: list[str], file_column: str) -> None:
    """Stream the file's bytes into COPY, then stamp the file name on its rows."""
    cols = ", ".join(d.quote(c) for c in header)
    sql = f"COPY {d.quote(stage)} ({cols}) FROM STDIN WITH (FORMAT csv, HEADER true)"
    cur = wh.connection.cursor()
    with open(path, "rb") as fh, wh.statement(f"{sql} -- {Path(path).name}"):
        if hasattr(cur, "copy"):  # psycopg 3
            with cur.copy(sql) as copy:
                while chunk := fh.read(1 << 20):
                    wh.check_cancelled()
                    copy.write(chunk)
        else:  # psycopg2
            cur.copy_expert(sql, fh)
    wh.execute_statement(
        f"UPDATE {d.quote(stage)} SET {d.quote(file_column)} = {d.literal(path)} WHERE {d.quote(file_column)} IS NULL"
    )


def _copy_rows(
    wh: Warehouse, d: Dialect, stage: str, columns: list[str], rows: Iterator[list[Any]], path: str, file_column: str
) -> None:
    cols = ", ".join(d.quote(c) for c in [*columns, file_column])
    sql = f"COPY {d.quote(stage)} ({cols}) FROM STDIN"
    cur = wh.connection.cursor()
    with wh.statement(f"{sql} -- {Path(path).name}"):
        if hasattr(cur, "copy"):  # psycopg 3
            with cur.copy(sql) as copy:
                for row in rows:
                    wh.check_cancelled()  # raising sends CopyFail: no row of the file is kept
                    copy.write_row([*row, path])
        else:  # psycopg2: text format through a buffer
            import io

            buffer = io.StringIO()
            for row in rows:
                wh.check_cancelled()
                buffer.write("\t".join(_copy_text(v) for v in [*row, path]) + "\n")
            buffer.seek(0)
            cur.copy_expert(sql, buffer)


def _copy_text(value: Any) -> str:
    if value is None:
        return "\\N"
    return str(value).replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
