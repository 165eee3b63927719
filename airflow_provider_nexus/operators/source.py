"""NexusSourceOperator: build one source's event log models from its raw batch."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow_provider_nexus.config import EntityTypeConfig, SourceConfig
from airflow_provider_nexus.layers.common import from_iso
from airflow_provider_nexus.lineage import TaskTables, source_tables
from airflow_provider_nexus.operators.base import NexusBaseOperator, as_entity_types, as_source


class NexusSourceOperator(NexusBaseOperator):
    """Render ``sources/<source>/<model>.sql`` for each model the source declares and merge it.

    :param source: a ``SourceConfig`` or an equivalent dict.
    :param entity_types: the declared entity types (``{"person": {"identifiers": [...], ...}}``).
    :param raw_task_id: the raw task of this source in the same run, whose window XCom bounds the
        batch. Without it the batch runs up to the raw layer's committed watermark.
    """

    ui_color = "#e3f4e1"

    def __init__(
        self,
        *,
        source: SourceConfig | Mapping[str, Any],
        entity_types: Mapping[str, EntityTypeConfig | Mapping[str, Any]],
        raw_task_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.source = as_source(source)
        self.entity_types = as_entity_types(entity_types)
        self.raw_task_id = raw_task_id

    def execute(self, context: Any) -> dict[str, Any]:
        from airflow_provider_nexus.layers.source import build_source

        self.skip_unless_selected(context, self.source.name)
        high = None
        if self.raw_task_id:
            window = context["ti"].xcom_pull(task_ids=self.raw_task_id)
            if isinstance(window, dict):
                high = from_iso(window.get("high"))
                self.log.info("window from %s: %s", self.raw_task_id, window)
        run = self.run_context(context)
        with self.warehouse() as wh, self.exclusive(wh, f"source:{self.source.name}", run):
            summary = build_source(wh, self.engine(wh), self.source, self.entity_types, self.schemas, run, high)
        self.log.info("source %s: %s", self.source.name, summary["models"])
        return summary

    def lineage_tables(self) -> TaskTables:
        return source_tables(self.source, self.schemas, self.has_template)
