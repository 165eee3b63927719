"""Redshift and Databricks dialects: generated and parse-checked with sqlglot, not run live.

No Redshift or Databricks server is available to the tests, so these check what can be checked
without one: the registry, quoting and literals (read back through sqlglot's tokenizer for that
dialect), the SQL fragments, the lazy hook mapping (when the provider is installed), that the
dialect modules import no warehouse client, and that every statement identity resolution issues
parses in the dialect (captured with a recording fake connection).
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import re
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest
import sqlglot
from sqlglot import exp

from airflow_provider_nexus.dialects import CONN_TYPES, DIALECTS, get_dialect
from airflow_provider_nexus.dialects.base import Dialect
from airflow_provider_nexus.dialects.databricks import DatabricksDialect
from airflow_provider_nexus.dialects.postgres import PostgresDialect
from airflow_provider_nexus.dialects.redshift import RedshiftDialect
from airflow_provider_nexus.errors import NexusConfigError
from airflow_provider_nexus.resolution import NoiseRules, resolve_entity_type
from airflow_provider_nexus.resolution import resolve as resolve_module
from airflow_provider_nexus.warehouse import Warehouse

NAMES = ["redshift", "databricks"]
WHEN = dt.datetime(2024, 1, 1, 12, 30, 0, 123456)


def _parse(dialect: Dialect, sql: str) -> list[exp.Expression]:
    statements = sqlglot.parse(sql, read=dialect.sqlglot_name)
    assert statements, sql
    for statement in statements:
        assert statement is not None and not isinstance(statement, exp.Command), f"did not parse: {sql[:300]}"
    return [s for s in statements if s is not None]


def _value_of(dialect: Dialect, fragment: str) -> exp.Expression:
    (select,) = _parse(dialect, f"SELECT {fragment}")
    assert isinstance(select, exp.Select)
    return select.expressions[0]


# -- registry ------------------------------------------------------------------------------


@pytest.mark.parametrize(("conn_type", "cls"), [("redshift", RedshiftDialect), ("databricks", DatabricksDialect)])
def test_registered_under_the_providers_conn_types(conn_type: str, cls: type[Dialect]) -> None:
    # "redshift" is the Amazon provider's RedshiftSQLHook conn_type, "databricks" the Databricks
    # provider's (DatabricksSqlHook reads the same connection type).
    assert CONN_TYPES[conn_type] == cls.name
    assert DIALECTS[cls.name].endswith(f":{cls.__name__}")
    dialect = get_dialect(conn_type)
    assert type(dialect) is cls
    assert dialect.sqlglot_name == conn_type


def test_unknown_conn_type_lists_the_new_dialects() -> None:
    with pytest.raises(NexusConfigError) as info:
        get_dialect("oracle")
    assert "redshift" in str(info.value) and "databricks" in str(info.value)


def test_capability_flags() -> None:
    rs, db = RedshiftDialect(), DatabricksDialect()
    assert (rs.supports_transactions, rs.transactional_ddl, rs.supports_create_or_replace) == (True, True, False)
    assert (rs.supports_merge, rs.supports_qualify) == (True, True)
    assert (db.supports_transactions, db.transactional_ddl, db.supports_create_or_replace) == (False, False, True)
    assert (db.supports_merge, db.supports_qualify) == (True, True)
    assert DatabricksDialect.__doc__ and "supports_transactions = False" in DatabricksDialect.__doc__


# -- names and literals ----------------------------------------------------------------------


def test_quoting() -> None:
    rs, db = RedshiftDialect(), DatabricksDialect()
    assert rs.quote("rows") == '"rows"'
    assert rs.quote('a"b') == '"a""b"'
    assert rs.table("nexus_core", "nexus_events") == '"nexus_core"."nexus_events"'
    assert db.quote("rows") == "`rows`"
    assert db.quote("a`b") == "`a``b`"
    assert db.table("nexus_core", "nexus_events") == "`nexus_core`.`nexus_events`"
    for d in (rs, db):
        column = _value_of(d, d.table("s", "t") + ".x")
        assert isinstance(column, exp.Column) and column.name == "x" and column.table == "t"


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(
    "text", ["plain", "it's", "back\\slash", "^www\\.|[/:?#].*$", "\\'", "tab\tnew\nline", "ünïcødé ✓", "''", "\\"]
)
def test_string_literals_read_back_as_written(name: str, text: str) -> None:
    d = get_dialect(name)
    value = _value_of(d, d.string_literal(text))
    assert isinstance(value, exp.Literal) and value.is_string
    assert value.this == text


def test_string_literal_escaping_per_dialect() -> None:
    # Redshift reads a backslash in a literal as an escape (its docs double it in patterns);
    # Spark SQL does too, and joins adjacent literals, so a doubled quote would be lost there.
    assert RedshiftDialect().string_literal("it's a\\b") == "'it''s a\\\\b'"
    assert DatabricksDialect().string_literal("it's a\\b") == "'it\\'s a\\\\b'"
    for d in (RedshiftDialect(), DatabricksDialect()):
        with pytest.raises(ValueError):
            d.string_literal("nul\x00")


def test_typed_literals() -> None:
    rs, db = RedshiftDialect(), DatabricksDialect()
    assert rs.literal(WHEN) == "CAST('2024-01-01 12:30:00.123456' AS TIMESTAMP)"
    assert db.literal(WHEN) == "CAST('2024-01-01 12:30:00.123456' AS TIMESTAMP_NTZ)"
    aware = dt.datetime(2024, 1, 1, 14, 30, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert db.literal(aware) == "CAST('2024-01-01 12:30:00' AS TIMESTAMP_NTZ)"
    for d in (rs, db):
        assert d.literal(None) == "NULL"
        assert d.literal(True) == "TRUE"
        assert d.literal(7) == "7"
        assert d.literal(dt.date(2024, 2, 29)) == "DATE '2024-02-29'"
        for value in (WHEN, dt.date(2024, 2, 29), 1.5, "x"):
            _value_of(d, d.literal(value))


def test_column_types() -> None:
    rs, db = RedshiftDialect(), DatabricksDialect()
    # Redshift's VARCHAR/TEXT without a length is VARCHAR(256): identifier values would be cut.
    assert rs.text_type == "VARCHAR(MAX)"
    assert (rs.timestamp_type, rs.double_type) == ("TIMESTAMP", "DOUBLE PRECISION")
    assert (db.text_type, db.timestamp_type, db.double_type) == ("STRING", "TIMESTAMP_NTZ", "DOUBLE")
    for d in (rs, db):
        cols = ", ".join(
            f"c{i} {t}" for i, t in enumerate([d.text_type, d.timestamp_type, d.double_type, d.bigint_type])
        )
        _parse(d, f"CREATE TABLE IF NOT EXISTS {d.table('s', 't')} ({cols}, b BOOLEAN)")


# -- fragments -------------------------------------------------------------------------------


def test_redshift_fragments() -> None:
    d = RedshiftDialect()
    assert d.hash_hex("x") == "md5(x)"
    assert d.regexp_replace("x", "[^0-9]", "") == "REGEXP_REPLACE(x, '[^0-9]', '', 1, 'p')"
    assert d.regexp_matches("x", "^a\\.") == "(REGEXP_INSTR(x, '^a\\\\.', 1, 1, 0, 'p') > 0)"
    # Redshift's IN takes a one-column subquery only
    assert d.key_in("t", "c", ["id"]) == '(t."id") IN (SELECT "id" FROM c)'
    assert d.key_in("t", "c", ["source", "event_id"]) == (
        'EXISTS (SELECT 1 FROM c AS nexus_k WHERE nexus_k."source" = t."source" AND nexus_k."event_id" = t."event_id")'
    )
    assert d.binary_collate("x") == "x"
    assert d.string_agg_distinct("s") == "LISTAGG(DISTINCT s, ',') WITHIN GROUP (ORDER BY s)"
    assert d.current_timestamp() == "CAST(GETDATE() AS TIMESTAMP)"
    assert d.try_cast_timestamp("x") == "TRY_CAST(x AS TIMESTAMP)"
    assert (
        d.create_temp_table_as("t", "SELECT 1 AS a")
        == 'DROP TABLE IF EXISTS "t";\nCREATE TEMP TABLE "t" AS SELECT 1 AS a'
    )
    assert d.create_table_as('"s"."t"', "SELECT 1 AS a").startswith('DROP TABLE IF EXISTS "s"."t";\nCREATE TABLE')
    latest = d.arg_max_where("v", "ts", "k = 'a'")
    assert "FILTER" not in latest and "array_agg" not in latest.lower()
    assert latest.startswith("SUBSTRING(MAX(") and "TO_CHAR(ts, 'YYYY-MM-DD HH24:MI:SS.US')" in latest


def test_databricks_fragments() -> None:
    d = DatabricksDialect()
    assert d.hash_hex("x") == "md5(x)"
    assert d.regexp_replace("x", "[^0-9]", "") == "regexp_replace(x, '[^0-9]', '')"
    assert d.regexp_matches("x", "^a\\.") == "(x RLIKE '^a\\\\.')"
    assert d.binary_collate("x") == "x"
    assert d.string_agg_distinct("s") == "array_join(array_sort(collect_set(s)), ',')"
    assert d.arg_max("v", "ts") == "max_by(v, ts)"
    assert d.arg_max_where("v", "ts", "k = 'a'") == "max_by(v, struct(ts, v)) FILTER (WHERE k = 'a' AND v IS NOT NULL)"
    # SQL warehouses' temporary tables (Public Preview) refuse CREATE OR REPLACE
    assert d.create_temp_table_as("t", "SELECT 1 AS a") == (
        "DROP TEMPORARY TABLE IF EXISTS `t`;\nCREATE TEMPORARY TABLE `t` AS SELECT 1 AS a"
    )
    assert d.create_table_as("`s`.`t`", "SELECT 1 AS a") == "CREATE OR REPLACE TABLE `s`.`t` AS SELECT 1 AS a"
    assert d.current_timestamp() == "CAST(current_timestamp() AS TIMESTAMP_NTZ)"


@pytest.mark.parametrize("name", NAMES)
def test_fragments_parse_in_the_dialect(name: str) -> None:
    d = get_dialect(name)
    exprs = [
        d.hash_hex(d.key_text(["a", "b"])),
        d.concat(["a", "'|'", "b"]),
        d.cast_text("a"),
        d.cast_timestamp("a"),
        d.try_cast_timestamp("a"),
        d.regexp_replace("a", "^www\\.|[/:?#].*$", ""),
        d.regexp_matches("a", r"(?i)^\s*(unknown|n/?a)\s*$"),
        d.current_timestamp(),
        d.arg_max("a", "ts"),
        d.arg_max_where("a", "ts", "k = 'x'"),
        d.bool_and("flag"),
        d.string_agg_distinct("a"),
        d.binary_collate("a"),
        d.type_name("a"),
    ]
    _parse(d, "SELECT " + ",\n".join(f"{e} AS c{i}" for i, e in enumerate(exprs)) + " FROM t GROUP BY k")
    _parse(d, d.create_schema("nexus_core"))
    _parse(d, d.create_temp_table_as("stage", "SELECT 1 AS a"))
    _parse(d, d.create_table_as(d.table("s", "t"), "SELECT 1 AS a"))


@pytest.mark.parametrize("name", NAMES)
def test_stage_files_says_to_land_a_table(name: str) -> None:
    d = get_dialect(name)
    with pytest.raises(NotImplementedError) as info:
        d.stage_files(Warehouse(d, _RecordingConnection(lambda sql: [])), "stage", ["a.csv"], "csv", "_file")
    message = str(info.value)
    assert f"the {name} dialect cannot load local files" in message
    assert "`table:`" in message


def test_databricks_publishes_table_by_table() -> None:
    d = DatabricksDialect()
    conn = _RecordingConnection(lambda sql: [])
    d.publish_tables(Warehouse(d, conn), "nexus", [("nexus__next_a", "a"), ("nexus__next_b", "b")])
    assert conn.executed == [
        "CREATE OR REPLACE TABLE `nexus`.`a` AS SELECT * FROM `nexus`.`nexus__next_a`",
        "CREATE OR REPLACE TABLE `nexus`.`b` AS SELECT * FROM `nexus`.`nexus__next_b`",
    ]


def test_transactions_only_where_the_warehouse_has_them() -> None:
    for d, expected in (
        (RedshiftDialect(), ["BEGIN TRANSACTION", "SELECT 1", "COMMIT"]),
        (DatabricksDialect(), ["SELECT 1"]),
    ):
        conn = _RecordingConnection(lambda sql: [])
        wh = Warehouse(d, conn)
        with wh.transaction():
            wh.execute("SELECT 1")
        assert conn.executed == expected


@pytest.mark.parametrize(
    ("name", "statement", "autocommit"),
    [
        # Redshift: explicit BEGIN ... COMMIT only, like PostgreSQL
        ("redshift", "SET timezone TO 'UTC'", True),
        # Databricks: left to the driver (there are no transactions to control)
        ("databricks", "SET TIME ZONE 'UTC'", None),
    ],
)
def test_connect_sets_a_utc_session(name: str, statement: str, autocommit: bool | None) -> None:
    conn = _RecordingConnection(lambda sql: [])

    class Hook:
        def get_conn(self) -> _RecordingConnection:
            return conn

    assert get_dialect(name).connect(Hook()) is conn
    assert conn.executed == [statement]
    assert conn.autocommit is autocommit


# -- hooks, imported lazily --------------------------------------------------------------------

HOOKS = [
    ("redshift", "airflow.providers.amazon", "redshift_conn_id"),
    ("databricks", "airflow.providers.databricks", "databricks_conn_id"),
]


@pytest.mark.parametrize(("name", "package", "conn_attr"), HOOKS)
def test_make_hook_returns_the_providers_hook(name: str, package: str, conn_attr: str) -> None:
    if importlib.util.find_spec(package) is None:
        pytest.skip(f"{package} is not installed (pip install airflow-provider-nexus[{name}])")
    d = get_dialect(name)
    hook = d.make_hook("nexus_test_conn")
    module_name, _, class_name = d.hook_class_path().rpartition(".")
    cls = getattr(importlib.import_module(module_name), class_name)
    assert type(hook) is cls
    assert getattr(hook, conn_attr) == "nexus_test_conn"


def test_hook_class_paths() -> None:
    assert RedshiftDialect().hook_class_path() == "airflow.providers.amazon.aws.hooks.redshift_sql.RedshiftSQLHook"
    assert (
        DatabricksDialect().hook_class_path() == "airflow.providers.databricks.hooks.databricks_sql.DatabricksSqlHook"
    )


def test_importing_the_dialects_imports_no_warehouse_client() -> None:
    code = """
