"""Config loading: every error names file, line and key; typos get a suggestion."""

from __future__ import annotations

import datetime as dt
import json
import textwrap
from pathlib import Path

import pytest

from airflow_provider_nexus.cli import main as cli_main
from airflow_provider_nexus.config import load_config, parse_config
from airflow_provider_nexus.errors import NexusConfigError

VALID = textwrap.dedent(
    """\
    dag_id: demo
    warehouse: {conn_id: nexus_duckdb}
    incremental: {lookback: 15m}
    entity_types:
      person: {identifiers: [email, phone], traits: [name]}
      group: {identifiers: [domain]}
    sources:
      - name: crm
        raw:
          contacts: {path: "crm/*.csv", key: contact_id}
        persons: true
        groups: true
        memberships: true
      - name: billing
        raw:
          customers: {table: landing.customers, key: customer_id}
        persons: true
    """
)


def _error(text: str, path: str = "p.yml") -> str:
    with pytest.raises(NexusConfigError) as info:
        parse_config(text, path)
    return str(info.value)


def test_valid_config_loads_with_defaults() -> None:
    config = parse_config(VALID)
    assert config.incremental.lookback == dt.timedelta(minutes=15)
    assert config.schemas.raw == "nexus_raw"
    crm = config.source("crm")
    assert crm.models() == ["events", "identifiers", "traits", "memberships"]
    assert crm.raw["contacts"].file_format() == "csv"
    billing = config.source("billing")
    assert billing.raw["customers"].synced_at == "synced_at"
    assert config.id_prefix("person") == "per" and config.id_prefix("group") == "grp"


def test_unknown_key_names_line_and_suggests() -> None:
    message = _error(VALID.replace("    persons: true\n    groups", "    persns: true\n    groups"))
    assert message.startswith("p.yml:11: sources.0.persns: unknown key 'persns' (did you mean 'persons'?)")


def test_unknown_key_in_raw_table_suggests_from_the_right_model() -> None:
    message = _error(VALID.replace("key: contact_id}", "key: contact_id, formt: csv}"))
    assert "p.yml:10:" in message and "did you mean 'format'?" in message


def test_wrong_type_names_key_and_line() -> None:
    message = _error(VALID.replace("lookback: 15m", "lookback: soon"))
    assert "p.yml:3: incremental.lookback:" in message and "duration" in message


def test_duplicate_source_names() -> None:
    message = _error(VALID.replace("name: billing", "name: crm"))
    assert "p.yml:14: sources.1.name: duplicate source name 'crm'" in message


def test_entity_type_used_but_not_declared() -> None:
    message = _error(VALID.replace("  group: {identifiers: [domain]}\n", ""))
    assert "sources.0.groups" in message and "'group', which is not declared" in message
    assert "p.yml:11:" in message  # the groups key, one line up once group is gone


def test_unsafe_names_are_rejected() -> None:
    message = _error(VALID.replace("name: crm", 'name: "crm; drop table x"'))
    assert "sources.0.name" in message and "not a safe name" in message
    message = _error(VALID.replace("landing.customers", "landing.customers;--"))
    assert "sources.1.raw.customers.table" in message


def test_yaml_syntax_error_has_line() -> None:
    message = _error("dag_id: x\nwarehouse: {conn_id: [\n")
    assert message.startswith("p.yml:") and "not valid YAML" in message


def test_reserved_and_clashing_column_names() -> None:
    message = _error(VALID.replace("traits: [name]", "traits: [email]"))
    assert "cannot be both an identifier type and a trait" in message


def test_duplicate_yaml_keys_are_errors_not_last_one_wins() -> None:
    text = VALID.replace(
        '      contacts: {path: "crm/*.csv", key: contact_id}\n',
        '      contacts: {path: "crm/*.csv", key: contact_id}\n      contacts: {path: "other.csv", key: id}\n',
    ).replace("incremental: {lookback: 15m}", "incremental: {lookback: 15m, lookback: 1h}")
    message = _error(text)
    assert message.splitlines() == [
        "p.yml:3: incremental.lookback: duplicate key (first at line 3)",
        "p.yml:11: sources.0.raw.contacts: duplicate key (first at line 10)",
    ]


@pytest.mark.parametrize(
    ("lookback", "expected"),
    [("-3600", "is negative"), (".inf", "a timedelta can hold"), ("99999999999999d", "a timedelta can hold")],
)
def test_durations_out_of_range_are_errors(lookback: str, expected: str) -> None:
    # a negative lookback would start the window after the watermark and skip updated rows
    message = _error(VALID.replace("lookback: 15m", f"lookback: {lookback}"))
    assert message.startswith("p.yml:3: incremental.lookback:") and expected in message


def test_a_source_lookback_of_zero_is_kept() -> None:
    from airflow_provider_nexus.operators.raw import NexusRawOperator

    config = parse_config(
        VALID.replace("    persons: true\n    groups", "    lookback: 0s\n    persons: true\n    groups")
    )
    op = NexusRawOperator(task_id="raw", conn_id="c", source=config.source("crm"), lookback="10m")
    assert op.lookback == dt.timedelta(0)


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [("61 25 * * *", "not a valid cron expression"), ("@dayly", "did you mean '@daily'?")],
)
def test_invalid_schedule_names_file_and_key(schedule: str, expected: str) -> None:
    # Airflow would only reject it when importing the DAG file, naming neither the file nor the key
    message = _error(f"schedule: '{schedule}'\n" + VALID)
    assert message.startswith("p.yml:1: schedule:") and expected in message
    for valid in ("0 3 * * *", "@daily", "@once"):
        assert parse_config(f"schedule: '{valid}'\n" + VALID).schedule == valid


