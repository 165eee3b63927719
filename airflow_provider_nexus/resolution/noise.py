"""Noise control for identity resolution: blocked values and hub limits.

* A **blocked** identifier (an exact value or a regular-expression match on the normalised
  value, for one identifier type or for any type) links nothing and is left out of the identity
  map.
* A **hub** is a value seen in more distinct ``(source, edge_id)`` groups than its type's limit
  (a shared office phone, a support inbox). It creates no edges and stays in the map as its own
  singleton entity with ``is_hub = TRUE``.

Both are written to ``nexus_resolution_audit`` by every run. All values and patterns are rendered
through the dialect's string literal, never pasted into SQL.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_nexus.config import NoiseConfig
from airflow_provider_nexus.dialects.base import Dialect


@dataclass(frozen=True)
class NoiseRules:
    """Which identifier values never link (blocked) and when a value is a hub.

    ``NoiseRules()`` blocks nothing and has no hub limit; ``NoiseRules.defaults()`` gives the
    recommended starting point. ``hub_limits`` maps an identifier type to its limit;
    ``default_hub_limit`` applies to the other types (None: no limit).
    """

    blocked_values: tuple[tuple[str | None, str], ...] = ()
    blocked_patterns: tuple[tuple[str | None, str], ...] = ()
    hub_limits: Mapping[str, int] = field(default_factory=dict)
    default_hub_limit: int | None = None

    def __post_init__(self) -> None:
        for itype, pattern in self.blocked_patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"blocked pattern {pattern!r} for {itype!r} is not a valid regex: {exc}") from exc
        for itype, limit in self.hub_limits.items():
            if not isinstance(limit, int) or limit < 1:
                raise ValueError(f"hub limit for {itype!r} must be a positive integer, got {limit!r}")
        if self.default_hub_limit is not None and (
            not isinstance(self.default_hub_limit, int) or self.default_hub_limit < 1
        ):
            raise ValueError(f"default hub limit must be a positive integer, got {self.default_hub_limit!r}")

    # -- construction ------------------------------------------------------------------------
    @classmethod
    def build(
        cls,
        *,
        blocked_values: Mapping[str | None, Iterable[str]] | Iterable[tuple[str | None, str]] = (),
        blocked_patterns: Mapping[str | None, Iterable[str]] | Iterable[tuple[str | None, str]] = (),
        hub_limits: Mapping[str, int] | None = None,
        default_hub_limit: int | None = None,
    ) -> NoiseRules:
        """Build from ``{type or None: [values]}`` mappings or ``(type, value)`` pairs."""
        return cls(
            blocked_values=_pairs(blocked_values),
            blocked_patterns=_pairs(blocked_patterns),
            hub_limits=dict(hub_limits or {}),
            default_hub_limit=default_hub_limit,
        )

    @classmethod
    def defaults(cls) -> NoiseRules:
        """Placeholders and role accounts that should never join two people, hub limit 50."""
        return cls.build(
            blocked_values={
                None: ["unknown", "n/a", "na", "null", "none", "undefined", "-", "0"],
                "email": [
                    "test@example.com",
                    "test@test.com",
                    "email@example.com",
                    "user@example.com",
                    "noreply@example.com",
                ],
                # as written, and as core's default phone normaliser stores them (digits, with the
                # North American country code on ten-digit numbers): resolution sees the latter
                "phone": [
                    "0000000000",
                    "+0000000000",
                    "10000000000",
                    "1234567890",
                    "+11234567890",
                    "11234567890",
                    "9999999999",
                    "19999999999",
                ],
            },
            blocked_patterns={
                None: [r"(?i)^\s*(unknown|n/?a|null|none|undefined|nil)\s*$"],
                "email": [
                    r"^noreply@",
                    r"^no-reply@",
                    r"^no_reply@",
                    r"^donotreply@",
                    r"^do-not-reply@",
                    r"^mailer-daemon@",
                ],
                "phone": [r"^\+?0+$", r"^1?0+$"],
            },
            hub_limits={},
            default_hub_limit=50,
        )

    # -- SQL -------------------------------------------------------------------------------
    def hub_limit(self, identifier_type: str) -> int | None:
        return self.hub_limits.get(identifier_type, self.default_hub_limit)

    def blocked_predicate(self, dialect: Dialect, type_expr: str, value_expr: str) -> str:
        """A boolean SQL expression: TRUE when the identifier is blocked."""
        terms: list[str] = []
        by_type: dict[str | None, list[str]] = {}
        for itype, value in self.blocked_values:
            by_type.setdefault(itype, []).append(value)
        for itype, values in sorted(by_type.items(), key=lambda kv: (kv[0] is not None, kv[0] or "")):
            in_list = f"{value_expr} IN ({dialect.literal_list(sorted(set(values)))})"
            terms.append(in_list if itype is None else f"({type_expr} = {dialect.literal(itype)} AND {in_list})")
        for itype, pattern in self.blocked_patterns:
            match = dialect.regexp_matches(value_expr, pattern)
            terms.append(match if itype is None else f"({type_expr} = {dialect.literal(itype)} AND {match})")
        if not terms:
            return "FALSE"
        return "(" + " OR ".join(terms) + ")"

    def hub_limit_expr(self, dialect: Dialect, type_expr: str) -> str | None:
        """A SQL expression giving the hub limit of each row's type (None: no limit at all)."""
        if self.lowest_hub_limit is None:
            return None
        default = "NULL" if self.default_hub_limit is None else dialect.literal(self.default_hub_limit)
        if not self.hub_limits:
            return default
        whens = " ".join(
            f"WHEN {dialect.literal(t)} THEN {dialect.literal(n)}" for t, n in sorted(self.hub_limits.items())
        )
        return f"CASE {type_expr} {whens} ELSE {default} END"

    @property
    def lowest_hub_limit(self) -> int | None:
        """The smallest limit of any type (None: no limit at all): only values seen in more
        groups than this can be hubs, so hub detection can look at those alone."""
        limits = [*self.hub_limits.values()]
        if self.default_hub_limit is not None:
            limits.append(self.default_hub_limit)
        return min(limits) if limits else None

    @property
    def is_empty(self) -> bool:
        """True when the rules block nothing and make no hubs: no identifier is ever flagged."""
        return not (self.blocked_values or self.blocked_patterns) and self.lowest_hub_limit is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "blocked_values": [list(p) for p in self.blocked_values],
            "blocked_patterns": [list(p) for p in self.blocked_patterns],
            "hub_limits": dict(self.hub_limits),
            "default_hub_limit": self.default_hub_limit,
        }


