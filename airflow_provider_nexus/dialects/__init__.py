"""One mapping from Airflow connection types to dialects."""

from __future__ import annotations

from airflow_provider_nexus.dialects.base import Dialect, UnsafeNameError, check_name
from airflow_provider_nexus.errors import NexusConfigError

#: conn_type -> "module:Class". Modules are imported only when the dialect is used.
DIALECTS: dict[str, str] = {
    "duckdb": "airflow_provider_nexus.dialects.duckdb:DuckDBDialect",
    "postgres": "airflow_provider_nexus.dialects.postgres:PostgresDialect",
    "snowflake": "airflow_provider_nexus.dialects.snowflake:SnowflakeDialect",
    "redshift": "airflow_provider_nexus.dialects.redshift:RedshiftDialect",
    "databricks": "airflow_provider_nexus.dialects.databricks:DatabricksDialect",
    "bigquery": "airflow_provider_nexus.dialects.bigquery:BigQueryDialect",
}

#: Airflow connection types that map to a dialect name.
CONN_TYPES: dict[str, str] = {
    "duckdb": "duckdb",
    "postgres": "postgres",
    "postgresql": "postgres",
    "snowflake": "snowflake",
    "redshift": "redshift",
    "databricks": "databricks",
    "google_cloud_platform": "bigquery",
    "gcpbigquery": "bigquery",
}


def dialect_names() -> list[str]:
    """Every name `get_dialect` takes: dialect names and the connection types that map to them."""
    return sorted(set(DIALECTS) | set(CONN_TYPES))


def get_dialect(name: str) -> Dialect:
    """The dialect called `name` (a dialect name or an Airflow conn_type)."""
    import importlib

    key = CONN_TYPES.get(name, name)
    target = DIALECTS.get(key)
    if target is None:
        raise NexusConfigError(
            f"no Nexus dialect for connection type {name!r}; supported: {', '.join(dialect_names())}"
        )
    module_name, class_name = target.split(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    return cls()


def dialect_for_connection(conn_id: str) -> Dialect:
    """Look the connection up (a runtime call: never at DAG parse time) and map its conn_type."""
    from airflow.sdk import BaseHook

    conn = BaseHook.get_connection(conn_id)
    return get_dialect(conn.conn_type or "")


__all__ = [
    "DIALECTS",
    "Dialect",
    "UnsafeNameError",
    "check_name",
    "dialect_for_connection",
    "dialect_names",
    "get_dialect",
]
