"""One DAG per pipeline file in configs/ (or [nexus] configs_dir / NEXUS_CONFIGS_DIR).

Parsing this file reads YAML and builds tasks only: no database connection, no SQL rendering.
"""

from __future__ import annotations

import os
from pathlib import Path

from airflow_provider_nexus.factory import load_dags


def _configs_dir() -> Path:
    configured = os.environ.get("NEXUS_CONFIGS_DIR")
    if not configured:
        try:
            from airflow.configuration import conf

            configured = conf.get("nexus", "configs_dir", fallback="") or None
        except Exception:
            configured = None
    return Path(configured) if configured else Path(__file__).parent / "configs"


globals().update(load_dags(_configs_dir()))
