"""Render a pipeline's SQL without a warehouse: for `nexus render`, golden files and parse checks."""

from __future__ import annotations

import datetime as dt

from airflow_provider_nexus.config import PipelineConfig
from airflow_provider_nexus.dialects import Dialect
from airflow_provider_nexus.layers.common import RunContext
from airflow_provider_nexus.templates import TemplateEngine

RENDERED_LAYERS = ("source", "core", "final")
#: A fixed clock so rendered SQL is byte-for-byte stable (golden files, reviews).
RENDER_TIME = dt.datetime(2024, 1, 1, 0, 0, 0)


def render_layer(
    config: PipelineConfig,
    dialect: Dialect,
    layer: str,
    source: str | None = None,
    model: str | None = None,
    now: dt.datetime = RENDER_TIME,
) -> dict[str, str]:
    """name -> SQL of one layer, as the operators would render it for a batch ending at `now`."""
    engine = TemplateEngine(dialect, config.resolved_template_dirs())
    run = RunContext(run_id="render", now=now)
    out: dict[str, str] = {}
    if layer == "source":
        from airflow_provider_nexus.layers.source import OPTIONAL_MODELS, render_source_model, template_name

        for src in [config.source(source)] if source else config.sources:
            for name in src.models():
                if model and name != model:
                    continue
                if name in OPTIONAL_MODELS and not engine.exists(template_name(src.name, name)):
                    continue
                out[f"{src.name}.{name}"] = render_source_model(engine, src, name, config.schemas, None, run.now)
    elif layer == "core":
        from airflow_provider_nexus.layers.core import CORE_MODELS, render_core_model

        for name in CORE_MODELS:
            if model and name != model:
                continue
            inputs = [
                {
                    "source": s.name,
                    "relation": dialect.table(config.schemas.source, f"{s.name}__{name}"),
                    "low": None,
                    "high": run.now,
                }
                for s in config.sources
                if name in s.models() and (not source or s.name == source)
            ]
            if inputs:
                out[name] = render_core_model(engine, name, inputs, config.entity_types, run)
    elif layer == "final":
        from airflow_provider_nexus.layers.final import render_final

        for table, sql in render_final(engine, config.entity_types, config.schemas, run).items():
            if not model or table == model:
                out[table] = sql
    else:
        raise ValueError(f"layer {layer!r} has no templates to render; rendered layers: {', '.join(RENDERED_LAYERS)}")
    return out


def render_pipeline(config: PipelineConfig, dialect: Dialect) -> dict[str, str]:
    """'<layer>/<name>' -> SQL for every template the pipeline uses."""
    return {
        f"{layer}/{name}": sql
        for layer in RENDERED_LAYERS
        for name, sql in render_layer(config, dialect, layer).items()
    }
