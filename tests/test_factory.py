"""DAG factory: shape, assets, isolation of broken files, strict mode, no work at parse time."""

from __future__ import annotations

import datetime as dt
import runpy
import shutil
import warnings
from pathlib import Path

import pytest

from airflow_provider_nexus.config import load_config
from airflow_provider_nexus.errors import NexusConfigError
from airflow_provider_nexus.factory import NexusConfigWarning, asset_for, build_dag, load_dags, nexus_task_group

REPO = Path(__file__).resolve().parent.parent


def test_dag_shape(mini_project: Path) -> None:
    dag = build_dag(load_config(mini_project / "mini.yml"))
    assert set(dag.task_ids) == {
        "raw.shop",
        "source.shop",
        "core",
        "resolution.person",
        "resolution.group",
        "final",
        "run_check",
    }
    assert dag.get_task("run_check").upstream_task_ids == set(dag.task_ids) - {"run_check"}
    assert dag.get_task("source.shop").upstream_task_ids == {"raw.shop"}
    assert dag.get_task("core").upstream_task_ids == {"source.shop"}
    assert str(dag.get_task("core").trigger_rule) in ("all_done", "TriggerRule.ALL_DONE")
    assert dag.get_task("final").upstream_task_ids == {"resolution.person", "resolution.group"}
    assert dag.get_task("source.shop").raw_task_id == "raw.shop"  # type: ignore[attr-defined]
    assert dag.max_active_runs == 1
    assert dag.max_active_tasks == 1  # DuckDB: one writer at a time
    outlets = {a.uri for a in dag.get_task("final").outlets}
    assert "nexus://nexus_mini_duckdb/nexus/nexus_persons" in outlets
    assert asset_for(load_config(mini_project / "mini.yml"), "nexus_persons").uri in outlets


def test_one_task_per_layer(mini_project: Path) -> None:
    """`granularity: layer`: the raw and source layers of every source in one task each."""
    demo = load_config(REPO / "dags" / "configs" / "nexus_demo.yml")
    dag = build_dag(demo.model_copy(update={"granularity": "layer"}))
    resolution = {f"resolution.{t}" for t in demo.entity_types}
    assert set(dag.task_ids) == {"raw", "source", "core", *resolution, "final", "run_check"}
    raw, source = dag.get_task("raw"), dag.get_task("source")
    assert [s.name for s in raw.sources] == [s.name for s in source.sources] == [s.name for s in demo.sources]  # type: ignore[attr-defined]
    assert source.upstream_task_ids == {"raw"} and source.raw_task_id == "raw"  # type: ignore[attr-defined]
    # the source task builds the sources the raw task loaded even when another one failed
    assert source.trigger_rule == "all_done" and dag.get_task("core").upstream_task_ids == {"source"}
    assert dag.get_task("run_check").upstream_task_ids == set(dag.task_ids) - {"run_check"}


def test_task_group_in_an_existing_dag(mini_project: Path) -> None:
    from airflow.providers.standard.operators.empty import EmptyOperator
    from airflow.sdk import DAG

    config = load_config(mini_project / "mini.yml")
    with DAG("users_dag", schedule=None, start_date=dt.datetime(2024, 1, 1, tzinfo=dt.UTC)) as dag:
        start = EmptyOperator(task_id="start")
        group = nexus_task_group(config, group_id="customer_model", layers=["raw", "source", "core"])
        start >> group
    assert "customer_model.raw.shop" in dag.task_ids and "customer_model.core" in dag.task_ids
    assert not any(t.startswith("customer_model.final") for t in dag.task_ids)
    assert dag.get_task("customer_model.source.shop").raw_task_id == "customer_model.raw.shop"  # type: ignore[attr-defined]
    # a failed source must fail the run (core runs after it regardless): a check beside the group
    # watches every task of it, and is no leaf of the group that `group >> task` would wait on
    check = dag.get_task("customer_model_run_check")
    group_tasks = {t for t in dag.task_ids if t.startswith("customer_model.")}
    assert check.trigger_rule == "one_failed" and check.upstream_task_ids == group_tasks
    assert check.task_id not in {t.task_id for t in group.get_leaves()}


def test_unknown_layer_is_an_error(mini_project: Path) -> None:
    from airflow.sdk import DAG

    with DAG("x", schedule=None), pytest.raises(NexusConfigError, match="unknown layer"):
        nexus_task_group(load_config(mini_project / "mini.yml"), layers=["raw", "gold"])


def _configs(tmp_path: Path, mini_project: Path) -> Path:
    folder = tmp_path / "configs"
    folder.mkdir()
    text = (
        (mini_project / "mini.yml")
        .read_text()
        .replace("template_dirs: [sql]", f"template_dirs: [{mini_project / 'sql'}]")
    )
    (folder / "a_good.yml").write_text(text)
    (folder / "b_broken.yml").write_text(
        text.replace("dag_id: nexus_mini", "dag_id: other").replace("persons: true", "persns: true")
    )
    (folder / "c_good.yml").write_text(text.replace("dag_id: nexus_mini", "dag_id: nexus_mini_2"))
    return folder


def test_broken_file_does_not_hide_the_others(tmp_path: Path, mini_project: Path) -> None:
    folder = _configs(tmp_path, mini_project)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dags = load_dags(folder, strict=False)
    assert sorted(dags) == ["nexus_config_error__b_broken", "nexus_mini", "nexus_mini_2"]
    messages = [str(w.message) for w in caught if issubclass(w.category, NexusConfigWarning)]
    assert len(messages) == 1 and "b_broken.yml:" in messages[0] and "did you mean 'persons'?" in messages[0]


