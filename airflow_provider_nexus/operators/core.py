"""NexusCoreOperator: union every source into the core event log."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from airflow_provider_nexus.config import EntityTypeConfig, SourceConfig
from airflow_provider_nexus.lineage import TaskTables, core_tables
from airflow_provider_nexus.operators.base import NexusBaseOperator, as_entity_types, as_source


class NexusCoreOperator(NexusBaseOperator):
    """Merge each source's new source-layer rows into nexus_core, normalising identifiers.

    Each source is read from its own watermark, so one failed or late source holds back nobody.
    """

    ui_color = "#ece3f7"

    def __init__(
        self,
        *,
        sources: Sequence[SourceConfig | Mapping[str, Any]],
        entity_types: Mapping[str, EntityTypeConfig | Mapping[str, Any]],
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.sources = [as_source(s) for s in sources]
        self.entity_types = as_entity_types(entity_types)

    def execute(self, context: Any) -> dict[str, Any]:
        from airflow_provider_nexus.layers.core import build_core

        self.selected_sources(context)  # an unknown name in the run conf fails here too
        run = self.run_context(context)
        with self.warehouse() as wh, self.exclusive(wh, "core", run):
            summary = build_core(wh, self.engine(wh), self.sources, self.entity_types, self.schemas, run)
        self.log.info("core: %s", summary["models"])
        return summary

    def lineage_tables(self) -> TaskTables:
        return core_tables(self.sources, self.schemas, self.has_template)
