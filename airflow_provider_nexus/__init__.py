"""Airflow provider for Nexus: an identity-resolved customer model built in your warehouse."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"


def get_provider_info() -> dict[str, Any]:
    """Provider metadata for Airflow's `apache_airflow_provider` entry point."""
    return {
        "package-name": "airflow-provider-nexus",
        "name": "Nexus",
        "description": "Identity-resolved customer model (events, persons, groups, memberships, traits) "
        "built in your warehouse by layered SQL, orchestrated by Airflow.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "Nexus",
                "external-doc-url": "https://pypi.org/project/airflow-provider-nexus/",
                "tags": ["software"],
            }
        ],
        "operators": [
            {
                "integration-name": "Nexus",
                "python-modules": [
                    "airflow_provider_nexus.operators.raw",
                    "airflow_provider_nexus.operators.source",
                    "airflow_provider_nexus.operators.core",
                    "airflow_provider_nexus.operators.resolution",
                    "airflow_provider_nexus.operators.final",
                ],
            }
        ],
        "config": {
            "nexus": {
                "description": "Settings of the Nexus provider.",
                "options": {
                    "strict_loading": {
                        "description": "Raise (an import error) when a pipeline YAML file is invalid, "
                        "instead of logging it and loading the other files. Use it in CI.",
                        "version_added": "0.1.0",
                        "type": "boolean",
                        "example": "True",
                        "default": "False",
                    },
                    "configs_dir": {
                        "description": "Folder of pipeline YAML files that load_dags() reads "
                        "(NEXUS_CONFIGS_DIR overrides it; default: <dags_folder>/configs).",
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": "/opt/airflow/dags/configs",
                        "default": "",
                    },
                },
            }
        },
    }
