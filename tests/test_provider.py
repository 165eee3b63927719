"""Provider metadata: valid against Airflow's schema and visible through the entry point."""

from __future__ import annotations

import json
from importlib.metadata import entry_points
from pathlib import Path

import airflow
import jsonschema

from airflow_provider_nexus import get_provider_info


def test_provider_info_matches_airflow_schema() -> None:
    schema = json.loads((Path(airflow.__file__).parent / "provider_info.schema.json").read_text())
    info = get_provider_info()
    jsonschema.validate(info, schema)
    assert info["package-name"] == "airflow-provider-nexus"
    for option in info["config"]["nexus"]["options"].values():
        assert {"description", "version_added", "type", "example", "default"} <= set(option)


def test_entry_point_is_registered() -> None:
    found = [
        ep for ep in entry_points(group="apache_airflow_provider") if ep.value.startswith("airflow_provider_nexus")
    ]
    assert found, "airflow_provider_nexus is not registered under apache_airflow_provider"
    assert found[0].load() is get_provider_info


def test_airflow_providers_manager_lists_it() -> None:
    from airflow.providers_manager import ProvidersManager

    providers = ProvidersManager().providers
    assert "airflow-provider-nexus" in providers


def test_operator_modules_import() -> None:
    import importlib

    for group in get_provider_info()["operators"]:
        for module in group["python-modules"]:
            importlib.import_module(module)