import json, sys
from airflow_provider_nexus.dialects import get_dialect
import airflow_provider_nexus.dialects.redshift, airflow_provider_nexus.dialects.databricks
for name in ("redshift", "databricks"):
    d = get_dialect(name)
    d.hook_class_path()
print(json.dumps(sorted(sys.modules)))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    # (`import airflow` itself reads every installed provider's get_provider_info metadata module;
    # hooks and drivers are what must stay unloaded.)
    clients = (
        "redshift_connector",
        "databricks.sql",
        "databricks.sdk",
        "boto3",
        "botocore",
        "psycopg",
        "psycopg2",
        "snowflake.connector",
        "airflow.providers.amazon.aws",
        "airflow.providers.databricks.hooks",
        "airflow.providers.postgres.hooks",
        "airflow.providers.common.sql.hooks",
    )
    found = [m for m in loaded if any(m == c or m.startswith(c + ".") for c in clients)]
    assert not found, f"importing the dialects imported warehouse clients: {found}"


# -- identity resolution SQL, captured without a database -------------------------------------


class _RecordingCursor:
    def __init__(self, conn: _RecordingConnection) -> None:
        self.conn = conn
        self.rows: list[tuple[Any, ...]] = []
        self.description: list[tuple[str]] = []

    def execute(self, sql: str, params: Any = None) -> None:
        self.conn.executed.append(sql)
        self.rows = list(self.conn.respond(sql))

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self.rows

    def close(self) -> None:
        pass


