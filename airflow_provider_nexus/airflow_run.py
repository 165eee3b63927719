"""Run a DAG through real Airflow (`dag.test()`) in a fresh process with its own AIRFLOW_HOME.

Used by `nexus demo` and by the end-to-end tests. Each run is a new process, as on a worker: the
DAG file is parsed again, Airflow's settings come from the environment given here, and nothing
leaks between runs but the warehouse and Airflow's own metadata database.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def airflow_env(airflow_home: Path, dags_folder: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__") and not k.startswith("AIRFLOW_CONN_")}
    env.update(
        {
            "AIRFLOW_HOME": str(airflow_home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
            "NEXUS_STRICT_LOADING": "true",
        }
    )
    env.update(extra or {})
    return env


def ensure_metadata_db(env: Mapping[str, str]) -> None:
    """Create Airflow's SQLite metadata database on first use."""
    home = Path(env["AIRFLOW_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    if (home / "airflow.db").exists():
        return
    proc = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"], env=dict(env), capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"airflow db migrate failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")


def run_dag_test(
    env: Mapping[str, str],
    dag_id: str,
    logical_date: dt.datetime,
    conf: Mapping[str, Any] | None = None,
    timeout: float = 1800,
) -> dict[str, Any]:
    """`dag.test()` in a child process; returns {"state", "tasks": {task_id: state}, "log"}."""
    ensure_metadata_db(env)
    cmd = [
        sys.executable,
        "-m",
        "airflow_provider_nexus.airflow_run",
        "--dag-id",
        dag_id,
        "--logical-date",
        logical_date.isoformat(),
        "--conf",
        json.dumps(dict(conf or {})),
    ]
    proc = subprocess.run(cmd, env=dict(env), capture_output=True, text=True, timeout=timeout, check=False)
    marker = "NEXUS_RESULT "
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(marker):
            result: dict[str, Any] = json.loads(line[len(marker) :])
            result["log"] = proc.stdout[-20000:] + proc.stderr[-20000:]
            return result
    raise RuntimeError(
        f"dag.test() for {dag_id} did not report a result (exit {proc.returncode}):\n{proc.stdout[-8000:]}\n{proc.stderr[-8000:]}"
    )


def _child(dag_id: str, logical_date: str, conf: dict[str, Any]) -> dict[str, Any]:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    if bag.import_errors:
        return {
            "state": "import_error",
            "tasks": {},
            "import_errors": {str(k): str(v) for k, v in bag.import_errors.items()},
        }
    dag = bag.dags.get(dag_id)
    if dag is None:
        return {"state": "missing", "tasks": {}, "dags": sorted(bag.dags)}
    when = dt.datetime.fromisoformat(logical_date)
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    run = dag.test(logical_date=when, run_conf=conf or None)
    tasks = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    return {"state": str(run.state), "run_id": run.run_id, "tasks": tasks}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dag-id", required=True)
    parser.add_argument("--logical-date", required=True)
    parser.add_argument("--conf", default="{}")
    args = parser.parse_args(argv)
    result = _child(args.dag_id, args.logical_date, json.loads(args.conf))
    print("NEXUS_RESULT " + json.dumps(result), flush=True)
    return 0 if result["state"] == "success" else 1


if __name__ == "__main__":
    sys.exit(main())
