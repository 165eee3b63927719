"""YAML config -> DAG or TaskGroup. Parsing does no database work and renders no SQL."""

from __future__ import annotations

import datetime as dt
import logging
import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, Asset, TaskGroup, TriggerRule

from airflow_provider_nexus.config import PipelineConfig, claim_dag_id, load_config
from airflow_provider_nexus.errors import NexusConfigError, NexusRunFailedError
from airflow_provider_nexus.layers.final import final_tables
from airflow_provider_nexus.operators import (
    NexusCoreOperator,
    NexusFinalOperator,
    NexusRawOperator,
    NexusResolutionOperator,
    NexusSourceOperator,
)
from airflow_provider_nexus.operators.base import NexusBaseOperator

log = logging.getLogger(__name__)

LAYERS = ("raw", "source", "core", "resolution", "final")


class NexusConfigWarning(UserWarning):
    """A pipeline file could not be turned into a DAG (its config-error DAG shows why)."""


def asset_for(config: PipelineConfig, table: str) -> Asset:
    """The Asset of a final table, for downstream DAGs to schedule on."""
    schema = config.schemas.final
    return Asset(
        name=f"nexus.{config.dag_id}.{schema}.{table}", uri=f"nexus://{config.warehouse.conn_id}/{schema}/{table}"
    )


def _common_args(config: PipelineConfig) -> dict[str, Any]:
    args: dict[str, Any] = {
        "conn_id": config.warehouse.conn_id,
        "dialect": config.warehouse.dialect,
        "schemas": config.schemas,
        "template_dirs": [str(p) for p in config.resolved_template_dirs()],
        "full_refresh": config.incremental.full_refresh,
        "known_sources": [s.name for s in config.sources],
    }
    if config.warehouse.pool:
        args["pool"] = config.warehouse.pool
    return args


def nexus_task_group(config: PipelineConfig, group_id: str = "nexus", layers: Sequence[str] = LAYERS) -> TaskGroup:
    """Add the pipeline (or some of its layers) to the DAG being defined, as one TaskGroup.

    Like the factory's DAGs, it gets a `<group_id>_run_check` task that fails the run when one of
    the group's tasks failed: core runs after a failed source (all_done), so the run would
    otherwise end green. The check sits beside the group, not in it, so `group >> task` does not
    wait on it (it is skipped when nothing failed, and a skip would pass on downstream).
    """
    with TaskGroup(group_id=group_id) as group:
        dag = group.dag
        before = set(dag.task_ids) if dag is not None else set()
        _add_layers(config, layers)
    if dag is not None:
        _add_run_check([t for t in dag.tasks if t.task_id not in before], task_id=f"{group_id}_run_check")
    return group


