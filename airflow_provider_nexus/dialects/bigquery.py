"""BigQuery, through BigQueryHook (apache-airflow-providers-google) query jobs.

How Nexus runs on BigQuery:

* **Execution.** Every statement is one query job, submitted the way ``BigQueryInsertJobOperator``
  does it: ``hook.insert_job(configuration={"query": {..., "useLegacySql": False}})``, which waits
  for the job and raises its error. Rows come back through the job's result; TIMESTAMP values
  are returned as naive UTC ``datetime`` like on the other warehouses.
* **One session per Warehouse.** The first job creates a BigQuery session (``createSession``)
  and every later job runs in it (``connectionProperties: session_id``). Temporary tables
  (``CREATE TEMP TABLE``), which the layers stage their batches in, exist only inside a script
  or a session, so the session is what makes them work across jobs. Closing the warehouse
  aborts the session (``CALL BQ.ABORT_SESSION()``), which drops its temp tables and rolls back a
  transaction left open.
* **Transactions** (``supports_transactions = True``). BigQuery runs a multi-statement
  transaction across several query jobs only inside a session, which every Nexus job is in:
  ``BEGIN TRANSACTION`` / ``COMMIT TRANSACTION`` / ``ROLLBACK TRANSACTION`` are jobs of the
  session, so a layer's rows and its watermark commit together, with snapshot isolation. Inside a
  transaction BigQuery accepts queries, DML and DDL on *temporary* tables only: DDL on permanent
  tables (CREATE/DROP/ALTER TABLE) is an error there, not an implicit commit. Hence
  ``transactional_ddl = False``: the layers create and alter their permanent tables before they
  open the transaction, and ``publish_tables`` runs outside one (see there). A ROLLBACK that
  BigQuery refuses because the failed statement already ended the transaction is ignored.
* **Datasets** (Nexus "schemas") are created through the client,
  ``hook.create_empty_dataset(..., exists_ok=True)``, in the connection's location: the session
  turns the statement from ``create_schema`` into that call.
* **Names** are backtick-quoted, tables as ```project`.`dataset`.`table``` once the warehouse
  knows the connection's project (``dataset.table`` in the default project when rendering
  without a connection, e.g. ``nexus render``). Temp tables stay unqualified (session scope).
* **Types.** STRING, INT64, FLOAT64 and **TIMESTAMP**. Nexus stores naive UTC on every
  warehouse; on BigQuery a TIMESTAMP is an absolute instant, shown in UTC, and a string without
  an offset is read as UTC, so the same literals and comparisons hold. TIMESTAMP rather than
  DATETIME because ingestion tools land ``synced_at`` columns as TIMESTAMP in BigQuery, and
  BigQuery compares no TIMESTAMP with a DATETIME.
* **Hashes**: ``TO_HEX(MD5(text))``, the lower-case hex MD5 the other dialects' ``md5()`` give,
  so surrogate keys and entity ids are the same on every warehouse for the same text. Keys over
  non-text values may differ (``CAST(TIMESTAMP AS STRING)`` ends in ``+00`` on BigQuery).
* **Local files** (``stage_files``) are loaded with load jobs from local data
  (``client.load_table_from_file``): each file is re-encoded as NDJSON with lower-cased column
  names and an explicit schema (CSV/NDJSON columns STRING, Parquet columns their own types),
  loaded into a scratch table of ``staging_dataset`` (created on demand; its tables expire after
  a day if a run dies), copied into the session's temp table, and dropped.
* Catalog lookups (``list_columns``, ``list_tables``) read the dataset's own
  ``INFORMATION_SCHEMA`` views: BigQuery has no project-wide unqualified ``information_schema``.
  A dataset that does not exist has no tables.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from airflow_provider_nexus.dialects.base import SOURCE_ROW, Dialect, utc_naive

if TYPE_CHECKING:
    from airflow_provider_nexus.lineage import DatasetSource
    from airflow_provider_nexus.warehouse import Warehouse

log = logging.getLogger(__name__)

#: Arrow type families -> BigQuery column types (Parquet input).
_ARROW_TYPES = (
    ("is_boolean", "BOOL"),
    ("is_integer", "INT64"),
    ("is_floating", "FLOAT64"),
    ("is_timestamp", "TIMESTAMP"),
    ("is_date", "DATE"),
)

_TRANSACTION = re.compile(r"\A(BEGIN|COMMIT|ROLLBACK)(\s+TRANSACTION)?\Z", re.IGNORECASE)


class BigQueryDialect(Dialect):
    """GoogleSQL through BigQueryHook query jobs in one session (see the module docstring)."""

    name: ClassVar[str] = "bigquery"
    sqlglot_name: ClassVar[str] = "bigquery"
    supports_transactions: ClassVar[bool] = True
    supports_merge: ClassVar[bool] = True
    supports_qualify: ClassVar[bool] = True
    supports_create_or_replace: ClassVar[bool] = True
    transactional_ddl: ClassVar[bool] = False
    quote_char: ClassVar[str] = "`"
    #: a job's errors are google.api_core's HTTP errors: 400 is an invalid query or value, 404 a
    #: missing table; 403 may be a rate limit and 5xx a service error, both worth a retry
    permanent_error_classes: ClassVar[frozenset[str]] = frozenset({"BadRequest", "NotFound"})
    timestamp_type: ClassVar[str] = "TIMESTAMP"
    text_type: ClassVar[str] = "STRING"
    bigint_type: ClassVar[str] = "INT64"
    double_type: ClassVar[str] = "FLOAT64"
    boolean_type: ClassVar[str] = "BOOL"
    #: Dataset for the scratch tables of file loads (created on demand).
    staging_dataset: ClassVar[str] = "nexus_staging"

    def __init__(self, project: str | None = None) -> None:
        #: GCP project of the tables; set from the connection when the warehouse opens.
        self.project = project

    # -- names ---------------------------------------------------------------------------
    def quote(self, name: str) -> str:
        text = str(name)
        if "\x00" in text or "\n" in text:
            raise ValueError(f"cannot quote identifier {text!r}")
        return "`" + text.replace("\\", "\\\\").replace("`", "\\`") + "`"

    def table(self, schema: str, name: str) -> str:
        if self.project:
            return f"{self.quote(self.project)}.{self.quote(schema)}.{self.quote(name)}"
        return f"{self.quote(schema)}.{self.quote(name)}"

    # -- literals --------------------------------------------------------------------------
    def string_literal(self, value: str) -> str:
        """GoogleSQL string literals escape with a backslash (a doubled quote is not an escape)
        and a single-quoted literal cannot span lines, so both are escaped."""
        if "\x00" in value:
            raise ValueError("NUL characters cannot be rendered in a SQL string literal")
        escaped = value.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n").replace("\r", "\\r")
        return "'" + escaped + "'"

    def blank_characters_sql(self) -> str:
        # A literal: CODE_POINTS_TO_STRING or \uXXXX escapes would be clearer, but the BigQuery
        # emulators (over DuckDB) know neither. Line breaks are escaped by string_literal.
        return self.string_literal(self.blank_characters()).replace("\t", "\\t")

    # -- fragments -------------------------------------------------------------------------
    def hash_hex(self, expr: str) -> str:
        return f"TO_HEX(MD5({expr}))"

    def utc_timestamp(self, expr: str) -> str:
        # a BigQuery TIMESTAMP is an instant: the cast applies an offset and reads none as UTC
        return f"CAST({expr} AS {self.timestamp_type})"

    def try_cast_timestamp(self, expr: str) -> str:
        return f"SAFE_CAST({expr} AS {self.timestamp_type})"

    def regexp_replace(self, expr: str, pattern: str, replacement: str) -> str:
        # REGEXP_REPLACE replaces every match (RE2 syntax).
        return f"REGEXP_REPLACE({expr}, {self.string_literal(pattern)}, {self.string_literal(replacement)})"

    def regexp_matches(self, expr: str, pattern: str) -> str:
        return f"REGEXP_CONTAINS({expr}, {self.string_literal(pattern)})"

    def current_timestamp(self) -> str:
        return "CURRENT_TIMESTAMP()"

    def create_temp_table_as(self, name: str, select_sql: str) -> str:
        return f"CREATE OR REPLACE TEMP TABLE {self.quote(name)} AS {select_sql}"

    def arg_max(self, value: str, order_by: str) -> str:
        return f"MAX_BY({value}, {order_by})"

    def arg_max_where(self, value: str, order_by: str, condition: str) -> str:
        """ARRAY_AGG ... IGNORE NULLS drops the rows not meeting `condition` (and null values);
        SAFE_OFFSET(0) takes the first by `order_by`, or NULL for an empty array.

        Without ``LIMIT 1`` inside ARRAY_AGG: BigQuery would accept it (and build smaller
        arrays), but sqlglot cannot translate it, and both the emulator the tests run on and the
        DuckDB cross-check translate through sqlglot. The arrays hold one entity's values of one
        trait or identifier type, far below BigQuery's row size limit."""
        return (
            f"ARRAY_AGG(IF({condition}, {value}, NULL) IGNORE NULLS "
            f"ORDER BY {order_by} DESC NULLS LAST, {self.binary_collate(value)} DESC)[SAFE_OFFSET(0)]"
        )

    def key_in(self, alias: str, source: str, keys: Sequence[str]) -> str:
        """BigQuery has no row-value ``(a, b) IN (SELECT a, b ...)``: match through EXISTS."""
        return self.key_exists(alias, source, keys)

    def delete_target(self, target: str, alias: str) -> tuple[str, str]:
        return f"DELETE FROM {target} AS {alias}", alias

    def bool_and(self, expr: str) -> str:
        return f"LOGICAL_AND({expr})"

    def string_agg_distinct(self, expr: str, sep: str = ",") -> str:
        return f"STRING_AGG(DISTINCT {expr}, {self.string_literal(sep)} ORDER BY {expr})"

    def type_name(self, expr: str) -> str:
        """GoogleSQL has no TYPEOF. Drifted columns come from staged files, whose CSV and NDJSON
        values are loaded as text, so a drifted column is added as STRING."""
        return self.string_literal(self.text_type)

    def binary_collate(self, expr: str) -> str:
        """BigQuery orders STRING values by their UTF-8 bytes (= code points) unless a collation
        is set on the column or dataset; Nexus creates its tables without one, so `expr` is
        returned unchanged."""
        return expr

    # -- catalog -----------------------------------------------------------------------------
    def ensure_schema(self, wh: Warehouse, schema: str) -> None:
        """Datasets are made through the client (location, no SQL needed), once per session."""
        wh.executed.append(f"-- create dataset {self.quote(schema)} if missing (BigQuery client)")
        wh.connection.ensure_dataset(schema)

    def list_columns(self, wh: Warehouse, schema: str, table: str) -> list[str]:
        rows = self._catalog(
            wh,
            schema,
            f"SELECT column_name FROM {self._information_schema(schema, 'COLUMNS')} "
            f"WHERE table_name = {self.literal(table)} ORDER BY ordinal_position",
        )
        return [str(r[0]).lower() for r in rows]

    def list_tables(self, wh: Warehouse, schema: str) -> list[str]:
        rows = self._catalog(
            wh, schema, f"SELECT table_name FROM {self._information_schema(schema, 'TABLES')} ORDER BY table_name"
        )
        return [str(r[0]) for r in rows]

    def list_views(self, wh: Warehouse, schema: str) -> list[str]:
        rows = self._catalog(
            wh,
            schema,
            f"SELECT table_name FROM {self._information_schema(schema, 'VIEWS')} ORDER BY table_name",
        )
        return [str(r[0]) for r in rows]

    def _information_schema(self, schema: str, view: str) -> str:
        dataset = self.table(schema, "INFORMATION_SCHEMA")  # `project`.`dataset`.`INFORMATION_SCHEMA`
        return f"{dataset.rsplit('.', 1)[0]}.INFORMATION_SCHEMA.{view}"

    @staticmethod
    def _catalog(wh: Warehouse, schema: str, sql: str) -> list[tuple[Any, ...]]:
        from google.api_core.exceptions import NotFound

        try:
            return wh.fetchall(sql)
        except NotFound:  # no such dataset: no such table either
            return []

    def publish_tables(self, wh: Warehouse, schema: str, renames: Sequence[tuple[str, str]]) -> None:
        """Replace each target with its staged table: ``CREATE OR REPLACE TABLE target AS SELECT *
        FROM staged``, then drop the staged table.

        Each replacement is atomic (readers see the old table or the new one), but BigQuery
        refuses DDL on permanent tables inside a transaction, so the set of tables is NOT
        replaced atomically as a whole: a reader between two statements may see a new table next
        to an old one, and a failure half-way leaves the earlier tables published. Re-running the
        layer completes it. (``CREATE OR REPLACE TABLE ... COPY`` would avoid re-reading the
        rows; it is not used because the emulator the tests run on has no COPY.)
        """
        for staged, target in renames:
            staged_q = self.table(schema, staged)
            wh.execute(f"CREATE OR REPLACE TABLE {self.table(schema, target)} AS SELECT * FROM {staged_q}")
            wh.execute(f"DROP TABLE IF EXISTS {staged_q}")

    # -- file input --------------------------------------------------------------------------
    def lineage_source(self, hook: Any, conn_id: str) -> DatasetSource | None:
        """Namespace ``bigquery``, tables ``project.dataset.table``. The project is read from the
        connection's extras first: the hook's `project_id` builds credentials to find it, which may
        call a metadata server."""
        from airflow_provider_nexus.lineage import DatasetSource

        extra = hook.get_connection(conn_id).extra_dejson
        project = extra.get("project") or extra.get("extra__google_cloud_platform__project") or hook.project_id
        return DatasetSource("bigquery", project)

    def staged_row_order(self) -> str | None:
        return self.quote(SOURCE_ROW)

    def stage_files(self, wh: Warehouse, stage: str, paths: Sequence[str], file_format: str, file_column: str) -> None:
        """Load local files into temp table `stage` through load jobs (one per file).

        CSV and NDJSON values are loaded as text (CSV: empty fields are NULL, like DuckDB's
        reader; NDJSON objects and arrays as JSON text); Parquet keeps its types. Each row keeps
        its position in its file (`_source_row`), which a load job would not. Column names are
        lower-cased. Each file goes to a scratch table in `staging_dataset` with
        ``client.load_table_from_file``; one statement then builds the temp table from them (the
        files' columns united by name) and the scratch tables are dropped.
        """
        session = wh.connection
        if not isinstance(session, BigQuerySession):
            raise NotImplementedError("BigQuery files are loaded through a BigQuerySession (Warehouse.open)")
        from airflow_provider_nexus.dialects.files import column_types

        types = column_types(paths, file_format, file_column, self.text_type, _ARROW_TYPES)
        session.ensure_dataset(self.staging_dataset, expiration_ms=24 * 3600 * 1000)
        loaded: list[tuple[str, list[str]]] = []
        try:
            for path in paths:
                scratch = f"{stage}__{uuid.uuid4().hex[:12]}"
                wh.executed.append(f"-- load job {self.table(self.staging_dataset, scratch)} <- {Path(path).name}")
                columns = session.load_file(self.staging_dataset, scratch, path, file_format, types)
                loaded.append((scratch, columns))
            selects = []
            for (scratch, columns), path in zip(loaded, paths, strict=True):
                present = {c.lower(): c for c in columns}
                cols = [
                    f"{self.quote(present[c])} AS {self.quote(c)}"
                    if c in present
                    else f"CAST(NULL AS {t}) AS {self.quote(c)}"
                    for c, t in types.items()
                ]
                cols.append(f"{self.literal(path)} AS {self.quote(file_column)}")
                cols.append(self.quote(SOURCE_ROW))
                selects.append(f"SELECT {', '.join(cols)} FROM {self.table(self.staging_dataset, scratch)}")
            wh.execute_statement(self.create_temp_table_as(stage, "\nUNION ALL\n".join(selects)))
        finally:
            for scratch, _ in loaded:
                try:
                    wh.execute_statement(f"DROP TABLE IF EXISTS {self.table(self.staging_dataset, scratch)}")
                except Exception:  # the scratch table expires on its own
                    log.warning("could not drop scratch table %s.%s", self.staging_dataset, scratch)

    # -- execution ---------------------------------------------------------------------------
    def hook_class_path(self) -> str:
        return "airflow.providers.google.cloud.hooks.bigquery.BigQueryHook"

    def make_hook(self, conn_id: str) -> Any:
        from airflow.providers.google.cloud.hooks.bigquery import BigQueryHook

        return BigQueryHook(gcp_conn_id=conn_id, use_legacy_sql=False)

    def connect(self, hook: Any) -> Any:
        session = BigQuerySession(hook)
        self.project = session.project
        session.start()
        return session

    def cursor(self, connection: Any) -> Any:
        return connection.cursor()


