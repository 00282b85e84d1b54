"""scripts/dev.sh on a new or damaged environment: it repairs what the environment lacks and refuses an
interpreter the frameworks do not support, with a message saying what it needs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DEV = ROOT / "scripts" / "dev.sh"


def _dev(*args: str, venv: Path, python: str = sys._base_executable, cache: Path | None = None):  # type: ignore[attr-defined]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHONPATH"))}
    env.update(
        NITRAIN_VENV=str(venv), NITRAIN_PYTHON=python, NITRAIN_CACHE=str(cache or venv.parent / "cache")
    )
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return subprocess.run(["bash", str(DEV), *args], capture_output=True, text=True, env=env, check=False)


def _fake_python(tmp_path: Path, version: str) -> str:
    fake = tmp_path / f"python{version}"
    fake.write_text(f'#!/bin/sh\necho "{version}"\n')
    fake.chmod(0o755)
    return str(fake)


@pytest.mark.parametrize("version", ["3.8", "3.9"])
def test_refuses_a_python_too_old(tmp_path, version):
    out = _dev("deps", "", venv=tmp_path / "venv", python=_fake_python(tmp_path, version))
    assert out.returncode == 1
    assert "needs Python >= 3.10" in out.stderr and version in out.stderr
    assert not (tmp_path / "venv").exists()


def test_refuses_a_python_without_tensorflow_wheels_for_the_tests(tmp_path):
    out = _dev("deps", "dev", venv=tmp_path / "venv", python=_fake_python(tmp_path, "3.14"))
    assert out.returncode == 1
    assert "tensorflow" in out.stderr and "3.10 to 3.13" in out.stderr and "NITRAIN_PYTHON" in out.stderr


def test_requirements_lists_build_requirements_and_expands_extras():
    py = sys.executable
    out = subprocess.run(
        [py, str(ROOT / "scripts" / "requirements.py"), "all", "bench"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    names = {line.split("<")[0].split(">")[0].split("=")[0].split("[")[0] for line in out}
    assert {"maturin", "antspyx", "numpy", "torch", "matplotlib", "torchio", "monai"} <= names
    assert "pytest" not in names and "nitrain" not in names
    bad = subprocess.run(
        [py, str(ROOT / "scripts" / "requirements.py"), "missing", "nosuchextra"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode != 0 and "nosuchextra" in bad.stderr


@pytest.mark.slow
def test_repairs_a_venv_without_pip_and_a_removed_package(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys._base_executable, "-m", "venv", "--without-pip", str(venv)], check=True)  # type: ignore[attr-defined]
    vpy = str(venv / "bin" / "python")
    assert subprocess.run([vpy, "-m", "pip", "--version"], capture_output=True, check=False).returncode != 0

    out = _dev("deps", "", venv=venv)
    assert out.returncode == 0, out.stderr
    check = "import numpy, pandas, tqdm, ants, maturin"
    assert subprocess.run([vpy, "-c", check], capture_output=True, check=False).returncode == 0

    # a package removed by hand (an interrupted install) is put back, and a second run is quiet
    subprocess.run([vpy, "-m", "pip", "uninstall", "-y", "-q", "tqdm"], check=True, capture_output=True)
    out = _dev("deps", "", venv=venv)
    assert out.returncode == 0, out.stderr
    assert "tqdm" in out.stderr
    assert subprocess.run([vpy, "-c", check], capture_output=True, check=False).returncode == 0
    again = _dev("deps", "", venv=venv)
    assert again.returncode == 0 and again.stderr == "", again.stderr


@pytest.mark.slow
def test_recreates_a_deleted_venv_interpreter(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys._base_executable, "-m", "venv", str(venv)], check=True)  # type: ignore[attr-defined]
    (venv / "bin" / "python").unlink()  # half-deleted: the folder is there, its python is not
    out = _dev("deps", "", venv=venv)
    assert out.returncode == 0, out.stderr
    assert "creating virtual environment" in out.stderr
    vpy = str(venv / "bin" / "python")
    assert subprocess.run([vpy, "-c", "import numpy, ants"], capture_output=True, check=False).returncode == 0
