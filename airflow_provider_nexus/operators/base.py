"""What every Nexus operator shares: connection, dialect, templates, and the SQL that ran."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from airflow_provider_nexus.config import EntityTypeConfig, SchemasConfig, SourceConfig
from airflow_provider_nexus.errors import (
    NexusConfigError,
    SourcesFailedError,
    SourcesRejectedError,
    WarehouseCancelledError,
)
from airflow_provider_nexus.layers.common import RunContext, utcnow
from airflow_provider_nexus.warehouse import Warehouse

if TYPE_CHECKING:
    from airflow_provider_nexus.lineage import TaskTables

#: The SQL shown in the UI is capped so a huge batch cannot bloat the metadata database.
MAX_SHOWN_SQL = 200_000
T = TypeVar("T")


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
        known_sources: Sequence[str] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        #: Every source of the pipeline, to check names given in a run's conf.
        self.known_sources = list(known_sources)
        self.conn_id = conn_id
        self.dialect_name = dialect
        self.schemas = schemas if isinstance(schemas, SchemasConfig) else SchemasConfig(**dict(schemas or {}))
        self.template_dirs = [str(d) for d in template_dirs]
        self.full_refresh = full_refresh
        #: Output only: the SQL this task ran, filled in by execute().
        self.compiled_sql = ""
        #: The warehouse session execute() has open, for on_kill.
        self._open_warehouse: Warehouse | None = None
        #: on_kill was called: a task handling several sources starts no further one.
        self._killed = False
        #: Scopes whose claim another run took over during this execute() (see `exclusive`).
        self._lost_claims: set[str] = set()

    @contextmanager
    def warehouse(self, *, append: bool = False, header: str = "") -> Iterator[Warehouse]:
        """A session of the task's warehouse; its SQL becomes `compiled_sql` (after a `header`
        line, and added to what earlier sessions of this execute() ran, with `append`)."""
        with Warehouse.open(self.conn_id, self.dialect_name) as wh:
            self._open_warehouse = wh
            try:
                yield wh
            finally:
                self._open_warehouse = None
                shown = wh.shown_sql()
                if header:
                    shown = f"-- {header}\n\n{shown}"
                if append and self.compiled_sql:
                    shown = f"{self.compiled_sql}\n\n{shown}"
                self.compiled_sql = shown if len(shown) <= MAX_SHOWN_SQL else shown[:MAX_SHOWN_SQL] + "\n-- (truncated)"

    def on_kill(self) -> None:
        """Stop the warehouse statement this task is running (Airflow calls this when the task
        is killed). The statement fails, its transaction rolls back, and no watermark moves."""
        self._killed = True
        wh = self._open_warehouse
        if wh is not None and wh.cancel("the task was killed"):
            self.log.info("asked %s to cancel the running statement", wh.dialect.name)

    # -- OpenLineage (called by Airflow's OpenLineage provider when it is installed) --------------
    def lineage_tables(self) -> TaskTables:
        """The tables (and files) this task reads and writes, from its config."""
        raise NotImplementedError

    def get_openlineage_facets_on_start(self) -> Any:
        return self._lineage(sql="")

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        return self._lineage(sql=self.compiled_sql)

    def has_template(self, source: str, model: str) -> bool:
        """Whether a source's model template exists (for lineage: optional models may have none)."""
        from airflow_provider_nexus.dialects import dialect_for_connection, get_dialect
        from airflow_provider_nexus.layers.source import template_name
        from airflow_provider_nexus.templates import engine_for

        dialect = get_dialect(self.dialect_name) if self.dialect_name else dialect_for_connection(self.conn_id)
        return engine_for(dialect, self.template_dirs).exists(template_name(source, model))

    def _lineage(self, sql: str) -> Any:
        from airflow_provider_nexus.lineage import operator_lineage

        try:
            tables = self.lineage_tables()
        except Exception:  # lineage never fails a task
            self.log.warning("could not list the tables of %s for OpenLineage", self.task_id, exc_info=True)
            return None
        return operator_lineage(self.conn_id, self.dialect_name, tables, sql)

    def engine(self, wh: Warehouse) -> Any:
        from airflow_provider_nexus.templates import engine_for

        return engine_for(wh.dialect, self.template_dirs)

    def run_context(self, context: Mapping[str, Any]) -> RunContext:
        conf = _run_conf(context)
        full_refresh = conf.get("full_refresh", self.full_refresh)
        if not isinstance(full_refresh, bool):  # bool("false") is True
            raise NexusConfigError(f"run conf 'full_refresh' must be true or false, got {full_refresh!r}")
        return RunContext(run_id=str(context.get("run_id") or "manual"), now=utcnow(), full_refresh=full_refresh)

    def selected_sources(self, context: Mapping[str, Any]) -> list[str] | None:
        """Sources named by the run conf (``{"sources": ["crm"]}``), or None for all."""
        names = _run_conf(context).get("sources")
        if names is None:
            return None
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise NexusConfigError(f"run conf 'sources' must be a list of source names, got {names!r}")
        unknown = [n for n in names if self.known_sources and n not in self.known_sources]
        if unknown:
            raise NexusConfigError(
                f"run conf names unknown source(s) {', '.join(map(repr, unknown))}; "
                f"this pipeline's sources: {', '.join(self.known_sources)}"
            )
        return names

    def skip_unless_selected(self, context: Mapping[str, Any], source: str) -> None:
        """Skip the task unless the run's conf selects `source` (or selects none)."""
        selected = self.selected_sources(context)
        if selected is not None and source not in selected:
            raise AirflowSkipException(f"source {source!r} is not in this run's conf 'sources' {selected}")

    @contextmanager
    def exclusive(self, wh: Warehouse, scope: str, run: RunContext) -> Iterator[None]:
        """Hold `scope` for this run, so two DAG runs never write the same source or layer at once.

        The claim is renewed while the task runs; if another run took it over all the same (it
        went unrenewed too long), this task's statements stop.
        """
        from airflow_provider_nexus.state import StateStore, renewing

        state = StateStore(wh, self.schemas.core)
        state.ensure()
        # the DAG as well as the run: two DAGs of one config share scheduled run ids
        dag_id = self.dag_id if self.has_dag() else "adhoc"
        holder = f"{dag_id}/{run.run_id}"

        def lost(reason: str) -> None:
            self._lost_claims.add(scope)
            wh.stop(reason)

        with state.lock(scope, holder, run.now):
            if not wh.dialect.renews_claims:
                yield
                return
            with renewing(lambda: Warehouse.open(self.conn_id, wh.dialect), self.schemas.core, scope, holder, lost):
                yield


