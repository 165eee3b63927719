"""What every Nexus operator shares: connection, dialect, templates, and the SQL that ran."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from airflow.sdk import BaseOperator

from airflow_provider_nexus.config import EntityTypeConfig, SchemasConfig, SourceConfig
from airflow_provider_nexus.layers.common import RunContext, utcnow
from airflow_provider_nexus.warehouse import Warehouse

#: The SQL shown in the UI is capped so a huge batch cannot bloat the metadata database.
MAX_SHOWN_SQL = 200_000


class NexusBaseOperator(BaseOperator):
    """Renders its SQL in execute(), runs it through the connection's standard hook, reports rows.

    :param conn_id: Airflow connection of the warehouse (DuckDB, ...). Its conn_type picks the dialect.
    :param dialect: dialect name to use instead of the one derived from the connection.
    :param schemas: schema per layer (raw, source, core, resolution, final).
    :param template_dirs: your template folders, searched before the packaged templates.
    :param full_refresh: rebuild from raw, ignoring watermarks (also `full_refresh` in the run conf).
    """

    template_fields: Sequence[str] = ("conn_id", "compiled_sql")
    template_fields_renderers = {"compiled_sql": "sql"}
    # The SQL is only known after execute(); ask the task runner to store the fields again.
    overwrite_rtif_after_execution: bool = True
    ui_color = "#dceefc"

    def __init__(
        self,
        *,
        conn_id: str,
        dialect: str | None = None,
        schemas: SchemasConfig | Mapping[str, str] | None = None,
        template_dirs: Sequence[str] = (),
        full_refresh: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.conn_id = conn_id
        self.dialect_name = dialect
        self.schemas = schemas if isinstance(schemas, SchemasConfig) else SchemasConfig(**dict(schemas or {}))
        self.template_dirs = [str(d) for d in template_dirs]
        self.full_refresh = full_refresh
        #: Output only: the SQL this task ran, filled in by execute().
        self.compiled_sql = ""

    @contextmanager
    def warehouse(self) -> Iterator[Warehouse]:
        with Warehouse.open(self.conn_id, self.dialect_name) as wh:
            try:
                yield wh
            finally:
                shown = wh.executed_sql()
                self.compiled_sql = shown if len(shown) <= MAX_SHOWN_SQL else shown[:MAX_SHOWN_SQL] + "\n-- (truncated)"

    def engine(self, wh: Warehouse) -> Any:
        from airflow_provider_nexus.templates import engine_for

        return engine_for(wh.dialect, self.template_dirs)

    def run_context(self, context: Mapping[str, Any]) -> RunContext:
        dag_run = context.get("dag_run")
        conf = (getattr(dag_run, "conf", None) or {}) if dag_run is not None else {}
        full_refresh = bool(conf.get("full_refresh", self.full_refresh))
        return RunContext(run_id=str(context.get("run_id") or "manual"), now=utcnow(), full_refresh=full_refresh)


def as_source(value: SourceConfig | Mapping[str, Any]) -> SourceConfig:
    return value if isinstance(value, SourceConfig) else SourceConfig.model_validate(dict(value))


def as_entity_types(value: Mapping[str, EntityTypeConfig | Mapping[str, Any]]) -> dict[str, EntityTypeConfig]:
    return {
        name: cfg if isinstance(cfg, EntityTypeConfig) else EntityTypeConfig.model_validate(dict(cfg))
        for name, cfg in value.items()
    }
