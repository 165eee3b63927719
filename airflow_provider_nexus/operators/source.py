"""NexusSourceOperator: build the event log models of one source (or several) from their raw batch."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow_provider_nexus.config import EntityTypeConfig, SourceConfig
from airflow_provider_nexus.layers.common import RunContext, from_iso
from airflow_provider_nexus.lineage import TaskTables, source_tables
from airflow_provider_nexus.operators.base import PerSourceOperator, as_entity_types
from airflow_provider_nexus.warehouse import Warehouse


class NexusSourceOperator(PerSourceOperator):
    """Render ``sources/<source>/<model>.sql`` for each model the source declares and merge it.

    :param source: a ``SourceConfig`` or an equivalent dict.
    :param sources: several sources instead of `source`, built one after the other, each in its
        own transaction: one that fails does not stop the others (the task fails at the end).
    :param entity_types: the declared entity types (``{"person": {"identifiers": [...], ...}}``).
    :param raw_task_id: the raw task of this source (or these sources) in the same run, whose
        window XCom bounds the batch. Without it, or for a source it has no window of, the batch
        runs up to the raw layer's committed watermark.

    Returns the source's summary; with `sources`, ``{"sources": {name: summary}}``.
    """

    ui_color = "#e3f4e1"

    def __init__(
        self,
        *,
        entity_types: Mapping[str, EntityTypeConfig | Mapping[str, Any]],
        raw_task_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.entity_types = as_entity_types(entity_types)
        self.raw_task_id = raw_task_id

    def execute(self, context: Any) -> dict[str, Any]:
        from airflow_provider_nexus.layers.source import build_source

        todo = self.sources_to_run(context)
        highs = self._raw_highs(context)

        def build(wh: Warehouse, source: SourceConfig, run: RunContext) -> dict[str, Any]:
            engine = self.engine(wh)
            summary = build_source(wh, engine, source, self.entity_types, self.schemas, run, highs.get(source.name))
            self.log.info("source %s: %s", source.name, summary["models"])
            return summary

        summaries = self.each_source(todo, self.run_context(context), build)
        return {"sources": summaries} if self.several else summaries[todo[0].name]

    def _raw_highs(self, context: Any) -> dict[str, Any]:
        """Upper bound of each source's batch: the high of its raw window in this run, if any."""
        if not self.raw_task_id:
            return {}
        pulled = context["ti"].xcom_pull(task_ids=self.raw_task_id)
        if not isinstance(pulled, dict):
            return {}
        self.log.info("window(s) from %s: %s", self.raw_task_id, pulled)
        # one raw task per source pushes its window; one for several, {"sources": {name: window}}
        windows = pulled.get("sources") if "sources" in pulled else {str(pulled.get("source")): pulled}
        return {
            str(name): from_iso(window.get("high"))
            for name, window in (windows or {}).items()
            if isinstance(window, dict) and window.get("high")
        }

    def lineage_tables(self) -> TaskTables:
        return TaskTables.union(source_tables(s, self.schemas, self.has_template) for s in self.sources_ran())
