"""The demo data generator and the demo sources' SQL templates."""

from __future__ import annotations

import itertools
import re
import time
from datetime import timedelta
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from airflow_provider_nexus.demo import generator as gen
from airflow_provider_nexus.demo.generator import (
    DemoSpec,
    batch_period,
    batch_tables,
    batch_times,
    ground_truth,
)

SPEC = DemoSpec(persons=2000, batches=3, seed=7)
REPO = Path(__file__).resolve().parent.parent
SOURCES_DIR = REPO / "dags" / "sql" / "sources"
DEMO_SOURCES = ("crm", "billing", "product", "support")

COLUMNS = {
    "events": [
        "id",
        "occurred_at",
        "event_name",
        "event_description",
        "event_type",
        "source",
        "value",
        "value_unit",
        "_ingested_at",
    ],
    "identifiers": [
        "id",
        "event_id",
        "edge_id",
        "entity_type",
        "identifier_type",
        "identifier_value",
        "role",
        "source",
        "occurred_at",
        "_ingested_at",
    ],
    "traits": [
        "id",
        "event_id",
        "edge_id",
        "entity_type",
        "trait_name",
        "trait_value",
        "source",
        "occurred_at",
        "_ingested_at",
    ],
    "memberships": [
        "id",
        "event_id",
        "person_identifier_type",
        "person_identifier_value",
        "group_identifier_type",
        "group_identifier_value",
        "role",
        "source",
        "occurred_at",
        "_ingested_at",
    ],
}
#: the models each demo source provides (product has no groups, so no memberships)
MODELS = {
    "crm": ("events", "identifiers", "traits", "memberships"),
    "billing": ("events", "identifiers", "traits", "memberships"),
    "product": ("events", "identifiers", "traits"),
    "support": ("events", "identifiers", "traits", "memberships"),
}


@pytest.fixture(scope="module")
def tables() -> list[dict[str, pa.Table]]:
    return [batch_tables(SPEC, k) for k in range(SPEC.batches)]


@pytest.fixture(scope="module")
def written(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, Path, dict[str, int]]:
    root = tmp_path_factory.mktemp("demo")
    counts = gen.write_all(SPEC, root / "data", root / "warehouse.duckdb")
    return root / "data", root / "warehouse.duckdb", counts


def _all(tables: list[dict[str, pa.Table]], name: str) -> pa.Table:
    return pa.concat_tables([t[name] for t in tables])


def _digits(values: pa.Array) -> pa.Array:
    d = pc.replace_substring_regex(values, r"\D", "")
    return pc.utf8_slice_codeunits(d, -10, 100)


# -- spec and clock -------------------------------------------------------------------------


def test_batch_times_are_one_period_apart() -> None:
    times = batch_times(SPEC)
    assert len(times) == SPEC.batches
    assert times[0] == SPEC.start + SPEC.period
    assert all(b - a == timedelta(days=1) for a, b in itertools.pairwise(times))
    assert all(t.tzinfo is None for t in times)
    with pytest.raises(ValueError):
        batch_period(SPEC, SPEC.batches)
    with pytest.raises(ValueError):
        DemoSpec(persons=0)


# -- determinism ----------------------------------------------------------------------------


def _files(data_dir: Path) -> dict[str, bytes]:
    return {str(p.relative_to(data_dir)): p.read_bytes() for p in sorted(data_dir.rglob("*")) if p.is_file()}


def _landing(path: Path) -> dict[str, list[tuple]]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return {
            t: con.execute(f"SELECT * FROM landing.{t} ORDER BY ALL").fetchall()
            for t in ("billing_customers", "billing_invoices")
        }
    finally:
        con.close()


