"""Typed models of a pipeline YAML file, and a loader whose errors name file, line and key."""

from __future__ import annotations

import datetime as dt
import difflib
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    PrivateAttr,
    Tag,
    ValidationError,
    model_validator,
)

from airflow_provider_nexus.dialects.base import SAFE_NAME
from airflow_provider_nexus.errors import NexusConfigError

# -- small typed building blocks -------------------------------------------------------------


def _safe_name(value: str) -> str:
    if not SAFE_NAME.match(value):
        raise ValueError(
            f"{value!r} is not a safe name: use lower-case letters, digits and underscores, "
            "starting with a letter or underscore (at most 63 characters)"
        )
    return value


SafeName = Annotated[str, AfterValidator(_safe_name)]


def _no_separator(value: str) -> str:
    if "__" in value:
        # raw tables are named <source>__<table>: 'shop' + 'eu__orders' and 'shop__eu' + 'orders'
        # would both write nexus_raw.shop__eu__orders
        raise ValueError(f"{value!r} contains '__', which separates source and table in raw table names")
    return value


#: A source or raw table name: safe, and without the separator of the two in table names.
PartName = Annotated[str, AfterValidator(_safe_name), AfterValidator(_no_separator)]

_DURATION = re.compile(r"\A\s*(\d+)\s*(s|sec|m|min|h|d)\s*\Z")
_UNIT_SECONDS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}


def parse_duration(value: Any) -> dt.timedelta:
    """'10m', '2h', '30s', '1d' or a number of seconds."""
    if isinstance(value, dt.timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError("expected a duration like '10m', '2h' or '30s'")
    try:
        if isinstance(value, (int, float)):
            seconds = dt.timedelta(seconds=value)
        else:
            match = _DURATION.match(str(value))
            if not match:
                raise ValueError(f"{value!r} is not a duration like '10m', '2h', '30s' or '1d'")
            seconds = dt.timedelta(seconds=int(match.group(1)) * _UNIT_SECONDS[match.group(2)])
    except (OverflowError, TypeError):  # inf, nan, or beyond what a timedelta holds
        raise ValueError(f"{value!r} is not a duration a timedelta can hold") from None
    if seconds < dt.timedelta(0):
        # a negative lookback would start the window after the watermark and skip rows
        raise ValueError(f"{value!r} is negative; a duration must be zero or more")
    return seconds


Duration = Annotated[dt.timedelta, BeforeValidator(parse_duration)]

#: Schedules Airflow takes besides cron expressions (its presets and the two special ones).
SCHEDULE_PRESETS = ("@once", "@continuous", "@hourly", "@daily", "@weekly", "@monthly", "@quarterly", "@yearly")


def _schedule(value: str | None) -> str | None:
    """A cron expression or a preset, checked here rather than when Airflow imports the DAG
    file (where the error would name neither this file nor the key)."""
    if value is None:
        return None
    if value.startswith("@"):
        if value not in SCHEDULE_PRESETS:
            raise ValueError(
                f"{value!r} is not one of Airflow's presets {', '.join(SCHEDULE_PRESETS)}{_suggest(value, SCHEDULE_PRESETS)}"
            )
        return value
    from croniter import croniter  # Airflow's own cron parser

    if not croniter.is_valid(value):
        raise ValueError(f"{value!r} is not a valid cron expression (minute hour day-of-month month day-of-week)")
    return value


Schedule = Annotated[str | None, AfterValidator(_schedule)]


def _table_ref(value: str) -> str:
    parts = value.split(".")
    if len(parts) not in (1, 2) or not all(SAFE_NAME.match(p) for p in parts):
        raise ValueError(f"{value!r} is not a table reference of the form schema.table with safe names")
    return value


TableRef = Annotated[str, AfterValidator(_table_ref)]


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# -- sections ----------------------------------------------------------------------------------


def _dialect_name(value: str) -> str:
    from airflow_provider_nexus.dialects import dialect_names

    known = dialect_names()
    if value not in known:
        raise ValueError(f"no Nexus dialect {value!r}{_suggest(value, known)}; supported: {', '.join(known)}")
    return value


class WarehouseConfig(StrictModel):
    conn_id: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,250}$")
    #: Override the dialect otherwise taken from the connection's conn_type.
    dialect: Annotated[str, AfterValidator(_dialect_name)] | None = None
    #: Airflow pool for every task: give DuckDB DAGs that share a file one pool of one slot.
    pool: str | None = None


