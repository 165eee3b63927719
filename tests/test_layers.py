"""Raw, source and core layers on a real DuckDB: merges, windows, and bad input."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from airflow_provider_nexus.config import PipelineConfig, SchemasConfig, SourceConfig, load_config
from airflow_provider_nexus.errors import NexusConfigError, NexusDataError, NexusTemplateError
from airflow_provider_nexus.layers.common import RunContext
from airflow_provider_nexus.layers.core import build_core
from airflow_provider_nexus.layers.raw import load_source
from airflow_provider_nexus.layers.source import build_source
from airflow_provider_nexus.state import StateStore
from airflow_provider_nexus.templates import TemplateEngine
from airflow_provider_nexus.warehouse import Warehouse

T0 = dt.datetime(2024, 1, 1, 12, 0, 0)


Backend = tuple[Warehouse, SchemasConfig]


def _setup(backend: Backend, project: Path) -> tuple[Warehouse, PipelineConfig]:
    """The backend's session and the mini config writing into the backend's schemas."""
    wh, schemas = backend
    config = load_config(project / "mini.yml")
    return wh, config.model_copy(update={"schemas": schemas})


def _run(n: int) -> RunContext:
    return RunContext(run_id=f"run{n}", now=T0 + dt.timedelta(hours=n))


def _pipeline(wh: Warehouse, config: PipelineConfig, run: RunContext) -> dict[str, object]:
    engine = TemplateEngine(wh.dialect, config.resolved_template_dirs())
    out: dict[str, object] = {}
    for source in config.sources:
        out[f"raw.{source.name}"] = load_source(
            wh, source, config.schemas, config.resolved_data_dir(), config.incremental.lookback, run
        )
        out[f"source.{source.name}"] = build_source(wh, engine, source, config.entity_types, config.schemas, run)
    out["core"] = build_core(wh, engine, config.sources, config.entity_types, config.schemas, run)
    return out


def _without_loaded_at(wh: Warehouse, table: str) -> str:
    columns = [c for c in wh.relation_columns(table) if c != "_loaded_at"]
    return f"SELECT {', '.join(columns)} FROM {table}"


def _rows(wh: Warehouse, sql: str) -> list[tuple[object, ...]]:
    return sorted(wh.fetchall(sql), key=repr)


def test_files_load_once_and_redelivery_replaces_by_key(backend: Backend, mini_project: Path) -> None:
    duck, config = _setup(backend, mini_project)
    first = _pipeline(duck, config, _run(1))
    assert first["raw.shop"]["rows"] == 5  # type: ignore[index]
    assert duck.count(f'"{config.schemas.raw}"."shop__orders"') == 5
    # Same files again: nothing read, nothing written, watermarks unchanged.
    before = StateStore(duck, config.schemas.core).all()
    second = _pipeline(duck, config, _run(2))
    assert second["raw.shop"]["rows"] == 0  # type: ignore[index]
    assert StateStore(duck, config.schemas.core).all() == before
    # A new file re-delivers o4 with a new amount, and brings o6.
    (mini_project / "data" / "orders_0003.csv").write_text(
        "order_id,customer_id,email,phone,customer_name,company_domain,amount,ordered_at\n"
        "o4,c4,bob@example.org,,Bobby,globex.com,99,2024-01-02 09:00:00\n"
        "o6,c6,dee@example.org,,Dee,,1,2024-01-03 09:00:00\n"
    )
    third = _pipeline(duck, config, _run(3))
    assert third["raw.shop"]["rows"] == 2  # type: ignore[index]
    assert duck.count(f'"{config.schemas.raw}"."shop__orders"') == 6
    assert duck.count(f'"{config.schemas.core}"."nexus_events"') == 6
    assert _rows(
        duck, f"SELECT value FROM {config.schemas.core}.nexus_events WHERE event_description = 'Order o4'"
    ) == [(99.0,)]


#: One identifier per order (o1 its email, o2 its phone), so a rejected one is all the event has.
_ONE_IDENTIFIER_PER_ORDER = """
SELECT {{ surrogate_key(['order_id']) }} AS id,
       {{ surrogate_key([lit(source), "'order'", 'order_id']) }} AS event_id,
       'shop_customer:' || customer_id AS edge_id, 'person' AS entity_type,
       CASE WHEN order_id = 'o1' THEN 'email' ELSE 'phone' END AS identifier_type,
       CASE WHEN order_id = 'o1' THEN email ELSE phone END AS identifier_value, 'customer' AS role,
       {{ lit(source) }} AS source, {{ to_timestamp('ordered_at') }} AS occurred_at, _ingested_at
