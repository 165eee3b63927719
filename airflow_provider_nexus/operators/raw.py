"""NexusRawOperator: copy new raw rows of one source (or several) into the raw layer, push windows."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from airflow_provider_nexus.config import SourceConfig, parse_duration
from airflow_provider_nexus.errors import SourcesFailedError
from airflow_provider_nexus.layers.common import RunContext
from airflow_provider_nexus.lineage import TaskTables, raw_tables
from airflow_provider_nexus.operators.base import PerSourceOperator
from airflow_provider_nexus.warehouse import Warehouse


class NexusRawOperator(PerSourceOperator):
    """Load the raw tables of a source (files by glob, or landed tables by synced-at).

    :param source: a ``SourceConfig`` or a dict such as
        ``{"name": "crm", "raw": {"contacts": {"path": "crm/*.csv", "key": "contact_id"}}}``.
    :param sources: several sources instead of `source`, loaded one after the other, each in its
        own transaction: one that fails does not stop the others (the task fails at the end).
    :param data_dir: folder that relative file globs are resolved against.
    :param lookback: how far before the stored watermark a landed table is re-read ("10m").

    Returns (and pushes as XCom) ``{"source", "low", "high", "rows", "tables"}``; with `sources`,
    ``{"sources": {name: that dict}}``.
    """

    ui_color = "#fdf1d6"

    def __init__(
        self,
        *,
        data_dir: str | Path = ".",
        lookback: str | int | None = "10m",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.data_dir = str(data_dir)
        # a source's own lookback wins, zero included
        self.lookbacks = {
            s.name: parse_duration(s.lookback if s.lookback is not None else (lookback if lookback is not None else 0))
            for s in self.sources
        }
        #: Landed tables as the last execute() found them (source -> table -> ``schema.table``).
        self._landed: dict[str, dict[str, str]] = {}

    @property
    def lookback(self) -> dt.timedelta:
        return self.lookbacks[self.source.name]

    def execute(self, context: Any) -> dict[str, Any]:
        from airflow_provider_nexus.layers.raw import load_source

        todo = self.sources_to_run(context)
        # a new dict: the task runner's copy of this operator shares the DAG's attributes
        self._landed = {}

        def load(wh: Warehouse, source: SourceConfig, run: RunContext) -> dict[str, Any]:
            window = load_source(wh, source, self.schemas, Path(self.data_dir), self.lookbacks[source.name], run)
            for table, counts in window["tables"].items():
                self.log.info("raw %s.%s: %s", source.name, table, counts)
            self._landed[source.name] = {t: c["landed"] for t, c in window["tables"].items() if c.get("landed")}
            return window

        try:
            windows = self.each_source(todo, self.run_context(context), load)
        except SourcesFailedError as failed:
            # the committed sources' windows still bound this run's source task (it runs after a
            # failed raw task too)
            ti = context.get("ti")
            if ti is not None:
                ti.xcom_push(key="return_value", value={"sources": failed.done})
            raise
        return {"sources": windows} if self.several else windows[todo[0].name]

    def lineage_tables(self) -> TaskTables:
        return TaskTables.union(
            raw_tables(s, self.schemas, self.data_dir, self._landed.get(s.name)) for s in self.sources_ran()
        )