class _RecordingConnection:
    """A DB-API stand-in: records every statement and answers reads through `respond`."""

    def __init__(self, respond: Callable[[str], list[tuple[Any, ...]]]) -> None:
        self.respond = respond
        self.executed: list[str] = []
        self.autocommit: bool | None = None

    def cursor(self) -> _RecordingCursor:
        return _RecordingCursor(self)

    def close(self) -> None:
        pass


def _state_layouts() -> dict[str, list[str]]:
    """Column names of each incremental-state table of the entity type "person"."""
    tables = resolve_module.state_table_names("person")
    layouts = getattr(resolve_module, "STATE_LAYOUTS", None)
    if layouts is not None:
        return {tables[kind]: list(columns) for kind, columns in layouts.items()}
    return {tables[kind]: list(getattr(resolve_module, f"{kind.upper()}_COLUMNS")) for kind in tables}


def _resolution_responder(d: Dialect, state_row: tuple[Any, ...] | None) -> Callable[[str], list[tuple[Any, ...]]]:
    """Plausible answers to the resolver's reads, so both paths and every branch issue their SQL."""
    layouts = _state_layouts()
    # connected components: a changing round, a round that sets settled nodes aside, a fixpoint
    rounds = iter([(5, 0, 10), (3, 4, 10), (0, 0, 0)] * 4)

    def respond(sql: str) -> list[tuple[Any, ...]]:
        if not sql.lstrip().upper().startswith("SELECT"):
            return []
        if "information_schema.columns" in sql:
            match = re.search(r"table_name = '([a-z0-9_]+)'", sql)
            table = match.group(1) if match else ""
            return [(c,) for c in layouts.get(table, ["x"])]
        if "sum(changed), sum(settled)" in sql:
            return [next(rounds)]
        if "max(_loaded_at)" in sql:
            return [(3, WHEN)]
        if sql.startswith("SELECT version, fingerprint"):
            return [state_row] if state_row else []
        # everything else is counts: one row in everything, so every write branch runs
        (select,) = _parse(d, sql)
        return [tuple(1 for _ in select.expressions)]

    return respond