def test_noise_rules_for_undeclared_identifier_types_are_errors() -> None:
    message = _error(VALID + "resolution: {noise: {blocked_values: {emial: [x@y.z]}}}\n")
    assert "resolution.noise.blocked_values.emial" in message and "did you mean 'email'?" in message
    message = _error(VALID + "resolution: {noise: {hub_limits: {phone: 0}}}\n")
    assert "resolution.noise.hub_limits.phone" in message and "greater than or equal to 1" in message


def test_file_that_is_not_utf8_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "latin.yml"
    path.write_bytes(b"dag_id: t\nname: caf\xe9\n")
    with pytest.raises(NexusConfigError, match=r"latin\.yml:2: not UTF-8 text"):
        load_config(path)


def test_load_config_names_missing_file(tmp_path: Path) -> None:
    with pytest.raises(NexusConfigError, match="cannot read"):
        load_config(tmp_path / "absent.yml")


def test_cli_validate_exit_codes(mini_project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = mini_project / "mini.yml"
    assert cli_main(["validate", str(good)]) == 0
    text = good.read_text()
    (mini_project / "typo.yml").write_text(text.replace("persons: true", "persns: true", 1))
    (mini_project / "twin.yml").write_text(text)
    (mini_project / "untemplated.yml").write_text(
        text.replace("dag_id: nexus_mini", "dag_id: nexus_other").replace("name: shop", "name: till")
    )
    capsys.readouterr()
    assert cli_main(["validate", str(mini_project)]) == 1
    err = capsys.readouterr().err
    assert f"{mini_project / 'typo.yml'}:" in err and "did you mean 'persons'?" in err
    assert f"{mini_project / 'twin.yml'}: dag_id 'nexus_mini' is already used by {good}" in err
    assert f"{mini_project / 'untemplated.yml'}: template 'sources/till/events.sql' not found" in err


def test_cli_schema_is_json_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert "sources" in schema["properties"] and "warehouse" in schema["required"]


def test_every_shipped_config_validates() -> None:
    repo = Path(__file__).resolve().parent.parent
    files = sorted((repo / "dags" / "configs").glob("*.yml"))
    assert files, "dags/configs holds no pipeline file"
    for file in files:
        load_config(file)


def test_unknown_dialect_is_a_config_error_with_a_suggestion() -> None:
    message = _error(VALID.replace("warehouse: {conn_id: nexus_duckdb}", "warehouse: {conn_id: c, dialect: duckbd}"))
    assert message.startswith("p.yml:2: warehouse.dialect:") and "did you mean 'duckdb'?" in message


def test_an_identifier_type_listed_twice_is_an_error() -> None:
    # each becomes a column of the entity table: DuckDB would add 'email_1', PostgreSQL fail
    message = _error(VALID.replace("identifiers: [email, phone]", "identifiers: [email, phone, email]"))
    assert "entity_types.person.identifiers" in message and "'email' listed more than once" in message


def test_an_entity_type_may_not_take_a_final_table_name() -> None:
    message = _error(
        VALID.replace(
            "  group: {identifiers: [domain]}", "  group: {identifiers: [domain]}\n  event: {identifiers: [ticket]}"
        )
    )
    assert "entity_types.event" in message and "nexus_events, a table the final layer already writes" in message
    # the names kept back are those of the final layer's fixed tables
    from airflow_provider_nexus.config import _TAKEN_ENTITY_NAMES
    from airflow_provider_nexus.layers.final import final_tables

    fixed = set(final_tables({})) | {"nexus_memberships"}
    assert {f"nexus_{name}s" for name in _TAKEN_ENTITY_NAMES} == fixed


def test_source_and_table_names_may_not_contain_the_separator() -> None:
    # 'shop' + 'eu__orders' and 'shop__eu' + 'orders' would share nexus_raw.shop__eu__orders
    message = _error(VALID.replace("contacts: {path", "crm__contacts: {path"))
    assert "sources.0.raw.crm__contacts" in message and "contains '__'" in message
    message = _error(VALID.replace("name: billing", "name: bill__ing"))
    assert "sources.1.name" in message and "contains '__'" in message


@pytest.mark.parametrize("pattern", [r"^(?!.*@)", r"(?<=@)example\.com$", r"(a)\1", r"(?P<x>a)"])
def test_blocked_patterns_the_warehouses_cannot_run_are_config_errors(pattern: str) -> None:
    # Python compiles them, RE2 (DuckDB, BigQuery) and POSIX (Snowflake) do not
    message = _error(VALID + f"resolution: {{noise: {{blocked_patterns: {{email: ['{pattern}']}}}}}}\n")
    assert message.startswith("p.yml:18: resolution.noise:") and repr(pattern) in message and "do not have" in message


def test_portable_blocked_patterns_load() -> None:
    config = parse_config(
        VALID + "resolution: {noise: {blocked_patterns: {email: ['(?i)^noreply@', '^(test|demo)@']}}}\n"
    )
    assert config.resolution.noise.blocked_patterns["email"] == ["(?i)^noreply@", "^(test|demo)@"]