FROM {{ batch('orders') }} AS o WHERE order_id IN ('o1', 'o2')
"""


def test_resynced_event_whose_new_identifier_is_rejected_loses_the_old_one(
    backend: Backend, mini_project: Path
) -> None:
    """o1's email removed (blank: rejected in source) and o2's phone now 'n/a' (empty once
    normalised: rejected in core): neither event keeps its earlier value."""
    duck, config = _setup(backend, mini_project)
    (mini_project / "sql" / "sources" / "shop" / "identifiers.sql").write_text(_ONE_IDENTIFIER_PER_ORDER)
    _pipeline(duck, config, _run(1))
    s, c = config.schemas.source, config.schemas.core
    values = "SELECT identifier_type, identifier_value FROM {}"
    assert _rows(duck, values.format(f"{c}.nexus_identifiers")) == [
        ("email", "ann@example.org"),
        ("phone", "14155550199"),
    ]
    (mini_project / "data" / "orders_0003.csv").write_text(
        "order_id,customer_id,email,phone,customer_name,company_domain,amount,ordered_at\n"
        "o1,c1,,,Ann,acme.com,10.5,2024-01-01 10:00:00\n"
        "o2,c2,bob@example.org,n/a,Bob,www.Acme.com,20,2024-01-01 11:00:00\n"
    )
    _pipeline(duck, config, _run(2))
    assert _rows(duck, values.format(f"{s}.shop__identifiers")) == [("phone", "n/a")]
    assert _rows(duck, values.format(f"{c}.nexus_identifiers")) == []
    reasons = _rows(duck, f"SELECT model, reason FROM {s}.nexus_rejected_rows WHERE run_id = 'run2'")
    assert reasons == [("identifiers", "empty after normalisation"), ("identifiers", "null or empty identifier_value")]


def test_identifiers_made_of_blank_characters_are_rejected(backend: Backend, mini_project: Path) -> None:
    """Exports fill "empty" cells with no-break spaces, tabs or zero-width spaces: such a value
    is as empty as '' and must not link every person who has it."""
    duck, config = _setup(backend, mini_project)
    (mini_project / "sql" / "sources" / "shop" / "identifiers.sql").write_text(_ONE_IDENTIFIER_PER_ORDER)
    for name in (mini_project / "data").glob("orders_*.csv"):
        name.unlink()
    (mini_project / "data" / "orders_0001.csv").write_text(
        "order_id,customer_id,email,phone,customer_name,company_domain,amount,ordered_at\n"
        "o1,c1,\u00a0\u200b,,Ann,acme.com,10.5,2024-01-01 10:00:00\n"
        'o2,c2,,"\t\ufeff ",Bob,acme.com,20,2024-01-01 11:00:00\n',
        encoding="utf-8",
    )
    _pipeline(duck, config, _run(1))
    s, c = config.schemas.source, config.schemas.core
    assert _rows(duck, f"SELECT identifier_value FROM {c}.nexus_identifiers") == []
    reasons = _rows(duck, f"SELECT model, reason FROM {s}.nexus_rejected_rows ORDER BY 1, 2")
    assert reasons == [("identifiers", "null or empty identifier_value")] * 2


def test_blank_characters_the_database_cannot_hold_are_left_out_of_the_check(backend: Backend) -> None:
    """A LATIN1 PostgreSQL database refuses a literal with an en space; the check then keeps to
    the characters it can hold. The session reads its encoding when it connects."""
    from airflow_provider_nexus.dialects import get_dialect
    from airflow_provider_nexus.layers.source import blank

    wh, _ = backend
    assert wh.dialect.text_encoding == "utf-8"
    latin1 = get_dialect("postgres")
    latin1.text_encoding = "latin-1"
    condition = blank(latin1, "v")
    assert "CHR(160)" in condition and "CHR(8194)" not in condition and "CHR(65279)" not in condition


@pytest.mark.parametrize(
    ("macro", "padded", "expected"),
    [
        ("normalize_email", "\u00a0Ann@Example.ORG\u200b", "ann@example.org"),
        ("normalize_email", "\ufeff ann@example.org\t", "ann@example.org"),
        ("normalize_trim", "\u3000c-1\u2003\r\n", "c-1"),
        ("normalize_domain", "\u202fhttps://www.Acme.com/\u2060", "acme.com"),
        ("normalize_lower", "\u2000\u200b\u00a0", None),
        ("normalize_trim", "a\u00a0b", "a\u00a0b"),  # inside a value, a blank character stays
    ],
)
def test_normalisers_strip_the_same_blank_characters_on_every_engine(
    backend: Backend, macro: str, padded: str, expected: str | None
) -> None:
    """PostgreSQL's TRIM strips the space only and DuckDB's more; an identifier exported with a
    no-break space or a byte-order mark must still match its clean twin on both."""
    from airflow_provider_nexus.templates import TemplateEngine

    wh, _ = backend
    raw = wh.dialect.string_literal(padded)
    sql = TemplateEngine(wh.dialect).env.from_string("SELECT {{ " + macro + "(raw) }}").render(raw=raw)
    assert wh.fetchall(sql) == [(expected,)]


@pytest.mark.parametrize("column", ["_ingested_at", "_source_row"])
def test_an_input_column_nexus_reserves_is_an_error_not_dropped(
    backend: Backend, mini_project: Path, column: str
) -> None:
    duck, config = _setup(backend, mini_project)
    header = f"order_id,customer_id,email,phone,customer_name,company_domain,amount,ordered_at,{column}\n"
    (mini_project / "data" / "orders_0003.csv").write_text(header + "o9,c9,z@x.org,,Zed,,1,2024-01-03 09:00:00,x\n")
    # (PostgreSQL's staging refuses a file's `_source_row` before the merge, in its own words)
    with pytest.raises(NexusDataError, match=rf"{column}'?,? which Nexus reserves"):
        _pipeline(duck, config, _run(1))
    assert not duck.table_exists(config.schemas.raw, "shop__orders")  # nothing of the batch was written


def test_a_key_repeated_inside_one_file_keeps_its_last_row(backend: Backend, mini_project: Path) -> None:
    """An export that appends each change of a row (a change log) lists a key several times."""
    duck, config = _setup(backend, mini_project)
    header = "order_id,customer_id,email,phone,customer_name,company_domain,amount,ordered_at\n"
    versions = "".join(f"o9,c9,z@example.org,,Zed,,{n},2024-01-03 09:00:00\n" for n in range(1, 2001))
    (mini_project / "data" / "orders_0003.csv").write_text(header + versions)
    _pipeline(duck, config, _run(1))
    amounts = _rows(duck, f"SELECT amount FROM {config.schemas.raw}.shop__orders WHERE order_id = 'o9'")
    assert [str(a[0]) for a in amounts] == ["2000"]


def test_core_normalises_and_keeps_raw_value(backend: Backend, mini_project: Path) -> None:
    duck, config = _setup(backend, mini_project)
    _pipeline(duck, config, _run(1))
    rows = _rows(
        duck,
        f"SELECT identifier_value, identifier_value_raw FROM {config.schemas.core}.nexus_identifiers WHERE identifier_type = 'phone'",
    )
    assert rows == [
        ("14155550100", "+1 (415) 555-0100"),
        ("14155550100", "4155550100"),
        ("14155550199", "415.555.0199"),
    ]
    # The empty email of o3 and the missing phones never reach core; they are in the rejected table.
    rejected = _rows(duck, f"SELECT model, reason FROM {config.schemas.source}.nexus_rejected_rows")
    assert rejected and all(r == ("identifiers", "null or empty identifier_value") for r in rejected)


def test_rerunning_the_same_run_changes_nothing(backend: Backend, mini_project: Path) -> None:
    duck, config = _setup(backend, mini_project)
    _pipeline(duck, config, _run(1))
    snapshot = {
        t: _rows(duck, _without_loaded_at(duck, f"{config.schemas.core}.{t}"))
        for t in ("nexus_events", "nexus_identifiers", "nexus_traits", "nexus_memberships")
    }
    full = RunContext(run_id="run1", now=T0 + dt.timedelta(hours=1), full_refresh=True)
    _pipeline(duck, config, full)
    again = {t: _rows(duck, _without_loaded_at(duck, f"{config.schemas.core}.{t}")) for t in snapshot}
    assert again == snapshot


def _landed_source(config: PipelineConfig) -> SourceConfig:
    """The mini config's first source, reading its customers from the landed `landing.customers`."""
    # validated, not model_copy(update=...): that would keep the raw dict unvalidated
    return type(config.sources[0]).model_validate(
        {**config.sources[0].model_dump(), "raw": {"customers": {"table": "landing.customers", "key": "customer_id"}}}
    )