def _add_layers(config: PipelineConfig, layers: Sequence[str]) -> None:
    unknown = [layer for layer in layers if layer not in LAYERS]
    if unknown:
        raise NexusConfigError(f"unknown layer(s) {', '.join(unknown)}; layers are {', '.join(LAYERS)}")
    common = _common_args(config)
    data_dir = str(config.resolved_data_dir())  # once: resolving a path touches the filesystem
    raw_tasks: dict[str, Any] = {}
    source_tasks: dict[str, Any] = {}
    raw_args = {"data_dir": data_dir, "lookback": int(config.incremental.lookback.total_seconds()), **common}
    per_layer = config.granularity == "layer"
    if per_layer:
        # One task per layer loads or builds every source in turn, each source in its own
        # transaction; the source task runs after a failed raw task too, for the sources it loaded.
        if "raw" in layers:
            raw_tasks["raw"] = NexusRawOperator(task_id="raw", sources=config.sources, **raw_args)
        if "source" in layers:
            raw_task = raw_tasks.get("raw")
            source_tasks["source"] = NexusSourceOperator(
                task_id="source",
                sources=config.sources,
                entity_types=config.entity_types,
                raw_task_id=raw_task.task_id if raw_task is not None else None,
                trigger_rule=TriggerRule.ALL_DONE,
                **common,
            )
            if raw_task is not None:
                raw_task >> source_tasks["source"]
    if "raw" in layers and not per_layer:
        with TaskGroup(group_id="raw"):
            for source in config.sources:
                raw_tasks[source.name] = NexusRawOperator(task_id=source.name, source=source, **raw_args)
    if "source" in layers and not per_layer:
        with TaskGroup(group_id="source"):
            for source in config.sources:
                raw_task = raw_tasks.get(source.name)
                source_task = NexusSourceOperator(
                    task_id=source.name,
                    source=source,
                    entity_types=config.entity_types,
                    raw_task_id=raw_task.task_id if raw_task is not None else None,
                    **common,
                )
                if raw_task is not None:
                    raw_task >> source_task
                source_tasks[source.name] = source_task
    core = None
    if "core" in layers:
        core = NexusCoreOperator(
            task_id="core",
            sources=config.sources,
            entity_types=config.entity_types,
            # One failing source must not hold back the others: core reads whatever each source
            # committed, so it runs once every source task has finished either way.
            trigger_rule=TriggerRule.ALL_DONE,
            **common,
        )
        upstream: list[NexusBaseOperator] = list(source_tasks.values()) or list(raw_tasks.values())
        for upstream_task in upstream:
            upstream_task >> core
    resolution_tasks: list[NexusBaseOperator] = []
    if "resolution" in layers:
        with TaskGroup(group_id="resolution"):
            for entity_type in config.entity_types:
                resolve = NexusResolutionOperator(
                    task_id=entity_type,
                    entity_type=entity_type,
                    id_prefix=config.id_prefix(entity_type),
                    noise=config.resolution.noise,
                    max_rounds=config.resolution.max_rounds,
                    **common,
                )
                if core is not None:
                    core >> resolve
                resolution_tasks.append(resolve)
    if "final" in layers:
        final = NexusFinalOperator(
            task_id="final",
            entity_types=config.entity_types,
            outlets=[asset_for(config, t) for t in final_tables(config.entity_types)],
            **common,
        )
        before_final: list[NexusBaseOperator] = resolution_tasks or ([core] if core is not None else [])
        for upstream_task in before_final:
            upstream_task >> final


def build_dag(config: PipelineConfig) -> DAG:
    start = config.start_date
    if not isinstance(start, dt.datetime):
        start = dt.datetime(start.year, start.month, start.day, tzinfo=dt.UTC)
    elif start.tzinfo is None:
        start = start.replace(tzinfo=dt.UTC)
    dag_kwargs: dict[str, Any] = {}
    if config.warehouse.dialect == "duckdb":
        # DuckDB allows one writing process per file: run this DAG's tasks one at a time.
        dag_kwargs["max_active_tasks"] = 1
    with DAG(
        dag_id=config.dag_id,
        description=config.description or f"Nexus pipeline from {config.path.name if config.path else 'config'}",
        schedule=config.schedule,
        start_date=start,
        catchup=config.catchup,
        tags=list(config.tags),
        max_active_runs=1,
        default_args={"retries": config.retries, "retry_delay": dt.timedelta(minutes=1)},
        doc_md=_doc(config),
        **dag_kwargs,
    ) as dag:
        # Layer TaskGroups at the top level: raw.crm, source.crm, core, resolution.person, final.
        _add_layers(config, LAYERS)
        _add_run_check(list(dag.tasks))
    return dag


def _add_run_check(tasks: Sequence[Any], task_id: str = "run_check") -> None:
    """A leaf after `tasks` that fails the DAG run when one of them failed.

    The core layer runs even if a source failed (trigger rule all_done), so the last task can
    succeed while a source failed; without this watcher the run would show green.
    """
    from airflow.providers.standard.operators.python import PythonOperator

    check = PythonOperator(
        task_id=task_id,
        python_callable=_raise_failed,
        trigger_rule=TriggerRule.ONE_FAILED,
        retries=0,
        doc_md="Skipped when every task succeeded; fails the run when one did not.",
    )
    for task in tasks:
        task >> check


def _raise_failed() -> None:
    raise NexusRunFailedError(
        "a task of this run failed (see the red task); the other sources and layers were still processed"
    )


def _doc(config: PipelineConfig) -> str:
    sources = ", ".join(s.name for s in config.sources)
    types = ", ".join(config.entity_types)
    origin = f"`{config.path}`" if config.path else "a config object"
    return f"Nexus pipeline built from {origin}.\n\nSources: {sources}. Entity types: {types}."