class SchemasConfig(StrictModel):
    raw: SafeName = "nexus_raw"
    source: SafeName = "nexus_source"
    core: SafeName = "nexus_core"
    resolution: SafeName = "nexus_resolution"
    final: SafeName = "nexus"


class IncrementalConfig(StrictModel):
    lookback: Duration = dt.timedelta(minutes=10)
    full_refresh: bool = False


NormalizerName = Literal["email", "phone", "domain", "lower", "trim", "none"]


def _no_repeats(names: list[str]) -> list[str]:
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"{', '.join(map(repr, repeated))} listed more than once")
    return names


#: Names that become columns: each at most once (DuckDB would add 'email_1', PostgreSQL fail).
ColumnNames = Annotated[list[SafeName], AfterValidator(_no_repeats)]


class EntityTypeConfig(StrictModel):
    identifiers: ColumnNames = Field(min_length=1)
    traits: ColumnNames = []
    #: Prefix of generated entity ids ("per", "grp", or the type name).
    id_prefix: SafeName | None = None
    #: Which normaliser each identifier type uses; by default chosen from its name.
    normalize: dict[SafeName, NormalizerName] = {}

    @model_validator(mode="after")
    def _columns_do_not_clash(self) -> EntityTypeConfig:
        reserved = {"id", "entity_type", "first_seen_at", "last_seen_at", "sources", "_updated_at", "is_hub"}
        for name in [*self.identifiers, *self.traits]:
            if name in reserved:
                raise ValueError(f"{name!r} is reserved for a column of the final entity table")
        both = sorted(set(self.identifiers) & set(self.traits))
        if both:
            raise ValueError(f"{', '.join(both)} cannot be both an identifier type and a trait")
        unknown = sorted(set(self.normalize) - set(self.identifiers))
        if unknown:
            raise ValueError(f"normalize names {', '.join(unknown)}, which are not identifier types of this entity")
        return self


#: Python regex syntax that not every warehouse runs: lookarounds, backreferences, named and
#: atomic groups, and inline flags anywhere but at the start.
_UNPORTABLE_REGEX = re.compile(r"\(\?(?:[=!]|<[=!]|P|>|<[A-Za-z])|\\[1-9]|(?<!^)\(\?[a-zA-Z]+[):]")


class NoiseConfig(StrictModel):
    """Values that must never link entities, and when a value is too common to be trusted."""

    use_defaults: bool = True
    blocked_values: dict[SafeName, list[str]] = {}
    blocked_patterns: dict[SafeName, list[str]] = {}
    hub_limits: dict[SafeName, Annotated[int, Field(ge=1)]] = {}
    default_hub_limit: int = Field(default=50, ge=1)

    @model_validator(mode="after")
    def _patterns_compile(self) -> NoiseConfig:
        for patterns in self.blocked_patterns.values():
            for pattern in patterns:
                try:
                    re.compile(pattern)
                except re.error as exc:
                    raise ValueError(f"blocked pattern {pattern!r} is not a valid regex: {exc}") from None
                unportable = _UNPORTABLE_REGEX.search(pattern)
                if unportable:
                    raise ValueError(
                        f"blocked pattern {pattern!r} uses {unportable.group(0)!r}, which the warehouses' regex "
                        "engines (RE2 on DuckDB and BigQuery, POSIX on Snowflake) do not have: no lookaround, "
                        "backreference, named group, or inline flag except a leading (?i), (?m) or (?s)"
                    )
        return self