class BigQuerySession:
    """A DB-API-like connection: statements are query jobs of one BigQuery session.

    Only what ``Warehouse`` uses: ``cursor()`` (``execute``, ``fetchall``, ``fetchone``,
    ``description``) and ``close()``.
    """

    def __init__(self, hook: Any, location: str | None = None) -> None:
        self.hook = hook
        self.project: str = hook.project_id
        if not self.project:
            raise ValueError("the BigQuery connection names no project (set 'project' in its extras)")
        # One location for the session, its jobs and the datasets it creates (BigQuery's default
        # for datasets is US; a session cannot span locations).
        self.location: str = location or hook.location or "US"
        self.session_id: str | None = None
        self._datasets: set[str] = set()

    # -- session ------------------------------------------------------------------------------
    def start(self) -> None:
        job = self._job("SELECT 1", create_session=True)
        info = getattr(job, "session_info", None)
        self.session_id = getattr(info, "session_id", None)
        if not self.session_id:
            raise RuntimeError("BigQuery did not return a session id for a job with createSession")

    def close(self) -> None:
        if self.session_id is None:
            return
        try:
            self._job("CALL BQ.ABORT_SESSION()")
        except Exception as exc:  # the session expires on its own after 24 hours idle
            log.info("could not abort BigQuery session %s: %s", self.session_id, exc)
        finally:
            self.session_id = None

    def cursor(self) -> BigQueryCursor:
        return BigQueryCursor(self)

    # -- jobs ---------------------------------------------------------------------------------
    def _job(self, sql: str, create_session: bool = False) -> Any:
        query: dict[str, Any] = {"query": sql, "useLegacySql": False}
        if create_session:
            query["createSession"] = True
        elif self.session_id:
            query["connectionProperties"] = [{"key": "session_id", "value": self.session_id}]
        return self.hook.insert_job(configuration={"query": query}, project_id=self.project, location=self.location)

    def run(self, sql: str) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]] | None]:
        """Run one statement; return (rows, description)."""
        text = sql.strip().rstrip(";").strip()
        transaction = _TRANSACTION.match(text)
        if transaction:
            return self._transaction(transaction.group(1).upper())
        return self._rows(self._job(text))

    def _transaction(self, verb: str) -> tuple[list[tuple[Any, ...]], None]:
        try:
            self._job(f"{verb} TRANSACTION")
        except Exception as exc:
            if verb != "ROLLBACK":
                raise
            # A failed statement may already have ended the transaction; nothing is left to undo.
            log.info("ROLLBACK TRANSACTION refused (%s); the transaction had already ended", exc)
        return [], None

    @staticmethod
    def _rows(job: Any) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]] | None]:
        result = job.result()
        schema = getattr(result, "schema", None) or []
        description = [(f.name, f.field_type, None, None, None, None, None) for f in schema] or None
        rows = [tuple(_naive_utc(v) for v in row.values()) for row in result]
        return rows, description

    # -- datasets and files -------------------------------------------------------------------
    def ensure_dataset(self, dataset: str, expiration_ms: int | None = None) -> None:
        if dataset in self._datasets:
            return
        reference: dict[str, Any] = {}
        if expiration_ms:
            reference["defaultTableExpirationMs"] = str(expiration_ms)
        self.hook.create_empty_dataset(
            dataset_id=dataset,
            project_id=self.project,
            location=self.location,
            dataset_reference=reference or None,
            exists_ok=True,
        )
        self._datasets.add(dataset)

    def load_file(self, dataset: str, table: str, path: str, file_format: str, types: dict[str, str]) -> list[str]:
        """Load one local file into `dataset.table` with a load job; return its column names.

        The file is re-encoded as NDJSON with lower-cased column names and sent with an explicit
        schema (`types`): one load path for the three formats, no case-sensitive name matching,
        and no schema auto-detection (a Parquet file's types become the schema's types). Each
        record carries its position in the file as `_source_row`: a load job keeps no order.
        """
        import tempfile

        from google.cloud import bigquery

        columns = list(types)
        with tempfile.TemporaryFile() as payload:
            for position, record in enumerate(_records(path, file_format, columns), start=1):
                record[SOURCE_ROW] = position
                payload.write(json.dumps(record, default=_json_value).encode("utf-8") + b"\n")
            payload.seek(0)
            config = bigquery.LoadJobConfig(
                source_format=bigquery.SourceFormat.NEWLINE_DELIMITED_JSON,
                schema=[
                    *(bigquery.SchemaField(c, t) for c, t in types.items()),
                    bigquery.SchemaField(SOURCE_ROW, "INT64"),
                ],
                write_disposition="WRITE_TRUNCATE",
                create_disposition="CREATE_IF_NEEDED",
            )
            client = self.hook.get_client(project_id=self.project, location=self.location)
            destination = f"{self.project}.{dataset}.{table}"
            client.load_table_from_file(payload, destination, job_config=config, location=self.location).result()
        return columns