def test_landed_table_lookback_picks_up_late_rows(backend: Backend, mini_project: Path) -> None:
    duck, config = _setup(backend, mini_project)
    duck.execute("CREATE SCHEMA landing")
    duck.execute("CREATE TABLE landing.customers (customer_id VARCHAR, email VARCHAR, synced_at TIMESTAMP)")
    duck.execute(
        "INSERT INTO landing.customers VALUES ('a', 'a@x.org', '2024-01-01 10:00:00'), ('b', 'b@x.org', '2024-01-01 10:30:00')"
    )
    source = _landed_source(config)
    window = load_source(duck, source, config.schemas, Path("."), dt.timedelta(minutes=10), _run(1))
    assert window["rows"] == 2
    # A row committed late with a timestamp 5 minutes before the watermark, and one sharing it.
    duck.execute(
        "INSERT INTO landing.customers VALUES ('c', 'c@x.org', '2024-01-01 10:25:00'), ('d', 'd@x.org', '2024-01-01 10:30:00')"
    )
    window = load_source(duck, source, config.schemas, Path("."), dt.timedelta(minutes=10), _run(2))
    assert window["rows"] == 2  # a and b were re-read but are unchanged, so not rewritten
    assert duck.count(f'"{config.schemas.raw}"."shop__customers"') == 4
    # Later than the lookback allows: a new key with a timestamp an hour old is found, loaded and reported.
    duck.execute("INSERT INTO landing.customers VALUES ('e', 'e@x.org', '2024-01-01 09:30:00')")
    window = load_source(duck, source, config.schemas, Path("."), dt.timedelta(minutes=10), _run(3))
    assert window["rows"] == 1 and window["tables"]["customers"]["late"] == 1
    assert duck.count(f'"{config.schemas.raw}"."shop__customers"') == 5


