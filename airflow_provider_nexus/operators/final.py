"""NexusFinalOperator: bring the final customer model up to date with core and the identity maps."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow_provider_nexus.config import EntityTypeConfig
from airflow_provider_nexus.lineage import TaskTables, final_layer_tables
from airflow_provider_nexus.operators.base import NexusBaseOperator, as_entity_types


class NexusFinalOperator(NexusBaseOperator):
    """Write nexus_events, nexus_<type>s, memberships, participants and the long-form tables.

    The first run builds them in full; later runs replace only the rows that changed (see
    ``layers.final``). Returns ``{"tables": {table: rows written}, "mode", "reason", ...}``.
    """

    ui_color = "#fbe0e6"

    def __init__(self, *, entity_types: Mapping[str, EntityTypeConfig | Mapping[str, Any]], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.entity_types = as_entity_types(entity_types)

    def execute(self, context: Any) -> dict[str, Any]:
        from airflow_provider_nexus.layers.final import build_final

        run = self.run_context(context)
        with self.warehouse() as wh, self.exclusive(wh, "final", run):
            summary = build_final(wh, self.engine(wh), self.entity_types, self.schemas, run)
        for table, rows in summary["tables"].items():
            self.log.info("%s.%s: %d rows", self.schemas.final, table, rows)
        return summary

    def lineage_tables(self) -> TaskTables:
        return final_layer_tables(self.entity_types, self.schemas)
