"""A 2,000-identifier chain resolves to one entity through the pipeline's DAG (real Airflow)."""

from __future__ import annotations

import datetime as dt
import json
import random
import shutil
from pathlib import Path

import duckdb
import pytest

from airflow_provider_nexus.airflow_run import airflow_env, run_dag_test

pytestmark = pytest.mark.airflow

REPO = Path(__file__).resolve().parent.parent
CHAIN = 2000


def test_long_chain_is_one_entity(tmp_path: Path) -> None:
    project = tmp_path / "chain"
    shutil.copytree(Path(__file__).parent / "fixtures" / "chain", project)
    (project / "configs").mkdir()
    (project / "chain.yml").rename(project / "configs" / "chain.yml")
    text = (project / "configs" / "chain.yml").read_text()
    (project / "configs" / "chain.yml").write_text(
        text.replace("[sql]", "[../sql]").replace("data_dir: data", "data_dir: ../data")
    )
    shutil.copy(REPO / "dags" / "nexus_dags.py", project / "nexus_dags.py")
    # Account ids are shuffled, so the chain order has nothing to do with the ids' order.
    accounts = [f"acct_{n:05d}" for n in random.Random(3).sample(range(100_000), CHAIN)]
    links = [(f"l{i}", accounts[i], accounts[i + 1]) for i in range(CHAIN - 1)]
    random.Random(4).shuffle(links)
    (project / "data").mkdir()
    with (project / "data" / "links_0001.csv").open("w") as fh:
        fh.write("link_id,from_account,to_account\n")
        fh.writelines(f"{a},{b},{c}\n" for a, b, c in links)
    warehouse = tmp_path / "chain.duckdb"
    env = airflow_env(
        tmp_path / "airflow_home",
        project,
        {"AIRFLOW_CONN_NEXUS_CHAIN_DUCKDB": json.dumps({"conn_type": "duckdb", "host": str(warehouse)})},
    )
    result = run_dag_test(env, "nexus_chain", dt.datetime(2024, 1, 2))
    assert result["state"] == "success", result.get("log", "")[-6000:]
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        entities = con.execute(
            "SELECT count(DISTINCT entity_id), count(*) FROM nexus.nexus_entity_identifiers"
        ).fetchall()
        persons = con.execute("SELECT count(*) FROM nexus.nexus_persons").fetchall()
    finally:
        con.close()
    assert entities == [(1, CHAIN)]
    assert persons == [(1,)]