class ResolutionConfig(StrictModel):
    max_rounds: int = Field(default=100, ge=1)
    noise: NoiseConfig = NoiseConfig()


class RawFileTable(StrictModel):
    """Files (CSV, Parquet, NDJSON) matched by a glob, relative to data_dir."""

    path: str = Field(min_length=1)
    format: Literal["csv", "parquet", "ndjson"] | None = None
    key: SafeName | list[SafeName]

    def file_format(self) -> str:
        if self.format:
            return self.format
        suffix = self.path.lower().rsplit(".", 1)[-1]
        return {
            "csv": "csv",
            "parquet": "parquet",
            "pq": "parquet",
            "ndjson": "ndjson",
            "jsonl": "ndjson",
            "json": "ndjson",
        }.get(suffix, "csv")

    def key_columns(self) -> list[str]:
        return [self.key] if isinstance(self.key, str) else list(self.key)


class RawSourceTable(StrictModel):
    """A table an ingestion tool (Fivetran, Airbyte, Stitch...) lands with a synced-at column."""

    table: TableRef
    key: SafeName | list[SafeName]
    synced_at: SafeName = "synced_at"

    def key_columns(self) -> list[str]:
        return [self.key] if isinstance(self.key, str) else list(self.key)


def has_memberships(entity_types: Iterable[str]) -> bool:
    """Memberships link a person to a group, so they exist only where both types are declared."""
    return {"person", "group"} <= set(entity_types)


def _raw_kind(value: Any) -> str:
    if isinstance(value, dict):
        return "raw_landed_table" if "table" in value else "raw_files"
    return "raw_landed_table" if isinstance(value, RawSourceTable) else "raw_files"


RawTable = Annotated[
    Annotated[RawFileTable, Tag("raw_files")] | Annotated[RawSourceTable, Tag("raw_landed_table")],
    Discriminator(_raw_kind),
]
SOURCE_MODELS = ("events", "identifiers", "traits", "memberships")


class SourceConfig(StrictModel):
    name: PartName
    raw: dict[PartName, RawTable] = Field(min_length=1)
    events: bool = True
    persons: bool = False
    groups: bool = False
    memberships: bool = False
    #: Custom entity types (declared under entity_types) this source emits.
    entity_types: list[SafeName] = []
    lookback: Duration | None = None

    def emitted_entity_types(self) -> list[str]:
        types = []
        if self.persons:
            types.append("person")
        if self.groups:
            types.append("group")
        return types + [t for t in self.entity_types if t not in types]

    def models(self) -> list[str]:
        """The source-layer models this source produces."""
        out = []
        if self.events:
            out.append("events")
        if self.emitted_entity_types():
            out += ["identifiers", "traits"]
        if self.memberships:
            out.append("memberships")
        return out


#: Entity type names whose table (nexus_<name>s) is one of the final layer's fixed tables.
_TAKEN_ENTITY_NAMES = frozenset({"event", "entity_identifier", "entity_trait", "event_participant", "membership"})