def test_same_spec_gives_identical_output(tmp_path: Path, written: tuple[Path, Path, dict[str, int]]) -> None:
    data_dir, warehouse, counts = written
    gen._world.cache_clear()  # regenerate from the seed, not from the cached world
    again = gen.write_all(SPEC, tmp_path / "data", tmp_path / "w.duckdb")
    assert again == counts
    assert _files(tmp_path / "data") == _files(data_dir)
    assert _landing(tmp_path / "w.duckdb") == _landing(warehouse)
    other = batch_tables(DemoSpec(persons=2000, batches=3, seed=8), 0)["crm__contacts"]
    assert other != batch_tables(SPEC, 0)["crm__contacts"]


def test_a_batch_can_be_written_alone(tmp_path: Path, written: tuple[Path, Path, dict[str, int]]) -> None:
    data_dir, warehouse, _ = written
    gen._world.cache_clear()
    counts = gen.write_batch(SPEC, 2, tmp_path / "data", tmp_path / "w.duckdb")
    files = _files(tmp_path / "data")
    assert sorted(files) == [
        "crm/companies_0002.csv",
        "crm/contacts_0002.csv",
        "product/events_0002.ndjson",
        "support/tickets_0002.parquet",
    ]
    full = _files(data_dir)
    assert all(files[name] == full[name] for name in files)
    alone = _landing(tmp_path / "w.duckdb")
    assert len(alone["billing_customers"]) == counts["billing__customers"] > 0
    assert set(alone["billing_invoices"]) <= set(_landing(warehouse)["billing_invoices"])


def test_rewriting_a_batch_is_idempotent(tmp_path: Path) -> None:
    spec = DemoSpec(persons=300, batches=2, seed=3)
    first = gen.write_batch(spec, 0, tmp_path / "data", tmp_path / "w.duckdb")
    before = _landing(tmp_path / "w.duckdb")
    assert gen.write_batch(spec, 0, tmp_path / "data", tmp_path / "w.duckdb") == first
    assert _landing(tmp_path / "w.duckdb") == before


def test_landing_through_a_warehouse_connection_matches_the_direct_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`nexus demo --connection` lands billing rows through the dialect (used for Snowflake);
    on DuckDB it gives the direct path's rows, and landing a batch again changes nothing."""
    import json

    spec = DemoSpec(persons=300, batches=2, seed=3)
    direct, via = tmp_path / "direct.duckdb", tmp_path / "via.duckdb"
    monkeypatch.setenv("AIRFLOW_CONN_NEXUS_LANDING", json.dumps({"conn_type": "duckdb", "host": str(via)}))
    for batch in (0, 1, 1):
        a = gen.write_batch(spec, batch, tmp_path / "a", direct)
        b = gen.write_batch(spec, batch, tmp_path / "b", gen.WarehouseConnection("nexus_landing"))
        assert a == b
    assert _landing(via) == _landing(direct)


def test_billing_is_skipped_without_a_database(tmp_path: Path) -> None:
    counts = gen.write_batch(DemoSpec(persons=100, batches=1), 0, tmp_path, None)
    assert "billing__customers" not in counts and counts["crm__contacts"] > 0
    assert not list(tmp_path.rglob("*.duckdb"))


def test_counts_match_what_was_written(
    written: tuple[Path, Path, dict[str, int]],
) -> None:
    data_dir, warehouse, counts = written
    con = duckdb.connect(str(warehouse), read_only=True)
    d = str(data_dir)
    assert (
        con.execute(f"SELECT count(*) FROM read_csv('{d}/crm/contacts_*.csv')").fetchone()[0] == counts["crm__contacts"]
    )
    assert (
        con.execute(f"SELECT count(*) FROM read_csv('{d}/crm/companies_*.csv')").fetchone()[0]
        == counts["crm__companies"]
    )
    assert (
        con.execute(
            f"SELECT count(*) FROM read_json('{d}/product/events_*.ndjson', format = 'newline_delimited')"
        ).fetchone()[0]
        == counts["product__events"]
    )
    assert (
        con.execute(f"SELECT count(*) FROM read_parquet('{d}/support/tickets_*.parquet')").fetchone()[0]
        == counts["support__tickets"]
    )
    assert con.execute("SELECT count(*) FROM landing.billing_customers").fetchone()[0] == counts["billing__customers"]
    assert con.execute("SELECT count(*) FROM landing.billing_invoices").fetchone()[0] == counts["billing__invoices"]
    con.close()