def test_landed_synced_at_zoned_missing_or_ahead_loses_no_row(backend: Backend, mini_project: Path) -> None:
    """A zoned synced-at column (what Fivetran's _fivetran_synced usually is), rows without one,
    and one far ahead of the run's clock: every later row is still loaded."""
    duck, config = _setup(backend, mini_project)
    source = _landed_source(config)
    raw = f'"{config.schemas.raw}"."shop__customers"'
    duck.execute("CREATE SCHEMA landing")
    duck.execute("CREATE TABLE landing.customers (customer_id VARCHAR, email VARCHAR, synced_at TIMESTAMPTZ)")
    duck.execute(
        "INSERT INTO landing.customers VALUES ('a', 'a@x.org', '2024-01-01 12:00:00+02'), ('n1', 'n1@x.org', NULL)"
    )
    lookback = dt.timedelta(minutes=10)
    assert load_source(duck, source, config.schemas, Path("."), lookback, _run(1))["rows"] == 2
    # kept as naive UTC: 12:00+02 is 10:00
    assert StateStore(duck, config.schemas.core).get("shop", "raw:customers") == dt.datetime(2024, 1, 1, 10)
    duck.execute(
        "INSERT INTO landing.customers VALUES ('b', 'b@x.org', '2024-01-01 10:30:00+00'), ('n2', 'n2@x.org', NULL), "
        "('z', 'z@x.org', '2099-01-01 00:00:00+00')"
    )
    window = load_source(duck, source, config.schemas, Path("."), lookback, _run(2))
    assert window["rows"] == 3  # n1 is re-read but unchanged
    # the value from 2099 does not become the watermark: the run's time does
    assert StateStore(duck, config.schemas.core).get("shop", "raw:customers") == _run(2).now
    duck.execute("INSERT INTO landing.customers VALUES ('c', 'c@x.org', '2024-01-01 14:05:00+00')")
    assert load_source(duck, source, config.schemas, Path("."), lookback, _run(3))["rows"] == 1
    assert [r[0] for r in _rows(duck, f"SELECT customer_id FROM {raw}")] == ["a", "b", "c", "n1", "n2", "z"]


def test_a_landed_table_without_schema_is_found_where_the_session_looks(backend: Backend, mini_project: Path) -> None:
    duck, config = _setup(backend, mini_project)
    source = type(config.sources[0]).model_validate(
        {
            **config.sources[0].model_dump(),
            "raw": {"customers": {"table": "nexus_bare_customers", "key": "customer_id"}},
        }
    )
    duck.execute("CREATE TABLE nexus_bare_customers (customer_id VARCHAR, email VARCHAR, synced_at TIMESTAMP)")
    try:
        duck.execute("INSERT INTO nexus_bare_customers VALUES ('a', 'a@x.org', '2024-01-01 10:00:00')")
        assert load_source(duck, source, config.schemas, Path("."), dt.timedelta(0), _run(1))["rows"] == 1
    finally:  # PostgreSQL's public schema is shared by every test run
        duck.execute("DROP TABLE nexus_bare_customers")


def test_landed_synced_at_of_text_is_a_clear_error(backend: Backend, mini_project: Path) -> None:
    duck, config = _setup(backend, mini_project)
    source = _landed_source(config)
    duck.execute("CREATE SCHEMA landing")
    duck.execute("CREATE TABLE landing.customers (customer_id VARCHAR, email VARCHAR, synced_at VARCHAR)")
    duck.execute("INSERT INTO landing.customers VALUES ('a', 'a@x.org', '2024-01-01 10:00:00')")
    with pytest.raises(NexusDataError, match=r"landing\.customers\.synced_at.*str values.*timestamp or date"):
        load_source(duck, source, config.schemas, Path("."), dt.timedelta(minutes=10), _run(1))
    assert not duck.table_exists(config.schemas.raw, "shop__customers")
    assert StateStore(duck, config.schemas.core).get("shop", "raw:customers") is None


