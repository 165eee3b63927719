"""One template lookup rule, one Jinja environment per (dialect, user dirs).

Lookup for a template name, first hit wins:
  for each user template dir (config order), then the packaged sql/:
      <dir>/<dialect>/<name>, <dir>/default/<name>   (a user dir's root also counts as default)
Macros in `macros/*.sql` along that path are loaded lowest-priority first, so a user's
`normalize_phone` replaces the built-in one everywhere, including inside other built-ins.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jinja2

from airflow_provider_nexus.dialects import Dialect
from airflow_provider_nexus.errors import NexusTemplateError


def packaged_sql_dir() -> Path:
    """The sql/ folder shipped in the wheel (mapped to airflow_provider_nexus/sql), or the repo's."""
    installed = Path(__file__).parent / "sql"
    if installed.is_dir():
        return installed
    try:
        from importlib.resources import files

        resource = Path(str(files("airflow_provider_nexus.sql")))
        if resource.is_dir():
            return resource
    except (ModuleNotFoundError, TypeError):
        pass
    return Path(__file__).resolve().parent.parent / "sql"


class TemplateNotFoundError(NexusTemplateError):
    def __init__(self, name: str, tried: Sequence[Path]) -> None:
        listing = "\n".join(f"  - {p}" for p in tried)
        super().__init__(f"template {name!r} not found; looked in, in order:\n{listing}")
        self.name = name
        self.tried = list(tried)


class _NexusLoader(jinja2.BaseLoader):
    def __init__(self, engine: TemplateEngine) -> None:
        self.engine = engine

    def get_source(self, environment: jinja2.Environment, template: str) -> tuple[str, str, Callable[[], bool]]:
        path = self.engine.find(template)
        mtime = path.stat().st_mtime
        return path.read_text(encoding="utf-8"), str(path), lambda: path.stat().st_mtime == mtime


class TemplateEngine:
    """Render Nexus templates for one dialect with the user's template dirs in front."""

    def __init__(self, dialect: Dialect, user_dirs: Sequence[str | Path] = ()) -> None:
        self.dialect = dialect
        self.user_dirs = [Path(d) for d in user_dirs]
        self.packaged_dir = packaged_sql_dir()
        self.env = jinja2.Environment(
            loader=_NexusLoader(self),
            undefined=jinja2.StrictUndefined,
            autoescape=False,
            keep_trailing_newline=True,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.globals.update(self._helpers())
        self._load_macros()

    # -- lookup ------------------------------------------------------------------------------
    def candidates(self, name: str) -> list[Path]:
        _check_template_name(name)
        paths: list[Path] = []
        for user_dir in self.user_dirs:
            paths += [user_dir / self.dialect.name / name, user_dir / "default" / name, user_dir / name]
        paths += [self.packaged_dir / self.dialect.name / name, self.packaged_dir / "default" / name]
        return paths

    def find(self, name: str) -> Path:
        tried = self.candidates(name)
        for path in tried:
            if path.is_file():
                return path
        raise TemplateNotFoundError(name, tried)

    def exists(self, name: str) -> bool:
        return any(p.is_file() for p in self.candidates(name))

    def is_packaged(self, name: str) -> bool:
        """Whether `name` resolves to the template shipped with Nexus (no user dir overrides it)."""
        return self.find(name).is_relative_to(self.packaged_dir)

    # -- rendering ---------------------------------------------------------------------------
    def render(self, name: str, **context: Any) -> str:
        try:
            template = self.env.get_template(name)
            return template.render(**context)
        except TemplateNotFoundError:
            raise
        except jinja2.UndefinedError as exc:
            raise NexusTemplateError(f"{self._where(name)}: undefined variable: {exc.message}") from None
        except jinja2.TemplateSyntaxError as exc:
            raise NexusTemplateError(
                f"{exc.filename or name}:{exc.lineno}: template syntax error: {exc.message}"
            ) from None

    def _where(self, name: str) -> str:
        try:
            return str(self.find(name))
        except TemplateNotFoundError:
            return name

    # -- globals -----------------------------------------------------------------------------
    def _helpers(self) -> dict[str, Any]:
        d = self.dialect
        return {
            "dialect": d,
            "lit": d.literal,
            "q": d.quote,
            "tbl": d.table,
            "to_timestamp": d.utc_timestamp,
            "to_text": d.cast_text,
            "to_double": lambda expr: f"CAST({expr} AS {d.double_type})",
            "hash_hex": d.hash_hex,
            "normalizer": self._normalizer,
        }

    def _normalizer(self, kind: str) -> Any:
        """The macro `normalize_<kind>`, looked up late so user overrides win."""
        try:
            return self.env.globals[f"normalize_{kind}"]
        except KeyError:
            raise NexusTemplateError(f"no macro normalize_{kind} in any macros/ folder") from None

    def _macro_files(self) -> list[Path]:
        """Macro files, lowest priority first."""
        dirs: list[Path] = [self.packaged_dir / "default", self.packaged_dir / self.dialect.name]
        for user_dir in reversed(self.user_dirs):
            dirs += [user_dir, user_dir / "default", user_dir / self.dialect.name]
        files: list[Path] = []
        for directory in dirs:
            macro_dir = directory / "macros"
            if macro_dir.is_dir():
                files += sorted(macro_dir.glob("*.sql"))
        return files

    def _load_macros(self) -> None:
        for path in self._macro_files():
            try:
                module = self.env.from_string(path.read_text(encoding="utf-8")).module
            except jinja2.TemplateSyntaxError as exc:
                raise NexusTemplateError(f"{path}:{exc.lineno}: macro syntax error: {exc.message}") from None
            for attr in dir(module):
                if not attr.startswith("_"):
                    self.env.globals[attr] = getattr(module, attr)


def _check_template_name(name: str) -> None:
    if name.startswith("/") or ".." in Path(name).parts:
        raise NexusTemplateError(f"template name {name!r} must be relative and stay inside the template dirs")


@functools.lru_cache(maxsize=32)
def _cached_engine(dialect_name: str, user_dirs: tuple[str, ...]) -> TemplateEngine:
    from airflow_provider_nexus.dialects import get_dialect

    return TemplateEngine(get_dialect(dialect_name), user_dirs)


def engine_for(dialect: Dialect, user_dirs: Sequence[str | Path] = ()) -> TemplateEngine:
    """A shared engine per dialect and dirs (Jinja caches compiled templates per environment)."""
    return _cached_engine(dialect.name, tuple(str(d) for d in user_dirs))
