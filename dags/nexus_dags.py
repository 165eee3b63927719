"""One DAG per pipeline file in configs/ (or [nexus] configs_dir / NEXUS_CONFIGS_DIR).

Parsing this file reads YAML and builds tasks only: no database connection, no SQL rendering.
"""

from __future__ import annotations

from pathlib import Path

from airflow_provider_nexus.factory import configs_dir, load_dags

# A deployment that installs the package needs only `globals().update(load_dags())`; this
# repository's pipeline files sit beside this file unless the settings name another folder.
globals().update(load_dags(configs_dir(default=Path(__file__).parent / "configs")))