def load_dags(directory: str | Path | None = None, strict: bool | None = None) -> dict[str, DAG]:
    """One DAG per *.yml / *.yaml file of `directory` (default: `configs_dir()`). A broken file
    never hides the others.

    A broken file is logged, raised as a warning and stands in the DAG list as a config-error DAG
    (`config_error_dag`) that shows the error: Airflow keeps no warnings of a parse, and an import
    error would hide every DAG of this folder. In strict mode (``[nexus] strict_loading = True``
    or ``strict=True``) the errors are raised after every file was tried, an import error for CI.
    """
    if strict is None:
        strict = _strict_from_airflow_config()
    folder = Path(directory) if directory is not None else configs_dir()
    dags: dict[str, DAG] = {}
    files = sorted([*folder.glob("*.yml"), *folder.glob("*.yaml")])
    dag_files: dict[str, Path] = {}
    broken: dict[Path, str] = {}
    for file in files:
        try:
            config = load_config(file)
            claim_dag_id(dag_files, config, file)
            dags[config.dag_id] = build_dag(config)
        except NexusConfigError as exc:
            broken[file] = str(exc)
        except Exception as exc:  # a bug or an Airflow error must still not hide the other DAGs
            broken[file] = f"{file}: {type(exc).__name__}: {exc}"
    for message in broken.values():
        log.error("Nexus config error:\n%s", message)
        warnings.warn(message, NexusConfigWarning, stacklevel=2)
    if broken and strict:
        raise NexusConfigError("\n".join(broken.values()))
    for file, message in broken.items():
        error_dag = config_error_dag(file, message)
        if error_dag.dag_id not in dags:
            dags[error_dag.dag_id] = error_dag
    return dags


#: dag_id prefix of the DAGs that stand in for broken config files
CONFIG_ERROR_PREFIX = "nexus_config_error__"


def config_error_dag(file: Path, message: str) -> DAG:
    """A DAG named after a broken config file that shows its error in the DAG list and its docs;
    never scheduled, and its one task fails with the error if someone triggers it."""
    from airflow.providers.standard.operators.python import PythonOperator

    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", file.stem)
    with DAG(
        dag_id=CONFIG_ERROR_PREFIX + stem,
        schedule=None,
        description=f"Broken Nexus config {file.name}: {message.splitlines()[0]}"[:500],
        doc_md=f"The Nexus pipeline config `{file}` could not be loaded, so its DAG is missing. "
        f"Fix the file (check it with `nexus validate`); this DAG then goes away.\n\n```\n{message}\n```",
        tags=["nexus", "nexus-config-error"],
    ) as dag:
        PythonOperator(
            task_id="config_error",
            python_callable=_raise_config_error,
            op_args=[message],
            retries=0,
        )
    return dag


def _raise_config_error(message: str) -> None:
    raise NexusConfigError(message)


def configs_dir(default: str | Path | None = None) -> Path:
    """Where the pipeline files are: NEXUS_CONFIGS_DIR, else ``[nexus] configs_dir``, else
    `default`, else the ``configs`` folder in Airflow's DAG folder (``<dags_folder>/configs``)."""
    import os

    configured = os.environ.get("NEXUS_CONFIGS_DIR")
    if configured:
        return Path(configured)
    try:
        from airflow.configuration import conf

        configured = conf.get("nexus", "configs_dir", fallback="") or None
        if not configured and default is None:
            configured = str(Path(conf.get("core", "dags_folder")) / "configs")
    except Exception as exc:
        if default is None:
            raise NexusConfigError(
                "no folder of pipeline files: set NEXUS_CONFIGS_DIR or [nexus] configs_dir, or pass one to load_dags"
            ) from exc
    return Path(configured or str(default))


def _strict_from_airflow_config() -> bool:
    import os

    if os.environ.get("NEXUS_STRICT_LOADING"):
        return os.environ["NEXUS_STRICT_LOADING"].lower() in ("1", "true", "yes")
    try:
        from airflow.configuration import conf

        return conf.getboolean("nexus", "strict_loading", fallback=False)
    except Exception:
        return False
