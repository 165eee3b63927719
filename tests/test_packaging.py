"""The wheel ships the packaged SQL: build it, install it outside the source tree, render from it."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    # --no-build-isolation: build with the setuptools of this environment (no index needed).
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(out), str(REPO)],
        check=True,
        capture_output=True,
    )
    wheels = list(out.glob("airflow_provider_nexus-*.whl"))
    assert len(wheels) == 1
    return wheels[0]


def test_wheel_contains_sql_and_entry_point(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    shipped = {n for n in names if n.startswith("airflow_provider_nexus/sql/")}
    for template in (REPO / "sql").rglob("*.sql"):
        assert f"airflow_provider_nexus/sql/{template.relative_to(REPO / 'sql').as_posix()}" in shipped
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "apache_airflow_provider" in text and "airflow_provider_nexus:get_provider_info" in text


def test_installed_wheel_renders_packaged_templates(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(
        subprocess.check_output(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True
        ).strip()
    )
    # Install only our wheel into the fresh venv; its dependencies come from this environment
    # through a path entry (a .pth *path* line does not run this environment's editable finder).
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--target", str(site), str(wheel)],
        check=True,
        capture_output=True,
    )
    (site / "zz_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    script = (
        "import airflow_provider_nexus, pathlib\n"
        "from airflow_provider_nexus.dialects import get_dialect\n"
        "from airflow_provider_nexus.templates import TemplateEngine, packaged_sql_dir\n"
        "print(airflow_provider_nexus.__file__)\n"
        "print(packaged_sql_dir())\n"
        "e = TemplateEngine(get_dialect('duckdb'))\n"
        "print(e.render('final/events.sql', core={'events': 'core_events'}).strip().splitlines()[-1])\n"
    )
    out = subprocess.run(
        [str(python), "-c", script], cwd=tmp_path, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out[0].startswith(str(site)), out
    assert out[1] == str(site / "airflow_provider_nexus" / "sql")
    assert out[2] == "FROM core_events AS e"