# -- batches --------------------------------------------------------------------------------


def test_batches_are_disjoint_and_complete(tables: list[dict[str, pa.Table]]) -> None:
    truth = ground_truth(SPEC)
    # natural keys: each row appears in exactly one batch...
    for name, key in [
        ("crm__contacts", ["contact_id", "updated_at"]),
        ("crm__companies", ["company_id", "updated_at"]),
        ("billing__customers", ["customer_id", "synced_at"]),
        ("billing__invoices", ["invoice_id"]),
        ("product__events", ["event_id"]),
        ("support__tickets", ["ticket_id"]),
    ]:
        rows = _all(tables, name).select(key).to_pylist()
        assert len(rows) == len({tuple(r.values()) for r in rows}), name
    # ...and together the batches hold the whole world
    contacts = set(_all(tables, "crm__contacts").column("contact_id").to_pylist())
    assert contacts == set(truth["crm__contacts"].column("contact_id").to_pylist())
    customers = set(_all(tables, "billing__customers").column("customer_id").to_pylist())
    assert customers == set(truth["billing__customers"].column("customer_id").to_pylist())
    tickets = set(_all(tables, "support__tickets").column("ticket_id").to_pylist())
    assert tickets == set(truth["support__tickets"].column("ticket_id").to_pylist())
    anon = set(_all(tables, "product__events").column("anonymous_id").to_pylist())
    assert anon == set(truth["product__users"].column("anonymous_id").to_pylist())
    companies = set(_all(tables, "crm__companies").column("company_id").to_pylist())
    assert companies == set(truth["crm__companies"].column("company_id").to_pylist())


def test_rows_lie_in_their_batch_period(tables: list[dict[str, pa.Table]]) -> None:
    for k, batch in enumerate(tables):
        lo, hi = batch_period(SPEC, k)
        iso = lambda col: pc.strptime(pc.replace_substring(col, "Z", ""), format="%Y-%m-%dT%H:%M:%S", unit="ms")
        for ts in [
            iso(batch["crm__contacts"].column("updated_at")),
            iso(batch["crm__companies"].column("updated_at")),
            pc.strptime(
                pc.utf8_slice_codeunits(batch["product__events"].column("timestamp"), 0, 19),
                format="%Y-%m-%dT%H:%M:%S",
                unit="ms",
            ),
            batch["support__tickets"].column("created_at"),
        ]:
            values = ts.to_pylist()
            assert values and all(lo <= v < hi for v in values), k
        assert all(v < hi for v in batch["billing__customers"].column("synced_at").to_pylist())


def test_recontacts_are_redelivered_with_changes(
    tables: list[dict[str, pa.Table]],
) -> None:
    seen: dict[str, tuple[int, dict]] = {}
    changed = 0
    for k, batch in enumerate(tables):
        for row in batch["crm__contacts"].to_pylist():
            if row["contact_id"] in seen:
                first_batch, first = seen[row["contact_id"]]
                assert first_batch < k
                assert row["created_at"] == first["created_at"]
                assert row["updated_at"] > first["updated_at"]
                changed += row["title"] != first["title"]
            else:
                seen[row["contact_id"]] = (k, row)
    assert changed >= 10


def test_late_billing_rows_fall_inside_a_ten_minute_lookback(
    tables: list[dict[str, pa.Table]],
) -> None:
    for name in ("billing__customers", "billing__invoices"):
        previous_max = None
        for k, batch in enumerate(tables):
            lo, hi = batch_period(SPEC, k)
            synced = batch[name].column("synced_at").to_pylist()
            late = [s for s in synced if s < lo]
            on_time = [s for s in synced if s >= lo]
            assert max(on_time) == hi - timedelta(seconds=1)  # the batch's watermark
            if k == 0:
                assert not late
            else:
                assert late, f"{name}: no late rows in batch {k}"
                # below the previous batch's watermark, but within a 10-minute lookback of it
                assert all(previous_max - timedelta(minutes=10) < s < previous_max for s in late)
            previous_max = max(synced)