class PipelineConfig(StrictModel):
    dag_id: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,200}$")
    description: str | None = None
    schedule: Schedule = None
    start_date: dt.datetime | dt.date = dt.date(2024, 1, 1)
    catchup: bool = False
    tags: list[str] = ["nexus"]
    retries: int = Field(default=1, ge=0)
    warehouse: WarehouseConfig
    schemas: SchemasConfig = SchemasConfig()
    template_dirs: list[str] = []
    data_dir: str | None = None
    incremental: IncrementalConfig = IncrementalConfig()
    resolution: ResolutionConfig = ResolutionConfig()
    #: Tasks of the raw and source layers: one per source (`source`) or one per layer (`layer`).
    granularity: Literal["source", "layer"] = "source"
    entity_types: dict[SafeName, EntityTypeConfig] = Field(min_length=1)
    sources: list[SourceConfig] = Field(min_length=1)

    _path: Path | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _cross_checks(self) -> PipelineConfig:
        seen: set[str] = set()
        for index, source in enumerate(self.sources):
            if source.name in seen:
                raise _LocatedValueError(("sources", index, "name"), f"duplicate source name {source.name!r}")
            seen.add(source.name)
            for entity in source.emitted_entity_types():
                if entity not in self.entity_types:
                    key = "persons" if entity == "person" else "groups" if entity == "group" else "entity_types"
                    raise _LocatedValueError(
                        ("sources", index, key),
                        f"source {source.name!r} emits entity type {entity!r}, which is not declared under "
                        f"entity_types (declared: {', '.join(sorted(self.entity_types))})",
                    )
            if source.memberships and not has_memberships(self.entity_types):
                raise _LocatedValueError(
                    ("sources", index, "memberships"),
                    "memberships need both 'person' and 'group' declared under entity_types",
                )
        for name in self.entity_types:
            if name in _TAKEN_ENTITY_NAMES:
                raise _LocatedValueError(
                    ("entity_types", name),
                    f"entity type {name!r} would be written to nexus_{name}s, a table the final layer already "
                    "writes; choose another name",
                )
        # a rule for an identifier type no entity has (a typo) would silently never apply
        declared = sorted({i for entity in self.entity_types.values() for i in entity.identifiers})
        noise = self.resolution.noise
        rule_types: list[tuple[str, Iterable[str]]] = [
            ("blocked_values", noise.blocked_values),
            ("blocked_patterns", noise.blocked_patterns),
            ("hub_limits", noise.hub_limits),
        ]
        for section, itypes in rule_types:
            for itype in itypes:
                if itype not in declared:
                    raise _LocatedValueError(
                        ("resolution", "noise", section, itype),
                        f"{itype!r} is not an identifier type of any entity type{_suggest(itype, declared)} "
                        f"(declared: {', '.join(declared)})",
                    )
        return self

    # -- paths relative to the file --------------------------------------------------------
    @property
    def path(self) -> Path | None:
        return self._path

    def base_dir(self) -> Path:
        return self._path.parent if self._path else Path.cwd()

    def resolved_template_dirs(self) -> list[Path]:
        return [(self.base_dir() / d).resolve() for d in self.template_dirs]

    def resolved_data_dir(self) -> Path:
        return (self.base_dir() / (self.data_dir or ".")).resolve()

    def source(self, name: str) -> SourceConfig:
        for source in self.sources:
            if source.name == name:
                return source
        raise NexusConfigError(
            f"unknown source {name!r}{_suggest(name, [s.name for s in self.sources])}; "
            f"known: {', '.join(s.name for s in self.sources)}"
        )

    def id_prefix(self, entity_type: str) -> str:
        configured = self.entity_types[entity_type].id_prefix
        return configured or {"person": "per", "group": "grp"}.get(entity_type, entity_type)