NOISE = NoiseRules.build(
    blocked_values={None: ["unknown", "it's"], "email": ["test@example.com"]},
    blocked_patterns={None: [r"(?i)^\s*(unknown|n/?a|null)\s*$"], "phone": [r"^\+?0+$"]},
    hub_limits={"email": 5},
    default_hub_limit=50,
)


def _resolve(d: Dialect, state_row: tuple[Any, ...] | None, since: dt.datetime | None) -> tuple[Any, list[str]]:
    conn = _RecordingConnection(_resolution_responder(d, state_row))
    summary = resolve_entity_type(
        Warehouse(d, conn),
        entity_type="person",
        id_prefix="per",
        core_schema="nexus_core",
        resolution_schema="nexus_resolution",
        run_id="run'1",
        resolved_at=WHEN,
        noise=NOISE,
        since=since,
    )
    return summary, conn.executed


def _resolution_sql(d: Dialect) -> dict[str, list[str]]:
    """Every statement of a full run and of an incremental run after it."""
    full, full_sql = _resolve(d, None, None)
    assert full.mode == "full"
    fingerprints = set(re.findall(r"CAST\('([0-9a-f]{32})' AS", "\n".join(full_sql)))
    assert len(fingerprints) == 1, "the state row's fingerprint was not found in the full run's SQL"
    # state: version, fingerprint, loaded_high, loaded_rows, map_rows, entities, max_node, max_gid
    state = (resolve_module.STATE_VERSION, fingerprints.pop(), None, 1, 1, 1, 10, 5)
    incremental, incremental_sql = _resolve(d, state, WHEN)
    assert incremental.mode == "incremental", incremental.fallback_reason
    return {"full": full_sql, "incremental": incremental_sql}