# -- content --------------------------------------------------------------------------------


def test_messy_forms_are_present(tables: list[dict[str, pa.Table]]) -> None:
    emails = (
        pa.concat_arrays(
            [
                _all(tables, "crm__contacts").column("email").combine_chunks(),
                _all(tables, "billing__customers").column("email").combine_chunks(),
                _all(tables, "support__tickets").column("requester_email").combine_chunks(),
                _all(tables, "product__events").column("email").combine_chunks(),
            ]
        )
        .drop_null()
        .to_pylist()
    )
    assert any(e != e.strip() for e in emails), "emails with surrounding spaces"
    assert any(e.strip() != e.strip().lower() for e in emails), "mixed-case emails"
    assert "test@example.com" in emails
    assert any(e.startswith("noreply@") for e in emails)
    assert "" in emails
    phones = _all(tables, "crm__contacts").column("phone").drop_null().to_pylist()
    assert any(re.fullmatch(r"\+1 \(\d{3}\) \d{3}-\d{4}", p) for p in phones)
    assert any(re.fullmatch(r"\d{3}\.\d{3}\.\d{4}", p) for p in phones)
    assert any(re.fullmatch(r"\d{10}", p) for p in phones)
    assert "" in phones
    domains = (
        _all(tables, "crm__companies").column("domain").drop_null().to_pylist()
        + _all(tables, "billing__customers").column("company_domain").drop_null().to_pylist()
        + _all(tables, "support__tickets").column("org_domain").drop_null().to_pylist()
    )
    assert any(d.strip().lower().startswith("www.") for d in domains)
    assert any(d != d.lower() for d in domains)
    events = _all(tables, "product__events")
    assert set(events.column("event").to_pylist()) == {
        "page_view",
        "signup",
        "identify",
        "feature_used",
    }
    assert all(t.endswith("Z") for t in events.column("timestamp").to_pylist())


def test_product_identify_links_anonymous_id_user_id_and_email(
    tables: list[dict[str, pa.Table]],
) -> None:
    events = _all(tables, "product__events").to_pylist()
    for e in events:
        if e["event"] == "page_view":
            assert e["user_id"] is None and e["email"] is None
        if e["event"] == "identify":
            assert e["anonymous_id"] and e["user_id"] and e["email"]
        if e["email"] is not None:
            assert e["event"] == "identify"
    # an anonymous id seen before its identify (earlier batch) exists
    first_batch: dict[str, int] = {}
    linked_later = 0
    for k, batch in enumerate(tables):
        for e in batch["product__events"].to_pylist():
            first_batch.setdefault(e["anonymous_id"], k)
            linked_later += e["event"] == "identify" and first_batch[e["anonymous_id"]] < k
    assert linked_later > 0


def test_a_shared_office_phone_is_used_by_many_people(
    tables: list[dict[str, pa.Table]],
) -> None:
    truth = ground_truth(SPEC)
    contacts = _all(tables, "crm__contacts")
    person = dict(zip(*(truth["crm__contacts"].column(c).to_pylist() for c in ("contact_id", "person")), strict=True))
    people_by_phone: dict[str, set[int]] = {}
    for contact_id, phone in zip(
        contacts.column("contact_id").to_pylist(),
        _digits(contacts.column("phone").combine_chunks()).to_pylist(),
        strict=True,
    ):
        if phone:
            people_by_phone.setdefault(phone, set()).add(person[contact_id])
    assert max(len(p) for p in people_by_phone.values()) >= 20
    # the company's own phone in the companies file is that same number
    office = set(_digits(_all(tables, "crm__companies").column("phone").combine_chunks()).to_pylist())
    hub = max(people_by_phone, key=lambda p: len(people_by_phone[p]))
    assert hub in office


