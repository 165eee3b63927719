"""NexusResolutionOperator: resolve one entity type's identifiers into entities."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow_provider_nexus.config import NoiseConfig
from airflow_provider_nexus.lineage import TaskTables, resolution_tables
from airflow_provider_nexus.operators.base import NexusBaseOperator

RESOLUTION_SCOPE = "__core__"


class NexusResolutionOperator(NexusBaseOperator):
    """Exact connected components over shared edge ids, with stable ids and a resolution log.

    :param entity_type: e.g. ``person``, ``group`` or a custom type.
    :param id_prefix: prefix of entity ids (``per``, ``grp``; default the type name).
    :param noise: blocked values and hub limits (``NoiseConfig`` or dict).
    :param max_rounds: safety cap on connected-component rounds; reaching it fails the task.
    """

    ui_color = "#fff4c2"

    def __init__(
        self,
        *,
        entity_type: str,
        id_prefix: str | None = None,
        noise: NoiseConfig | Mapping[str, Any] | None = None,
        max_rounds: int = 100,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        from airflow_provider_nexus.dialects.base import check_name

        self.entity_type = check_name(entity_type, "entity type")
        self.id_prefix = id_prefix or {"person": "per", "group": "grp"}.get(entity_type, entity_type)
        self.noise = noise if isinstance(noise, NoiseConfig) else NoiseConfig.model_validate(dict(noise or {}))
        self.max_rounds = max_rounds

    def execute(self, context: Any) -> dict[str, Any]:
        from airflow_provider_nexus.resolution import pending_change, resolve_entity_type, rules_fingerprint
        from airflow_provider_nexus.resolution.noise import noise_rules_from_config
        from airflow_provider_nexus.state import StateStore

        run = self.run_context(context)
        layer = f"resolution:{self.entity_type}"
        with self.warehouse() as wh, self.exclusive(wh, layer, run):
            # The watermark is read under the claim: one read before it could be a run behind
            # a run that held the claim meanwhile, and would move the watermark back.
            state = StateStore(wh, self.schemas.core)
            since = None if run.full_refresh else state.get(RESOLUTION_SCOPE, layer)
            noise = noise_rules_from_config(self.noise)
            pending, high = pending_change(
                wh,
                self.schemas.core,
                self.entity_type,
                since,
                resolution_schema=self.schemas.resolution,
                fingerprint=rules_fingerprint(self.entity_type, self.id_prefix, noise),
            )
            if not pending:
                self.log.info("%s: no identifiers added or replaced since %s, same rules", self.entity_type, since)
                return {"entity_type": self.entity_type, "new": 0}

            def advance_watermark(session: Any) -> None:
                if high is not None:
                    state.set(RESOLUTION_SCOPE, layer, high, run.run_id, run.now)

            # the watermark commits in the same transaction as the resolution's writes
            summary = resolve_entity_type(
                wh,
                entity_type=self.entity_type,
                id_prefix=self.id_prefix,
                core_schema=self.schemas.core,
                resolution_schema=self.schemas.resolution,
                run_id=run.run_id,
                resolved_at=run.now,
                noise=noise,
                max_rounds=self.max_rounds,
                full_refresh=run.full_refresh,
                since=since,
                before_commit=advance_watermark,
            )
        result = summary.to_dict()
        self.log.info("resolution %s: %s", self.entity_type, result)
        return result

    def lineage_tables(self) -> TaskTables:
        return resolution_tables(self.entity_type, self.schemas)
