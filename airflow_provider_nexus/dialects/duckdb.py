"""DuckDB: the embedded default warehouse."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from airflow_provider_nexus.dialects.base import Dialect
from airflow_provider_nexus.errors import WarehouseCancelledError, WarehouseLockedError

if TYPE_CHECKING:
    from airflow_provider_nexus.lineage import DatasetSource
    from airflow_provider_nexus.warehouse import Warehouse

_FILE_READERS = {
    "csv": "read_csv({paths}, header = true, all_varchar = true, union_by_name = true, filename = true)",
    "parquet": "read_parquet({paths}, union_by_name = true, filename = true)",
    # sample_size = -1: infer types from every row. With the default sample, a field that is null
    # in the first 20k rows is typed NULL and its later values are silently dropped.
    "ndjson": "read_json({paths}, format = 'newline_delimited', union_by_name = true, filename = true, sample_size = -1)",
}


class DuckDBDialect(Dialect):
    name: ClassVar[str] = "duckdb"
    sqlglot_name: ClassVar[str] = "duckdb"
    supports_merge: ClassVar[bool] = True
    supports_qualify: ClassVar[bool] = True
    supports_create_or_replace: ClassVar[bool] = True
    double_type: ClassVar[str] = "DOUBLE"
    row_locator: ClassVar[str | None] = "rowid"
    needs_alarm_watchdog: ClassVar[bool] = True
    #: a database file admits one writing process, held by a task for its whole run, so no
    #: other run's task can enter meanwhile (and an in-memory database has no other session)
    renews_claims: ClassVar[bool] = False
    #: How long to wait for another process's write lock on the database file.
    lock_timeout_seconds: ClassVar[float] = 60.0

    def current_timestamp(self) -> str:
        return "CAST(get_current_timestamp() AT TIME ZONE 'UTC' AS TIMESTAMP)"

    def read_files(self, paths: Sequence[str], file_format: str) -> str:
        """A relation over local files, DuckDB's own readers (column `filename` names the file)."""
        try:
            template = _FILE_READERS[file_format]
        except KeyError:
            raise ValueError(
                f"unknown file format {file_format!r}; known: {', '.join(sorted(_FILE_READERS))}"
            ) from None
        return template.format(paths="[" + ", ".join(self.string_literal(p) for p in paths) + "]")

    def staged_row_order(self) -> str | None:
        # a CREATE TABLE AS from the readers keeps the files' order (preserve_insertion_order)
        return "rowid"

    def stage_files(self, wh: Warehouse, stage: str, paths: Sequence[str], file_format: str, file_column: str) -> None:
        wh.execute(self.create_temp_table_as(stage, f"SELECT * FROM {self.read_files(paths, file_format)}"))
        wh.execute(f"ALTER TABLE {self.quote(stage)} RENAME COLUMN filename TO {self.quote(file_column)}")

    def hook_class_path(self) -> str:
        return "airflow.providers.duckdb.hooks.duckdb.DuckDBHook"

    def make_hook(self, conn_id: str) -> Any:
        from airflow.providers.duckdb.hooks.duckdb import DuckDBHook

        return DuckDBHook(duckdb_conn_id=conn_id)

    def connect(self, hook: Any) -> Any:
        # DuckDB lets one process write a database file at a time. Tasks of a DAG are serialised
        # through a one-slot pool, but a CLI or another DAG may still hold the file briefly, so wait
        # for the lock with backoff and then fail with a retryable, explicit error.
        import duckdb

        deadline = time.monotonic() + self.lock_timeout_seconds
        delay = 0.2
        while True:
            try:
                conn = hook.get_conn()
                # Every timestamp Nexus writes is naive UTC; make casts from zoned values agree.
                conn.execute("SET TimeZone = 'UTC'")
                return conn
            except duckdb.IOException as exc:
                if "lock" not in str(exc).lower():
                    raise
                if time.monotonic() >= deadline:
                    raise WarehouseLockedError(
                        f"the DuckDB database {hook.get_database()!r} is locked by another process "
                        f"(waited {self.lock_timeout_seconds:.0f}s). DuckDB allows one writing "
                        "process per file: set `dialect: duckdb` in the pipeline config (its DAG then runs one "
                        "task at a time) and give DAGs that share the file a one-slot pool (`warehouse.pool`); "
                        "then retry. Original error: " + str(exc)
                    ) from exc
                time.sleep(delay)
                delay = min(delay * 2, 5.0)

    def lineage_source(self, hook: Any, conn_id: str) -> DatasetSource | None:
        """A database file is named by its absolute path (``duckdb:///data/nexus.duckdb``), its
        tables ``<catalog>.<schema>.<table>`` as DuckDB names them (the catalog is the file's stem).
        DuckDB's hook names none: an in-memory or MotherDuck database has no stable name here."""
        from airflow_provider_nexus.lineage import DatasetSource

        database = str(hook.get_database())
        if database == ":memory:" or database.startswith("md:"):
            return None
        path = Path(database).expanduser().resolve()
        return DatasetSource(f"duckdb://{path}", path.name.split(".")[0])  # DuckDB's catalog name

    def binary_collate(self, expr: str) -> str:
        """DuckDB already compares VARCHAR byte-wise (checked: ``'B' < 'a'``, and multibyte UTF-8
        sorts like Python's ``sorted`` of the UTF-8 bytes), so no collation is added."""
        return expr

    def smallest_pair(self, rows: str, key: str, first: str, second: str) -> str | None:
        # min() of a row value compares its fields in order, VARCHARs byte-wise (see above)
        return (
            f"SELECT {key}, m[1] AS {first}, m[2] AS {second} "
            f"FROM (SELECT r.{key}, min((r.{first}, r.{second})) AS m FROM {rows} r GROUP BY r.{key}) s"
        )

    def collect_list(self, expr: str) -> str | None:
        return f"list({expr})"

    def unnest_list(self, expr: str) -> str:
        return f"unnest({expr})"

    def list_min(self, expr: str) -> str:
        return f"list_min({expr})"

    def cursor(self, connection: Any) -> Any:
        # A DuckDB "cursor" is a second connection with its own temp tables and transaction;
        # statements must run on the connection itself.
        return connection

    @contextmanager
    def translate_errors(self) -> Iterator[None]:
        try:
            yield
        except RuntimeError as exc:
            # DuckDB checks Python signals while a statement runs: when a handler raised
            # (Airflow's execution_timeout does), it stops the statement (some, such as a CREATE
            # TABLE AS of an aggregate, only at their end: hence needs_alarm_watchdog), rolls it
            # back, and raises this in place of the handler's exception.
            if str(exc) != "Query interrupted":
                raise
            raise WarehouseCancelledError(
                "DuckDB rolled back the statement because the task was interrupted while it ran "
                "(an execution_timeout or a signal); nothing of it was committed"
            ) from exc

    def cancel(self, connection: Any) -> bool:
        # interrupt() is DuckDB's documented way to stop a query from another thread or a handler
        connection.interrupt()
        return True
