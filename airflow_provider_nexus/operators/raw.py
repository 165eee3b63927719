"""NexusRawOperator: copy one source's new raw rows into the raw layer and push its window."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from airflow_provider_nexus.config import SourceConfig, parse_duration
from airflow_provider_nexus.lineage import TaskTables, raw_tables
from airflow_provider_nexus.operators.base import NexusBaseOperator, as_source


class NexusRawOperator(NexusBaseOperator):
    """Load the raw tables of one source (files by glob, or landed tables by synced-at).

    :param source: a ``SourceConfig`` or a dict such as
        ``{"name": "crm", "raw": {"contacts": {"path": "crm/*.csv", "key": "contact_id"}}}``.
    :param data_dir: folder that relative file globs are resolved against.
    :param lookback: how far before the stored watermark a landed table is re-read ("10m").

    Returns (and pushes as XCom) ``{"source", "low", "high", "rows", "tables"}``.
    """

    ui_color = "#fdf1d6"

    def __init__(
        self,
        *,
        source: SourceConfig | Mapping[str, Any],
        data_dir: str | Path = ".",
        lookback: str | int | None = "10m",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.source = as_source(source)
        self.data_dir = str(data_dir)
        # a source's own lookback wins, zero included
        chosen = self.source.lookback if self.source.lookback is not None else lookback
        self.lookback = parse_duration(chosen if chosen is not None else 0)
        #: Landed tables as the last execute() found them (``schema.table``), for lineage.
        self._landed: dict[str, str] = {}

    def execute(self, context: Any) -> dict[str, Any]:
        from airflow_provider_nexus.layers.raw import load_source

        self.skip_unless_selected(context, self.source.name)
        run = self.run_context(context)
        with self.warehouse() as wh, self.exclusive(wh, f"source:{self.source.name}", run):
            window = load_source(wh, self.source, self.schemas, Path(self.data_dir), self.lookback, run)
        for table, counts in window["tables"].items():
            self.log.info("raw %s.%s: %s", self.source.name, table, counts)
        # a new dict: the task runner's copy of this operator shares the DAG's attributes
        self._landed = {t: c["landed"] for t, c in window["tables"].items() if c.get("landed")}
        return window

    def lineage_tables(self) -> TaskTables:
        return raw_tables(self.source, self.schemas, self.data_dir, self._landed)