def test_people_appear_in_all_four_sources_with_linkable_identifiers(
    tables: list[dict[str, pa.Table]],
) -> None:
    truth = ground_truth(SPEC)
    everywhere = set(np.flatnonzero(truth["persons"].column("all_sources").to_numpy()))
    assert len(everywhere) > SPEC.persons * 0.05
    by_source = {
        "crm": set(truth["crm__contacts"].column("person").to_pylist()),
        "billing": set(truth["billing__customers"].column("person").to_pylist()),
        "product": set(truth["product__users"].column("person").to_pylist()),
        "support": set(truth["support__tickets"].column("person").to_pylist()),
    }
    for persons in by_source.values():
        assert everywhere <= persons
    # billing and product share the account email (product identify events carry it)
    norm = lambda col: pc.utf8_lower(pc.utf8_trim_whitespace(col))
    billing = set(norm(_all(tables, "billing__customers").column("email").combine_chunks()).to_pylist())
    identify = set(norm(_all(tables, "product__events").column("email").combine_chunks()).drop_null().to_pylist())
    assert len(billing & identify) > 0.8 * len(billing - {"", "test@example.com", None})
    # companies are named by the same domain in crm, billing and support, modulo case and www.
    dom = lambda col: pc.replace_substring_regex(norm(col.combine_chunks()), r"^www\.", "")
    canonical = set(truth["crm__companies"].column("domain").to_pylist())
    crm = set(dom(_all(tables, "crm__companies").column("domain")).to_pylist()) - {""}
    billing_domains = set(dom(_all(tables, "billing__customers").column("company_domain")).drop_null().to_pylist())
    support_domains = set(dom(_all(tables, "support__tickets").column("org_domain")).drop_null().to_pylist())
    assert crm <= canonical and len(crm) > 0.9 * len(canonical)
    assert billing_domains - {""} <= canonical and len(billing_domains & crm) > 0.8 * len(billing_domains)
    assert support_domains - {""} <= canonical and len(support_domains & crm) > 0.8 * len(support_domains)


@pytest.mark.parametrize("persons", [20_000])
def test_scale_smoke(tmp_path: Path, persons: int) -> None:
    began = time.perf_counter()
    counts = gen.write_all(DemoSpec(persons=persons, batches=3), tmp_path / "data", tmp_path / "w.duckdb")
    elapsed = time.perf_counter() - began
    assert counts["crm__contacts"] > persons * 0.6
    assert counts["product__events"] > persons * 2
    assert elapsed < 30, f"{persons} persons took {elapsed:.1f}s"


# -- templates ------------------------------------------------------------------------------


def test_every_demo_template_names_its_columns() -> None:
    for source, models in MODELS.items():
        for model in models:
            path = SOURCES_DIR / source / f"{model}.sql"
            assert path.is_file(), path
            text = path.read_text()
            missing = [c for c in COLUMNS[model] if not re.search(rf"\b{re.escape(c)}\b", text)]
            assert not missing, f"{path}: {missing}"
            assert not text.rstrip().endswith(";"), path


def _raw_tables(con: duckdb.DuckDBPyConnection, data_dir: Path, batch: int) -> None:
    """Stand-in for the raw layer: one batch's rows of every raw table, with _ingested_at."""
    con.execute("CREATE SCHEMA IF NOT EXISTS raw")
    stamp = f"TIMESTAMP '{batch_times(SPEC)[batch]:%Y-%m-%d %H:%M:%S}'"
    d, n = str(data_dir), f"{batch:04d}"
    readers = {
        "crm__contacts": f"read_csv('{d}/crm/contacts_{n}.csv', header = true, all_varchar = true, filename = true)",
        "crm__companies": f"read_csv('{d}/crm/companies_{n}.csv', header = true, all_varchar = true, filename = true)",
        "product__events": f"read_json('{d}/product/events_{n}.ndjson', format = 'newline_delimited', filename = true)",
        "support__tickets": f"read_parquet('{d}/support/tickets_{n}.parquet', filename = true)",
    }
    lo, hi = batch_period(SPEC, batch)
    for name, table, key in [
        ("billing__customers", "billing_customers", "customer_id"),
        ("billing__invoices", "billing_invoices", "invoice_id"),
    ]:  # a 10-minute lookback window, merged on the key (the latest synced row wins)
        readers[name] = (
            f"(SELECT * FROM landing.{table} WHERE synced_at >= TIMESTAMP '{lo - timedelta(minutes=10)}' "
            f"AND synced_at < TIMESTAMP '{hi}' QUALIFY row_number() OVER (PARTITION BY {key} ORDER BY synced_at DESC) = 1)"
        )
    for name, reader in readers.items():
        con.execute(f"CREATE OR REPLACE TABLE raw.{name} AS SELECT *, {stamp} AS _ingested_at FROM {reader}")