def test_missing_key_column_is_a_clear_error_and_loads_nothing(backend: Backend, mini_project: Path) -> None:
    (mini_project / "data" / "orders_0001.csv").write_text("id,email\n1,a@b.c\n")
    (mini_project / "data" / "orders_0002.csv").unlink()
    duck, config = _setup(backend, mini_project)
    with pytest.raises(NexusDataError, match=r"source 'shop', raw table 'orders': key column\(s\) order_id missing"):
        load_source(duck, config.sources[0], config.schemas, config.resolved_data_dir(), dt.timedelta(0), _run(1))
    assert not duck.table_exists(config.schemas.raw, "shop__orders")
    assert StateStore(duck, config.schemas.core).get("shop", "raw") is None


def test_null_key_is_rejected_with_the_table_named(backend: Backend, mini_project: Path) -> None:
    (mini_project / "data" / "orders_0002.csv").write_text(
        "order_id,customer_id,email,phone,customer_name,company_domain,amount,ordered_at\n,c9,x@y.z,,X,,1,2024-01-01 00:00:00\n"
    )
    duck, config = _setup(backend, mini_project)
    with pytest.raises(NexusDataError, match=r"null key \(order_id\) in .*orders_0002.csv"):
        load_source(duck, config.sources[0], config.schemas, config.resolved_data_dir(), dt.timedelta(0), _run(1))
    assert StateStore(duck, config.schemas.core).get("shop", "raw") is None


def _break_template(project: Path, model: str, find: str, replace: str) -> None:
    path = project / "sql" / "sources" / "shop" / f"{model}.sql"
    path.write_text(path.read_text().replace(find, replace))


def test_timestamps_with_an_offset_are_kept_in_utc(backend: Backend, mini_project: Path) -> None:
    duck, config = _setup(backend, mini_project)
    for old in (mini_project / "data").glob("*.csv"):
        old.unlink()
    (mini_project / "data" / "orders_0001.csv").write_text(
        "order_id,customer_id,email,phone,customer_name,company_domain,amount,ordered_at\n"
        "o1,c1,ann@example.org,,Ann,,1,2024-01-05T10:00:00+02:00\n"
        "o2,c2,bob@example.org,,Bob,,1,2024-01-05T09:00:00Z\n"
        "o3,c3,cid@example.org,,Cid,,1,2024-01-05 09:30:00\n"
    )
    _pipeline(duck, config, _run(1))
    occurred = _rows(duck, f"SELECT event_description, occurred_at FROM {config.schemas.core}.nexus_events")
    assert occurred == [
        ("Order o1", dt.datetime(2024, 1, 5, 8, 0)),
        ("Order o2", dt.datetime(2024, 1, 5, 9, 0)),
        ("Order o3", dt.datetime(2024, 1, 5, 9, 30)),
    ]


def test_full_refresh_after_an_id_change_keeps_no_row_of_the_old_ids(backend: Backend, mini_project: Path) -> None:
    duck, config = _setup(backend, mini_project)
    _pipeline(duck, config, _run(1))
    _break_template(
        mini_project,
        "events",
        """[lit(source), "'order'", 'o.order_id']) }} AS id""",
        """[lit(source), "'order_placed'", 'o.order_id']) }} AS id""",
    )
    refresh = RunContext(run_id="refresh", now=_run(2).now, full_refresh=True)
    _pipeline(duck, config, refresh)
    for table in (f"{config.schemas.source}.shop__events", f"{config.schemas.core}.nexus_events"):
        described = _rows(duck, f"SELECT event_description, count(*) FROM {table} GROUP BY 1")
        assert described == [(f"Order o{i}", 1) for i in range(1, 6)], table


def test_duplicate_ids_in_a_batch_fail_and_write_nothing(backend: Backend, mini_project: Path) -> None:
    _break_template(mini_project, "events", "\"'order'\", 'o.order_id'", "\"'order'\"")
    duck, config = _setup(backend, mini_project)
    run = _run(1)
    load_source(duck, config.sources[0], config.schemas, config.resolved_data_dir(), dt.timedelta(0), run)
    engine = TemplateEngine(duck.dialect, config.resolved_template_dirs())
    with pytest.raises(NexusDataError, match=r"source 'shop', model 'events'.*duplicated id"):
        build_source(duck, engine, config.sources[0], config.entity_types, config.schemas, run)
    assert StateStore(duck, config.schemas.core).get("shop", "source") is None
    assert (
        not duck.table_exists(config.schemas.source, "shop__identifiers")
        or duck.count(f"{config.schemas.source}.shop__identifiers") == 0
    )