class BigQueryCursor:
    """Runs statements of a BigQuerySession; rows are fetched in full when the job is done."""

    def __init__(self, session: BigQuerySession) -> None:
        self.session = session
        self.description: list[tuple[Any, ...]] | None = None
        self._rows: list[tuple[Any, ...]] = []

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> BigQueryCursor:
        if params:
            raise NotImplementedError("the BigQuery dialect renders values as literals; bound parameters are unused")
        self._rows, self.description = self.session.run(sql)
        return self

    def fetchall(self) -> list[tuple[Any, ...]]:
        rows, self._rows = self._rows, []
        return rows

    def fetchone(self) -> tuple[Any, ...] | None:
        return self._rows.pop(0) if self._rows else None

    def close(self) -> None:
        self._rows = []

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        return iter(self.fetchall())


def _naive_utc(value: Any) -> Any:
    """TIMESTAMP values come back zoned (UTC); Nexus works with naive UTC."""
    return utc_naive(value) if isinstance(value, dt.datetime) else value


def _records(path: str, file_format: str, columns: list[str]) -> Iterator[dict[str, Any]]:
    """The rows of one file as {column: value}, aligned on `columns` (absent columns are NULL)."""
    if file_format == "parquet":
        from airflow_provider_nexus.dialects.files import parquet_module

        pq = parquet_module()
        for batch in pq.ParquetFile(path).iter_batches(batch_size=50_000):
            data = {name.lower(): batch.column(i).to_pylist() for i, name in enumerate(batch.schema.names)}
            for i in range(batch.num_rows):
                yield {c: data[c][i] if c in data else None for c in columns}
        return
    from airflow_provider_nexus.dialects.files import csv_rows, ndjson_rows

    rows = csv_rows(path, columns) if file_format == "csv" else ndjson_rows(path, columns)
    for row in rows:
        yield dict(zip(columns, row, strict=True))


def _json_value(value: Any) -> Any:
    """JSON for Parquet values json cannot encode: timestamps as UTC text, dates, decimals, bytes."""
    if isinstance(value, dt.datetime):
        return _naive_utc(value).isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)