def test_demo_templates_render_and_run_on_duckdb(written: tuple[Path, Path, dict[str, int]], tmp_path: Path) -> None:
    templates = pytest.importorskip("airflow_provider_nexus.templates")
    from airflow_provider_nexus.dialects import get_dialect

    data_dir, warehouse, _ = written
    dialect = get_dialect("duckdb")
    engine = templates.TemplateEngine(dialect, [SOURCES_DIR.parent])
    db = tmp_path / "copy.duckdb"
    db.write_bytes(warehouse.read_bytes())
    con = duckdb.connect(str(db))
    con.execute("SET TimeZone = 'UTC'")
    emitted: dict[str, set[tuple[str, str]]] = {}
    for batch in range(SPEC.batches):
        _raw_tables(con, data_dir, batch)
        for source, models in MODELS.items():
            context = {
                "source": source,
                "batch": lambda table, s=source: f"(SELECT * FROM raw.{s}__{table})",
                "surrogate_key": lambda exprs: dialect.hash_hex(dialect.key_text(exprs)),
            }
            for model in models:
                sql = engine.render(f"sources/{source}/{model}.sql", **context)
                rel = con.sql(sql)
                assert rel.columns == COLUMNS[model], f"{source}/{model}"
                ids = con.execute(f"SELECT count(*), count(DISTINCT id), count(id) FROM ({sql}) AS t").fetchone()
                assert ids[0] > 0 and ids[0] == ids[1] == ids[2], f"{source}/{model} batch {batch}: {ids}"
                if model == "identifiers":
                    con.execute(f"CREATE TABLE IF NOT EXISTS all_identifiers AS SELECT * FROM ({sql}) AS t LIMIT 0")
                    con.execute(f"INSERT INTO all_identifiers SELECT * FROM ({sql}) AS t")
                    found = con.execute(
                        f"SELECT DISTINCT entity_type, identifier_type FROM ({sql}) AS t "
                        "WHERE identifier_value IS NULL OR TRIM(identifier_value) = ''"
                    ).fetchall()
                    assert not found, f"{source}: empty identifier values {found}"
                    pairs = con.execute(f"SELECT DISTINCT entity_type, identifier_type FROM ({sql}) AS t").fetchall()
                    emitted.setdefault(source, set()).update(pairs)
                if model in ("events", "identifiers", "traits"):
                    bad = con.execute(f"SELECT count(*) FROM ({sql}) AS t WHERE occurred_at IS NULL").fetchone()[0]
                    assert bad == 0, f"{source}/{model}: rows without occurred_at"
    assert emitted["product"] == {
        ("person", "anonymous_id"),
        ("person", "user_id"),
        ("person", "email"),
    }
    assert emitted["crm"] == {
        ("person", "crm_contact_id"),
        ("person", "email"),
        ("person", "phone"),
        ("group", "crm_company_id"),
        ("group", "domain"),
    }
    assert emitted["billing"] == {
        ("person", "billing_customer_id"),
        ("person", "email"),
        ("person", "phone"),
        ("group", "domain"),
    }
    assert emitted["support"] == {
        ("person", "email"),
        ("person", "phone"),
        ("group", "domain"),
    }
    _check_naive_resolution(con)
    con.close()