def _run_conf(context: Mapping[str, Any]) -> Mapping[str, Any]:
    dag_run = context.get("dag_run")
    conf = getattr(dag_run, "conf", None) if dag_run is not None else None
    return conf or {}


def as_source(value: SourceConfig | Mapping[str, Any]) -> SourceConfig:
    return value if isinstance(value, SourceConfig) else SourceConfig.model_validate(dict(value))


SourceArg = SourceConfig | Mapping[str, Any]


def one_or_more_sources(source: SourceArg | None, sources: Sequence[SourceArg] | None) -> list[SourceConfig]:
    """`source` (one) or `sources` (several, one task per layer): exactly one of the two."""
    if (source is None) == (sources is None):
        raise NexusConfigError("give either 'source' (one source) or 'sources' (several), not both or neither")
    chosen = [as_source(source)] if source is not None else [as_source(s) for s in sources or ()]
    if not chosen:
        raise NexusConfigError("'sources' is empty")
    names = [s.name for s in chosen]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise NexusConfigError(f"'sources' names {', '.join(map(repr, repeated))} more than once")
    return chosen


def as_entity_types(value: Mapping[str, EntityTypeConfig | Mapping[str, Any]]) -> dict[str, EntityTypeConfig]:
    return {
        name: cfg if isinstance(cfg, EntityTypeConfig) else EntityTypeConfig.model_validate(dict(cfg))
        for name, cfg in value.items()
    }