@pytest.mark.parametrize("name", NAMES)
def test_resolution_statements_parse_in_the_dialect(name: str) -> None:
    d = get_dialect(name)
    for path, statements in _resolution_sql(d).items():
        assert len(statements) > 40, path
        for sql in statements:
            _parse(d, sql)
        text = "\n".join(statements)
        assert 'COLLATE "C"' not in text
        assert ", 'g')" not in text
        assert "'run''1'" in text if name == "redshift" else "'run\\'1'" in text


def test_redshift_resolution_avoids_postgres_only_syntax() -> None:
    """IS DISTINCT FROM and DISTINCT ON parse as Redshift in sqlglot, but Redshift rejects them;
    nor does it know `enable_hashagg`."""
    postgres_only = ("DISTINCT FROM", "DISTINCT ON", "enable_hashagg")
    for statements in _resolution_sql(RedshiftDialect()).values():
        assert not [sql for sql in statements if any(word in sql for word in postgres_only)]
    postgres = "\n".join(_resolution_sql(PostgresDialect())["full"])
    assert all(word in postgres for word in ("DISTINCT ON", "enable_hashagg"))


def test_databricks_resolution_drops_temp_tables_as_temporary() -> None:
    for statements in _resolution_sql(DatabricksDialect()).values():
        temps = {m for sql in statements for m in re.findall(r"TEMP(?:ORARY)? TABLE (`[^`]+`)", sql)}
        plain_drops = [s for s in statements if re.match(r"DROP TABLE (IF EXISTS )?(`[^`]+`)$", s)]
        assert not [s for s in plain_drops if s.split()[-1] in temps]