def test_undeclared_entity_type_is_an_error(backend: Backend, mini_project: Path) -> None:
    text = (mini_project / "mini.yml").read_text().replace("    groups: true\n    memberships: true\n", "")
    (mini_project / "mini.yml").write_text(text)
    duck, config = _setup(backend, mini_project)
    run = _run(1)
    load_source(duck, config.sources[0], config.schemas, config.resolved_data_dir(), dt.timedelta(0), run)
    engine = TemplateEngine(duck.dialect, config.resolved_template_dirs())
    with pytest.raises(NexusDataError, match=r"emits entity type\(s\) group that the source does not declare"):
        build_source(duck, engine, config.sources[0], config.entity_types, config.schemas, run)


def test_a_null_entity_type_is_rejected_not_a_contract_error(backend: Backend, mini_project: Path) -> None:
    _break_template(
        mini_project,
        "identifiers",
        "       entity_type, identifier_type",
        "       CASE WHEN order_id = 'o1' THEN NULL ELSE entity_type END AS entity_type, identifier_type",
    )
    duck, config = _setup(backend, mini_project)
    _pipeline(duck, config, _run(1))
    reasons = _rows(duck, f"SELECT reason, count(*) FROM {config.schemas.source}.nexus_rejected_rows GROUP BY 1")
    assert ("null entity_type", 4) in reasons  # o1's four identifiers; the batch itself loads


def test_an_overlong_identifier_is_rejected_not_fatal(backend: Backend, mini_project: Path) -> None:
    """PostgreSQL's B-tree entries hold about 2,700 bytes: a 3,000-character value would fail
    every later run at an index; it is set aside with its reason instead."""
    import random
    import string

    duck, config = _setup(backend, mini_project)
    junk = "".join(random.Random(5).choices(string.ascii_letters + string.digits, k=3000))
    (mini_project / "data" / "orders_0003.csv").write_text(
        "order_id,customer_id,email,phone,customer_name,company_domain,amount,ordered_at\n"
        f"o9,{junk},zed@example.org,,Zed,,1,2024-01-03 09:00:00\n"
    )
    _pipeline(duck, config, _run(1))
    reasons = _rows(duck, f"SELECT reason FROM {config.schemas.source}.nexus_rejected_rows WHERE run_id = 'run1'")
    assert ("id or event_id or edge_id or identifier_value longer than 512 characters",) in reasons
    # the order itself loads; its customer's identifiers (whose edge_id embeds the junk) do not
    events = f"SELECT count(*) FROM {config.schemas.core}.nexus_events WHERE event_description = 'Order o9'"
    assert duck.scalar(events) == 1
    assert duck.scalar(f"SELECT max(LENGTH(edge_id)) FROM {config.schemas.core}.nexus_identifiers") <= 512


def test_empty_files_are_recorded_and_the_rest_loads(backend: Backend, mini_project: Path) -> None:
    duck, config = _setup(backend, mini_project)
    (mini_project / "data" / "orders_0000.csv").write_text("")
    assert _pipeline(duck, config, _run(1))["raw.shop"]["rows"] == 5  # type: ignore[index]
    (mini_project / "data" / "orders_0003.csv").write_text("")
    second = _pipeline(duck, config, _run(2))
    assert second["raw.shop"]["rows"] == 0  # type: ignore[index]
    assert "orders_0003.csv" in str(StateStore(duck, config.schemas.core).loaded_files_of("shop", "orders"))


def test_malformed_timestamp_names_the_model(backend: Backend, mini_project: Path) -> None:
    with (mini_project / "data" / "orders_0002.csv").open("a") as fh:
        fh.write("o9,c9,z@z.z,,Z,,1,not-a-date\n")
    duck, config = _setup(backend, mini_project)
    run = _run(1)
    load_source(duck, config.sources[0], config.schemas, config.resolved_data_dir(), dt.timedelta(0), run)
    engine = TemplateEngine(duck.dialect, config.resolved_template_dirs())
    with pytest.raises(NexusDataError, match=r"source 'shop', model 'events'.*not-a-date"):
        build_source(duck, engine, config.sources[0], config.entity_types, config.schemas, run)
    assert StateStore(duck, config.schemas.core).get("shop", "source") is None


