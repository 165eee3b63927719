"""Identity resolution: exact connected components in SQL and stable, logged entity ids."""

from __future__ import annotations

from airflow_provider_nexus.resolution.components import (
    ComponentsResult,
    connected_components,
)
from airflow_provider_nexus.resolution.noise import NoiseRules
from airflow_provider_nexus.resolution.resolve import (
    AUDIT_TABLE,
    LOG_TABLE,
    ResolutionSummary,
    ensure_resolution_tables,
    has_core_rows,
    latest_change,
    map_table_name,
    pending_change,
    resolve_entity_type,
    rules_fingerprint,
)

__all__ = [
    "AUDIT_TABLE",
    "LOG_TABLE",
    "ComponentsResult",
    "NoiseRules",
    "ResolutionSummary",
    "connected_components",
    "ensure_resolution_tables",
    "has_core_rows",
    "latest_change",
    "map_table_name",
    "pending_change",
    "resolve_entity_type",
    "rules_fingerprint",
]
