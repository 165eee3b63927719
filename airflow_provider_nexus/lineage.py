"""OpenLineage for Nexus tasks: the tables each task reads and writes, known from its config.

Airflow's OpenLineage provider asks an operator for ``get_openlineage_facets_on_start`` and
``get_openlineage_facets_on_complete``. Nexus answers from its layer graph, so no SQL is parsed
and no warehouse is queried. Dataset names follow the OpenLineage naming spec through the
warehouse hook's own ``get_openlineage_database_info`` (``postgres://host:port`` with
``database.schema.table``, ``snowflake://account``, ``bigquery`` with ``project.dataset.table``...);
DuckDB, whose hook has none, is named by its database file.

Lineage never fails or slows a task: the OpenLineage packages are imported only here and only
when the provider asks, and a lineage that cannot be built is logged as a warning and left out.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_provider_nexus.config import EntityTypeConfig, RawFileTable, SchemasConfig, SourceConfig

if TYPE_CHECKING:
    from airflow_provider_nexus.dialects.base import Dialect

log = logging.getLogger(__name__)

#: The SQL job facet keeps at most this many characters, cut at a statement's end.
MAX_LINEAGE_SQL = 65_536
#: Connections whose lineage already failed in this process: warned once, not every event.
_warned: set[str] = set()
#: Whether a source has a model's template (optional models may have none).
HasTemplate = Callable[[str, str], bool]


@dataclass(frozen=True)
class WarehouseTable:
    """A table (or view) of the pipeline's warehouse; `schema` None: the session's own."""

    schema: str | None
    name: str


@dataclass(frozen=True)
class FileSet:
    """The files one raw table is loaded from (a glob on the worker's disk)."""

    pattern: str


Relation = WarehouseTable | FileSet


@dataclass(frozen=True)
class TaskTables:
    inputs: list[Relation] = field(default_factory=list)
    outputs: list[Relation] = field(default_factory=list)

    @staticmethod
    def union(parts: Iterable[TaskTables]) -> TaskTables:
        """The tables of several tasks' worth of work (one task per layer), each listed once."""
        inputs: dict[Relation, None] = {}
        outputs: dict[Relation, None] = {}
        for part in parts:
            inputs.update(dict.fromkeys(part.inputs))
            outputs.update(dict.fromkeys(part.outputs))
        return TaskTables(list(inputs), list(outputs))


# -- what each layer reads and writes ----------------------------------------------------------
def raw_tables(
    source: SourceConfig, schemas: SchemasConfig, data_dir: str, landed: Mapping[str, str] | None = None
) -> TaskTables:
    """Files or landed tables in, raw tables out. `landed` (raw table -> ``schema.table``) names
    the landed tables the last run found; one configured without a schema is left out until then
    (its schema is the session's, known only once connected)."""
    from airflow_provider_nexus.layers.raw import raw_table_name

    inputs: list[Relation] = []
    for table, spec in source.raw.items():
        if isinstance(spec, RawFileTable):
            inputs.append(FileSet(str((Path(data_dir) / spec.path).absolute())))
        else:
            schema, _, name = (landed or {}).get(table, spec.table).rpartition(".")
            if schema:
                inputs.append(WarehouseTable(schema, name))
    outputs: list[Relation] = [WarehouseTable(schemas.raw, raw_table_name(source.name, t)) for t in source.raw]
    return TaskTables(inputs, outputs)


def _models(source: SourceConfig, has_template: HasTemplate) -> list[str]:
    """The source-layer models a source builds: an optional one only where its template exists."""
    from airflow_provider_nexus.layers.source import OPTIONAL_MODELS

    return [m for m in source.models() if m not in OPTIONAL_MODELS or has_template(source.name, m)]


def source_tables(source: SourceConfig, schemas: SchemasConfig, has_template: HasTemplate) -> TaskTables:
    """A source's raw tables in; its source-layer models and the rejected-rows table out."""
    from airflow_provider_nexus.layers.raw import raw_table_name
    from airflow_provider_nexus.layers.source import REJECTED

    return TaskTables(
        [WarehouseTable(schemas.raw, raw_table_name(source.name, t)) for t in source.raw],
        [
            *(WarehouseTable(schemas.source, f"{source.name}__{m}") for m in _models(source, has_template)),
            WarehouseTable(schemas.source, REJECTED),
        ],
    )


def _core_log(schemas: SchemasConfig) -> list[Relation]:
    """The core event log: each model's table and the copies of the rows it replaced."""
    from airflow_provider_nexus.layers.common import retracted_table_name
    from airflow_provider_nexus.layers.core import CORE_MODELS

    return [
        *(WarehouseTable(schemas.core, f"nexus_{m}") for m in CORE_MODELS),
        *(WarehouseTable(schemas.core, retracted_table_name(m)) for m in CORE_MODELS),
    ]


def core_tables(sources: Sequence[SourceConfig], schemas: SchemasConfig, has_template: HasTemplate) -> TaskTables:
    """Every source's models in; the core event log (and rejected rows) out."""
    from airflow_provider_nexus.layers.source import REJECTED

    return TaskTables(
        [WarehouseTable(schemas.source, f"{s.name}__{m}") for s in sources for m in _models(s, has_template)],
        [*_core_log(schemas), WarehouseTable(schemas.source, REJECTED)],
    )


def resolution_tables(entity_type: str, schemas: SchemasConfig) -> TaskTables:
    """Core identifiers (and those replaced) in; the entity type's identity map, the resolution
    log and audit out."""
    from airflow_provider_nexus.resolution.resolve import AUDIT_TABLE, LOG_TABLE, RETRACTED_TABLE, map_table_name

    return TaskTables(
        [WarehouseTable(schemas.core, "nexus_identifiers"), WarehouseTable(schemas.core, RETRACTED_TABLE)],
        [
            WarehouseTable(schemas.resolution, map_table_name(entity_type)),
            WarehouseTable(schemas.resolution, LOG_TABLE),
            WarehouseTable(schemas.resolution, AUDIT_TABLE),
        ],
    )


def final_layer_tables(entity_types: Mapping[str, EntityTypeConfig], schemas: SchemasConfig) -> TaskTables:
    """The core event log, the identity maps and the resolution log in; the final tables (and
    the edge entities they are built from, kept between runs) out."""
    from airflow_provider_nexus.layers.final import EDGE_ENTITIES, final_tables
    from airflow_provider_nexus.resolution.resolve import LOG_TABLE, map_table_name

    return TaskTables(
        [
            *_core_log(schemas),
            *(WarehouseTable(schemas.resolution, map_table_name(t)) for t in entity_types),
            WarehouseTable(schemas.resolution, LOG_TABLE),
        ],
        [WarehouseTable(schemas.final, t) for t in [*final_tables(dict(entity_types)), EDGE_ENTITIES]],
    )


# -- OpenLineage datasets ----------------------------------------------------------------------
@dataclass(frozen=True)
class DatasetSource:
    """Where a warehouse's tables live in OpenLineage terms: the namespace, the database that
    prefixes each table's ``schema.table`` (None where names have no database part), and whether
    names are upper-cased (Snowflake stores unquoted names so, and Nexus's are unquoted there)."""

    namespace: str
    database: str | None
    uppercase: bool = False


def dataset_source(dialect: Dialect, conn_id: str) -> DatasetSource | None:
    """The OpenLineage namespace of a connection's warehouse, from the dialect (None: no stable
    one, such as an in-memory database)."""
    return dialect.lineage_source(dialect.make_hook(conn_id), conn_id)


def dataset_name(where: DatasetSource, table: WarehouseTable) -> str:
    name = ".".join(p for p in (where.database, table.schema, table.name) if p)
    return name.upper() if where.uppercase else name


def shown_sql(sql: str, limit: int = MAX_LINEAGE_SQL) -> str:
    """`sql` whole if it fits `limit`, else cut after the last whole statement that does."""
    if len(sql) <= limit:
        return sql
    cut = sql.rfind(";\n", 0, limit)
    return sql[: cut + 1] if cut > 0 else ""


def operator_lineage(conn_id: str, dialect: str | None, tables: TaskTables, sql: str = "") -> Any:
    """An ``OperatorLineage`` of `tables` (and the SQL that ran, if any), or None when the
    OpenLineage provider is missing or the lineage cannot be built (logged, never raised)."""
    try:
        from airflow.providers.openlineage.extractors import OperatorLineage
        from openlineage.client.event_v2 import Dataset
        from openlineage.client.facet_v2 import sql_job
    except ImportError:  # the provider calls this only when installed; a direct caller may not have it
        log.debug("OpenLineage is not installed; no lineage for connection %s", conn_id)
        return None
    try:
        from airflow_provider_nexus.dialects import dialect_for_connection, get_dialect

        resolved = get_dialect(dialect) if dialect else dialect_for_connection(conn_id)
        where = dataset_source(resolved, conn_id)
        if where is None:
            log.debug("no OpenLineage datasets: the %s warehouse of %s has no stable name", resolved.name, conn_id)
            return None

        def dataset(relation: Relation) -> Any:
            if isinstance(relation, FileSet):
                return Dataset(namespace="file", name=relation.pattern)
            return Dataset(namespace=where.namespace, name=dataset_name(where, relation))

        query = shown_sql(sql)
        return OperatorLineage(
            inputs=[dataset(r) for r in tables.inputs],
            outputs=[dataset(r) for r in tables.outputs],
            job_facets={"sql": sql_job.SQLJobFacet(query=query, dialect=resolved.sqlglot_name)} if query else {},
        )
    except Exception as exc:
        # once per connection and process: a broken lineage setup should not flood every task log
        if conn_id not in _warned:
            _warned.add(conn_id)
            log.warning("could not build the OpenLineage datasets of connection %s: %s", conn_id, exc)
        log.debug("OpenLineage datasets of connection %s", conn_id, exc_info=True)
        return None