class PerSourceOperator(NexusBaseOperator):
    """An operator given one `source` or several `sources` (one task per layer)."""

    def __init__(
        self, *, source: SourceArg | None = None, sources: Sequence[SourceArg] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.several = sources is not None
        self.sources = one_or_more_sources(source, sources)
        #: The sources the last execute() ran (the run's conf may select some), for lineage.
        self._ran: list[str] | None = None

    @property
    def source(self) -> SourceConfig:
        """The source of a task given one `source`."""
        if self.several:
            raise AttributeError("this task handles several sources: see `sources`")
        return self.sources[0]

    def sources_to_run(self, context: Mapping[str, Any]) -> list[SourceConfig]:
        """The task's sources that the run's conf selects; skips the task when it selects none."""
        selected = self.selected_sources(context)
        chosen = [s for s in self.sources if selected is None or s.name in selected]
        if not chosen:
            names = ", ".join(repr(s.name) for s in self.sources)
            raise AirflowSkipException(f"source(s) {names} not in this run's conf 'sources' {selected}")
        self._ran = [s.name for s in chosen]
        return chosen

    def sources_ran(self) -> list[SourceConfig]:
        """The sources the last execute() ran (every one before it ran)."""
        return [s for s in self.sources if self._ran is None or s.name in self._ran]

    def each_source(
        self,
        sources: Sequence[SourceConfig],
        run: RunContext,
        work: Callable[[Warehouse, SourceConfig, RunContext], T],
    ) -> dict[str, T]:
        """`work` for each source, each in a session and claim of its own.

        With several sources (one task per layer), a source that fails does not stop the others:
        theirs are committed, and the task fails at the end naming each failed source (the error's
        `done` holds the committed sources' results). It is retried unless every failure is one a
        retry cannot fix. A killed or timed-out task stops at once; a source whose claim another
        run took over is a failure of that source alone.
        """
        done: dict[str, T] = {}
        failed: dict[str, Exception] = {}
        # a new set: the task runner's copy of this operator shares the DAG's attributes
        self._lost_claims = set()
        for index, source in enumerate(sources):
            if self._killed:
                raise WarehouseCancelledError(
                    f"the task was killed; not started: {', '.join(s.name for s in sources[index:])}"
                )
            scope = f"source:{source.name}"
            # Each source claims and writes at its own time: after earlier sources took longer than
            # a claim's timeout, a claim dated from the task's start would be stale when taken.
            own_run = dataclasses.replace(run, now=utcnow()) if index else run
            try:
                header = f"source {source.name}" if self.several else ""
                with self.warehouse(append=index > 0, header=header) as wh, self.exclusive(wh, scope, own_run):
                    done[source.name] = work(wh, source, own_run)
            except WarehouseCancelledError as exc:
                if len(sources) == 1 or scope not in self._lost_claims:
                    raise  # killed or timed out: nothing more runs
                self.log.error("source %s stopped: %s; the other sources go on", source.name, exc)
                failed[source.name] = exc
            except Exception as exc:
                if len(sources) == 1:
                    raise
                self.log.exception("source %s failed; the other sources go on", source.name)
                failed[source.name] = exc
        if failed:
            listed = "; ".join(f"{name}: {type(exc).__name__}: {exc}" for name, exc in failed.items())
            committed = ", ".join(done) or "none"
            permanent = all(isinstance(exc, AirflowFailException) for exc in failed.values())
            error = SourcesRejectedError if permanent else SourcesFailedError
            raise error(
                f"{len(failed)} of {len(sources)} sources failed ({listed}); committed: {committed}", done
            ) from next(iter(failed.values()))
        return done