def test_a_broken_file_stands_in_the_dag_list_with_its_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, mini_project: Path
) -> None:
    """Airflow 3 stores no warning raised while a DAG file is parsed, and an import error would
    hide the good DAGs of the folder too: the broken file gets a DAG of its own that shows the
    error. Parsed here by Airflow's DagBag and serialized as the DAG processor does."""
    from airflow.dag_processing.dagbag import DagBag
    from airflow.serialization.serialized_objects import DagSerialization

    configs = _configs(tmp_path, mini_project)
    folder = tmp_path / "dags"
    folder.mkdir()
    (folder / "nexus_dags.py").write_text(
        f"from airflow_provider_nexus.factory import load_dags\nglobals().update(load_dags({str(configs)!r}))\n"
    )
    monkeypatch.setenv("NEXUS_STRICT_LOADING", "false")
    bag = DagBag(dag_folder=str(folder))
    assert not bag.import_errors
    assert sorted(bag.dags) == ["nexus_config_error__b_broken", "nexus_mini", "nexus_mini_2"]
    error_dag = bag.dags["nexus_config_error__b_broken"]
    assert "b_broken.yml" in (error_dag.description or "")
    assert "unknown key 'persns' (did you mean 'persons'?)" in (error_dag.doc_md or "")
    assert "nexus-config-error" in error_dag.tags
    assert type(error_dag.timetable).__name__ == "NullTimetable"  # never scheduled
    assert DagSerialization.to_dict(error_dag)
    # a trigger by hand fails with the error, not with something unrelated
    task = error_dag.get_task("config_error")
    with pytest.raises(NexusConfigError, match="did you mean 'persons'"):
        task.python_callable(*task.op_args)  # type: ignore[attr-defined]


def test_strict_mode_raises_after_trying_every_file(tmp_path: Path, mini_project: Path) -> None:
    folder = _configs(tmp_path, mini_project)
    (folder / "d_broken.yml").write_text("dag_id: [\n")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(NexusConfigError) as info:
            load_dags(folder, strict=True)
    assert "b_broken.yml" in str(info.value) and "d_broken.yml" in str(info.value)


def test_duplicate_dag_ids_across_files(tmp_path: Path, mini_project: Path) -> None:
    folder = tmp_path / "configs"
    folder.mkdir()
    text = (mini_project / "mini.yml").read_text()
    (folder / "a.yml").write_text(text)
    (folder / "b.yml").write_text(text)
    # every error is also a warning (Airflow lists those as import errors); strict then raises
    with (
        pytest.warns(NexusConfigWarning, match=r"b\.yml: dag_id 'nexus_mini' is already used by .*a\.yml"),
        pytest.raises(NexusConfigError, match="already used"),
    ):
        load_dags(folder, strict=True)


def test_parsing_the_dag_file_opens_no_database_and_renders_no_sql(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import duckdb

    from airflow_provider_nexus.templates import TemplateEngine

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("work done at DAG parse time")

    monkeypatch.setattr(duckdb, "connect", forbidden)
    monkeypatch.setattr(TemplateEngine, "render", forbidden)
    monkeypatch.setattr(TemplateEngine, "__init__", forbidden)
    monkeypatch.setenv("NEXUS_CONFIGS_DIR", str(REPO / "dags" / "configs"))
    module = runpy.run_path(str(REPO / "dags" / "nexus_dags.py"))
    from airflow.sdk import DAG

    dags = [v for v in module.values() if isinstance(v, DAG)]
    assert dags, "dags/nexus_dags.py built no DAG from dags/configs"


def test_dagbag_imports_the_repo_dags_without_errors(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from airflow.dag_processing.dagbag import DagBag

    folder = tmp_path / "dags"
    shutil.copytree(REPO / "dags", folder, ignore=shutil.ignore_patterns("data"))
    monkeypatch.setenv("NEXUS_STRICT_LOADING", "true")
    bag = DagBag(dag_folder=str(folder))
    assert not bag.import_errors
    assert "nexus_demo" in bag.dags


def test_load_dags_finds_the_pipeline_folder_from_the_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, mini_project: Path
) -> None:
    """A deployment's DAG file is `globals().update(load_dags())`: the folder comes from
    NEXUS_CONFIGS_DIR, else [nexus] configs_dir, else <dags_folder>/configs."""
    from airflow_provider_nexus.factory import configs_dir

    folder = _configs(tmp_path, mini_project)
    (folder / "b_broken.yml").unlink()
    monkeypatch.delenv("NEXUS_CONFIGS_DIR", raising=False)
    monkeypatch.setenv("AIRFLOW__NEXUS__CONFIGS_DIR", "")
    monkeypatch.setenv("AIRFLOW__CORE__DAGS_FOLDER", str(tmp_path))  # the folder is named `configs`
    assert configs_dir() == folder
    assert sorted(load_dags(strict=True)) == ["nexus_mini", "nexus_mini_2"]
    monkeypatch.setenv("AIRFLOW__NEXUS__CONFIGS_DIR", str(tmp_path / "elsewhere"))
    assert configs_dir() == tmp_path / "elsewhere"
    monkeypatch.setenv("NEXUS_CONFIGS_DIR", str(folder))
    assert configs_dir(default=tmp_path / "unused") == folder