def test_missing_template_lists_paths(backend: Backend, mini_project: Path) -> None:
    (mini_project / "sql" / "sources" / "shop" / "events.sql").unlink()
    duck, config = _setup(backend, mini_project)
    run = _run(1)
    load_source(duck, config.sources[0], config.schemas, config.resolved_data_dir(), dt.timedelta(0), run)
    engine = TemplateEngine(duck.dialect, config.resolved_template_dirs())
    with pytest.raises(NexusTemplateError, match=r"sources/shop/events\.sql' not found; looked in"):
        build_source(duck, engine, config.sources[0], config.entity_types, config.schemas, run)


def test_missing_landed_table_is_a_config_error(backend: Backend, mini_project: Path) -> None:
    duck, config = _setup(backend, mini_project)
    source = type(config.sources[0]).model_validate(
        {**config.sources[0].model_dump(), "raw": {"customers": {"table": "landing.nope", "key": "id"}}}
    )
    with pytest.raises(NexusConfigError, match=r"landing\.nope does not exist"):
        load_source(duck, source, config.schemas, Path("."), dt.timedelta(0), _run(1))


def test_ndjson_fields_null_in_the_first_rows_are_kept(backend: Backend, tmp_path: Path) -> None:
    """A field first seen after 25,000 null rows still loads (DuckDB samples 20k rows by default)."""
    import json

    wh, _ = backend
    path = tmp_path / "events.ndjson"
    with path.open("w") as fh:
        for i in range(30_000):
            fh.write(json.dumps({"id": i, "email": None if i < 25_000 else f"a{i}@x.org"}) + "\n")
    wh.dialect.stage_files(wh, "nexus_stage_ndjson", [str(path)], "ndjson", "_source_file")
    assert wh.fetchall('SELECT count(email), count(*) FROM "nexus_stage_ndjson"') == [(5_000, 30_000)]


def _replace_identifiers(
    wh: Warehouse, staged_rows: list[tuple[object, ...]], untyped: bool = False
) -> tuple[list, list]:
    """replace_model_rows of core identifiers over a fixed target; (target rows, copies kept).
    `untyped`: the staged table holds occurred_at as text (so a bad value fails the write)."""
    from airflow_provider_nexus.layers.common import MODEL_COLUMNS, Retraction, replace_model_rows

    columns = [c for c, _ in MODEL_COLUMNS["identifiers"]]
    typed = ", ".join(f"{c} {'TIMESTAMP' if c.endswith('_at') else 'VARCHAR'}" for c in columns)
    wh.execute(f"CREATE TABLE core_ids ({typed})")
    wh.execute(f"CREATE TABLE core_ids_retracted ({typed}, _retracted_at TIMESTAMP)")
    old = [  # event e1 has two identifiers; e2 one; an identifier without an event
        ("i1", "e1", "g1", "person", "email", "a@x.org", None, "shop", T0, T0),
        ("i2", "e1", "g1", "person", "phone", "+111", None, "shop", T0, T0),
        ("i3", "e2", "g2", "person", "email", "b@x.org", None, "shop", T0, T0),
        ("i4", None, "g4", "person", "email", "d@x.org", None, "shop", T0, T0),
        ("i5", "e1", "g5", "person", "email", "e@x.org", None, "other", T0, T0),
    ]
    marks = ", ".join("?" for _ in columns)
    for row in old:
        wh.execute(f"INSERT INTO core_ids VALUES ({marks})", list(row))
    as_text = " REPLACE (CAST(occurred_at AS VARCHAR) AS occurred_at)" if untyped else ""
    wh.execute(f"CREATE TEMP TABLE staged AS SELECT *{as_text} FROM core_ids WHERE FALSE")
    for row in staged_rows:
        wh.execute(f"INSERT INTO staged VALUES ({marks})", list(row))
    at = T0 + dt.timedelta(hours=1)
    written = replace_model_rows(wh, "identifiers", "core_ids", "staged", columns, Retraction("core_ids_retracted", at))
    assert written == len(staged_rows)
    return _rows(wh, "SELECT * FROM core_ids"), _rows(wh, "SELECT * FROM core_ids_retracted")