def _pairs(
    spec: Mapping[str | None, Iterable[str]] | Iterable[tuple[str | None, str]],
) -> tuple[tuple[str | None, str], ...]:
    if isinstance(spec, Mapping):
        out = [(itype, str(v)) for itype, values in spec.items() for v in values]
    else:
        out = [(itype, str(v)) for itype, v in spec]
    return tuple(out)


def noise_rules_from_config(config: NoiseConfig) -> NoiseRules:
    """Rules from the `resolution.noise` section: the defaults (unless turned off) plus the file's."""
    base = NoiseRules.defaults() if config.use_defaults else NoiseRules()
    values: dict[str | None, list[str]] = {k: list(v) for k, v in config.blocked_values.items()}
    patterns: dict[str | None, list[str]] = {k: list(v) for k, v in config.blocked_patterns.items()}
    configured = NoiseRules.build(
        blocked_values=values,
        blocked_patterns=patterns,
        hub_limits=config.hub_limits,
        default_hub_limit=config.default_hub_limit,
    )
    return NoiseRules(
        blocked_values=base.blocked_values + configured.blocked_values,
        blocked_patterns=base.blocked_patterns + configured.blocked_patterns,
        hub_limits={**base.hub_limits, **configured.hub_limits},
        default_hub_limit=config.default_hub_limit,
    )