def _check_naive_resolution(con: duckdb.DuckDBPyConnection) -> None:
    """Resolve the demo's persons with a plain union-find; most true persons come out whole.

    Not the product's algorithm, only a check that the data and templates carry the links they
    should: normalised emails, last-10-digit phones, placeholders blocked, values in more than 20
    edge groups treated as hubs.
    """
    rows = con.execute(
        """
        WITH norm AS (
            SELECT edge_id, identifier_type,
                   CASE identifier_type
                       WHEN 'email' THEN LOWER(TRIM(identifier_value))
                       WHEN 'phone' THEN RIGHT(regexp_replace(identifier_value, '[^0-9]', '', 'g'), 10)
                       ELSE identifier_value
                   END AS value
            FROM all_identifiers WHERE entity_type = 'person'
        ),
        usable AS (
            SELECT * FROM norm
            WHERE value <> '' AND value <> 'test@example.com' AND value NOT LIKE 'noreply@%'
              AND (identifier_type, value) NOT IN (
                  SELECT identifier_type, value FROM norm GROUP BY ALL HAVING count(DISTINCT edge_id) > 20
              )
        )
        SELECT DISTINCT edge_id, identifier_type, value FROM usable
        """
    ).fetchall()
    parent: dict[object, object] = {}

    def find(x: object) -> object:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for edge, kind, value in rows:
        a, b = find(("edge", edge)), find((kind, value))
        if a != b:
            parent[a] = b
    truth = ground_truth(SPEC)
    keyed = {
        "crm_contact_id": truth["crm__contacts"].select(["contact_id", "person"]).to_pylist(),
        "billing_customer_id": truth["billing__customers"].select(["customer_id", "person"]).to_pylist(),
        "user_id": truth["product__users"]
        .filter(pc.is_valid(truth["product__users"]["user_id"]))
        .select(["user_id", "person"])
        .to_pylist(),
    }
    components: dict[int, set[object]] = {}
    persons_of: dict[object, set[int]] = {}
    for kind, pairs in keyed.items():
        for pair in pairs:
            key, person = pair.values()
            if (kind, key) not in parent:
                continue
            root = find((kind, key))
            components.setdefault(person, set()).add(root)
            persons_of.setdefault(root, set()).add(person)
    everywhere = np.flatnonzero(truth["persons"].column("all_sources").to_numpy())
    whole = sum(len(components.get(p, ())) == 1 for p in everywhere)
    # About a quarter of people use a personal address for their account and a work address in
    # the CRM with no phone in common: nothing links the two halves, and nothing should.
    assert whole >= 0.65 * len(everywhere), f"{whole}/{len(everywhere)} all-source persons resolved whole"
    pure = sum(len(p) == 1 for p in persons_of.values())
    print(f"naive resolution: {whole}/{len(everywhere)} whole, {pure}/{len(persons_of)} pure")
    assert pure >= 0.95 * len(persons_of), f"only {pure}/{len(persons_of)} components hold one true person"


def test_demo_config_matches_the_templates() -> None:
    config = pytest.importorskip("airflow_provider_nexus.config")
    pipeline = config.load_config(REPO / "dags" / "configs" / "nexus_demo.yml")
    assert [s.name for s in pipeline.sources] == list(DEMO_SOURCES)
    for source in pipeline.sources:
        present = sorted(p.stem for p in (SOURCES_DIR / source.name).glob("*.sql"))
        assert present == sorted(source.models()), source.name
        assert sorted(MODELS[source.name]) == present
    for entity, (identifiers, traits) in {
        "person": (
            {
                "email",
                "phone",
                "user_id",
                "anonymous_id",
                "crm_contact_id",
                "billing_customer_id",
            },
            {"name", "title", "plan"},
        ),
        "group": ({"domain", "crm_company_id"}, {"name", "industry", "size"}),
    }.items():
        assert set(pipeline.entity_types[entity].identifiers) == identifiers
        assert set(pipeline.entity_types[entity].traits) == traits