def test_replacing_rows_by_locator_equals_the_join_path() -> None:
    """DuckDB finds the rows to replace by rowid; the result is the key-join path's, row for row:
    a re-emitted event loses the identifiers it no longer has (e1: i2 dropped), a row replaced by
    id is copied once, another source's rows and rows without an event id stay."""
    import duckdb

    from airflow_provider_nexus.dialects.duckdb import DuckDBDialect

    class JoinPathDuckDB(DuckDBDialect):
        row_locator = None

    staged = [
        ("i1", "e1", "g1", "person", "email", "a2@x.org", None, "shop", T0, T0),  # e1 re-emitted
        ("i3", "e9", "g2", "person", "email", "b@x.org", None, "shop", T0, T0),  # i3 moved to another event
        ("i6", "e3", "g6", "person", "email", "f@x.org", None, "shop", T0, T0),  # new
    ]
    results = []
    for dialect in (DuckDBDialect(), JoinPathDuckDB()):
        with duckdb.connect() as con:
            results.append(_replace_identifiers(Warehouse(dialect, con), staged))
    (by_locator, copied), (by_join, copied_by_join) = results
    assert by_locator == by_join and copied == copied_by_join
    assert [r[0] for r in by_locator] == ["i1", "i3", "i4", "i5", "i6"]
    assert [r[0] for r in copied] == ["i1", "i2", "i3"]


def test_replacing_rows_by_locator_is_all_or_nothing(duck: Warehouse) -> None:
    """A failure after the old rows are deleted (here the insert of a staged row that does not
    fit the table) rolls back the delete, the copies and the scratch table."""
    bad = [("i1", "e1", "g1", "person", "email", "a@x.org", None, "shop", "not-a-time", T0)]
    executed = len(duck.executed)
    with pytest.raises(Exception, match="not-a-time"):
        _replace_identifiers(duck, bad, untyped=True)
    ran = " ".join(duck.executed[executed:])
    assert "DELETE FROM core_ids WHERE rowid IN" in ran and "INSERT INTO core_ids_retracted" in ran
    assert len(_rows(duck, "SELECT * FROM core_ids")) == 5
    assert _rows(duck, "SELECT * FROM core_ids_retracted") == []
    assert _rows(duck, "SELECT table_name FROM duckdb_tables() WHERE temporary AND table_name LIKE 'nexus%'") == []


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_a_warehouse_failure_in_the_source_layer_is_retried_not_blamed_on_the_data(
    backend: Backend, mini_project: Path
) -> None:
    """A source SELECT stopped by the warehouse rather than by its SQL or data (here: another
    session holds a lock on the raw table past the task's lock_timeout) fails with a retryable
    error, writes nothing and keeps the watermark; the retry then loads the batch."""
    from airflow.sdk.exceptions import AirflowFailException
    from conftest import postgres_connect

    from airflow_provider_nexus.errors import WarehouseStatementError

    wh, config = _setup(backend, mini_project)
    run = _run(1)
    source = config.sources[0]
    load_source(wh, source, config.schemas, config.resolved_data_dir(), dt.timedelta(0), run)
    engine = TemplateEngine(wh.dialect, config.resolved_template_dirs())
    blocker = postgres_connect()
    blocker.autocommit = False
    blocker.execute(f"LOCK TABLE {wh.dialect.table(config.schemas.raw, 'shop__orders')} IN ACCESS EXCLUSIVE MODE")
    wh.execute("SET lock_timeout = '200ms'")
    try:
        with pytest.raises(WarehouseStatementError, match=r"source 'shop', model 'events'.*lock timeout") as failed:
            build_source(wh, engine, source, config.entity_types, config.schemas, run)
    finally:
        blocker.close()  # ends its transaction, and the lock with it
    assert not isinstance(failed.value, AirflowFailException)  # Airflow retries it
    assert "a retry may succeed" in str(failed.value)
    assert StateStore(wh, config.schemas.core).get("shop", "source") is None
    assert build_source(wh, engine, source, config.entity_types, config.schemas, run)["models"]["events"]["written"]


def test_driver_errors_are_told_apart_by_whether_a_retry_can_help(backend: Backend) -> None:
    """Real errors of each engine: a missing column is the SQL's fault; running out of memory
    (DuckDB) or a server-side statement timeout (PostgreSQL) is the warehouse's."""
    wh, _ = backend
    d = wh.dialect

    def error_of(sql: str) -> Exception:
        with pytest.raises(Exception) as caught:
            wh.execute(sql)
        return caught.value

    assert d.is_permanent_error(error_of("SELECT no_such_column FROM (SELECT 1 AS x) t"))
    assert d.is_permanent_error(error_of("SELECT CAST('not-a-date' AS TIMESTAMP)"))
    if d.name == "postgres":
        wh.execute("SET statement_timeout = '100ms'")
        transient = error_of("SELECT pg_sleep(5)")
        wh.execute("RESET statement_timeout")
    else:
        wh.execute("SET memory_limit = '2MB'")
        wh.execute("SET threads = 1")
        transient = error_of("SELECT i, md5(CAST(i AS VARCHAR)) AS h FROM range(3000000) r(i) ORDER BY h")
        wh.execute("RESET memory_limit")
        wh.execute("RESET threads")
    assert not d.is_permanent_error(transient), type(transient).__mro__