class _LocatedValueError(ValueError):
    """A cross-field error that knows which key it belongs to."""

    def __init__(self, loc: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.loc = loc


# -- loading with locations ------------------------------------------------------------------


def _suggest(word: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _node_at(node: yaml.Node | None, loc: Sequence[str | int]) -> tuple[yaml.Node | None, yaml.Node | None]:
    """Walk a composed YAML tree along a pydantic location: (value node, key node) found deepest."""
    key_node = None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                if k.value == str(part):
                    node, key_node = v, k
                    break
            else:
                return node, key_node
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node, key_node = node.value[part], None
        else:
            return node, key_node
    return node, key_node


def _allowed_keys(model: type[BaseModel], loc: Sequence[str | int]) -> list[str]:
    """Field names of the model that owns the key at `loc` (for did-you-mean)."""
    current: Any = model
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            if field is None:
                return []
            models = _models_in(field.annotation)
            if not models:
                return []
            if len(models) > 1:  # a union (raw file or table): offer every member's keys
                return sorted({name for m in models for name in m.model_fields})
            current = models[0]
        else:
            return []
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models inside list[...] / dict[..., ...] / unions / Annotated."""
    import typing

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    for arg in typing.get_args(annotation):
        for model in _models_in(arg):
            if model not in found:
                found.append(model)
    return found


def _format_errors(path: str, root: yaml.Node | None, exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p in _UNION_TAGS))
        ctx_error = (err.get("ctx") or {}).get("error")
        if isinstance(ctx_error, _LocatedValueError):
            loc = ctx_error.loc
        value_node, key_node = _node_at(root, loc)
        mark_node = key_node or value_node
        line = mark_node.start_mark.line + 1 if mark_node is not None else 1
        where = ".".join(str(p) for p in loc) or "(top level)"
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = f"unknown key {str(loc[-1])!r}{_suggest(str(loc[-1]), _allowed_keys(PipelineConfig, loc))}"
        lines.append(f"{path}:{line}: {where}: {message}")
    return "\n".join(dict.fromkeys(lines))


# pydantic puts the union member's name in the location of union errors; these are not YAML keys.
_UNION_TAGS = {
    "raw_files",
    "raw_landed_table",
    "function-after[_safe_name(), str]",
    "str",
    "list[function-after[_safe_name(), str]]",
}


#: libyaml when PyYAML was built with it (about 20x faster), else the pure-Python loader.
_SafeLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _parse_yaml(text: str) -> tuple[yaml.Node | None, Any]:
    """Parse once: the node tree (for line numbers in errors) and the data built from it."""
    loader = _SafeLoader(text)
    try:
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
    finally:
        loader.dispose()
    return root, data


def claim_dag_id(claimed: dict[str, Path], config: PipelineConfig, file: Path) -> None:
    """Record that `file` defines `config.dag_id`; an error naming both files if another did."""
    if config.dag_id in claimed:
        raise NexusConfigError(f"{file}: dag_id {config.dag_id!r} is already used by {claimed[config.dag_id]}")
    claimed[config.dag_id] = file


def _duplicate_keys(root: yaml.Node | None) -> list[str]:
    """'line: key.path: duplicate key (first at line N)' for each key repeated in a mapping
    (YAML loaders keep the last value silently, so a second table of the same name would
    replace the first)."""
    found: list[str] = []
    stack: list[tuple[yaml.Node, str]] = [(root, "")] if root is not None else []
    while stack:
        node, where = stack.pop()
        if isinstance(node, yaml.MappingNode):
            first_line: dict[str, int] = {}
            for key, value in node.value:
                name = str(key.value) if isinstance(key, yaml.ScalarNode) else "?"
                path = f"{where}.{name}" if where else name
                line = key.start_mark.line + 1
                if name in first_line and name != "<<":
                    found.append(f"{line}: {path}: duplicate key (first at line {first_line[name]})")
                first_line.setdefault(name, line)
                stack.append((value, path))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((item, f"{where}.{i}") for i, item in enumerate(node.value))
    return sorted(found, key=lambda f: int(f.split(":", 1)[0]))


def parse_config(text: str, path: str = "<string>") -> PipelineConfig:
    """Validate YAML text; raise NexusConfigError with 'file:line: key: message' lines."""
    try:
        root, data = _parse_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        raise NexusConfigError(f"{path}:{line}: not valid YAML: {exc}") from None
    duplicates = _duplicate_keys(root)
    if duplicates:
        raise NexusConfigError("\n".join(f"{path}:{d}" for d in duplicates))
    if not isinstance(data, dict):
        raise NexusConfigError(f"{path}:1: expected a mapping of pipeline settings at the top level")
    try:
        config = PipelineConfig.model_validate(data)
    except ValidationError as exc:
        raise NexusConfigError(_format_errors(path, root, exc)) from None
    return config


def load_config(path: str | Path) -> PipelineConfig:
    """Load and validate one pipeline file."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise NexusConfigError(f"{file}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        line = exc.object[: exc.start].count(b"\n") + 1
        raise NexusConfigError(f"{file}:{line}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    config = parse_config(text, str(file))
    config._path = file.resolve()
    return config


def json_schema() -> dict[str, Any]:
    return PipelineConfig.model_json_schema()
