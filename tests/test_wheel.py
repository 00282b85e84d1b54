"""The wheel a user pip-installs: one abi3 manylinux2014 wheel, installed into a brand-new virtual
environment on the oldest supported Python when this machine has it, with no cargo on PATH. It runs the
README's first block and a loader epoch whose batches must equal the ones this checkout's build serves.

`scripts/dev.sh test` builds the wheel first and passes its path in NITRAIN_WHEEL; run alone, the test
builds it with `scripts/dev.sh wheel`.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"

pytestmark = pytest.mark.slow

# A loader epoch: seeded noise and shuffled slices. Prints one sha256 over every batch, in order.
EPOCH = """
import hashlib
import numpy as np
from nitrain import datasets, loaders, samplers, transforms as tx

rng = np.random.default_rng(3)
images = [rng.random((20, 22, 18), dtype=np.float32) * (1 + i) for i in range(6)]
dataset = datasets.MemoryDataset(images, [float(i) for i in range(6)])
loader = loaders.DatasetLoader(dataset, batch_size=4, shuffle=True, seed=11,
                               sampler=samplers.SliceSampler(sub_batch_size=8, axis=2, shuffle=True),
                               x_transforms=[tx.RandomNoise(sd=0.1)])
digest, n = hashlib.sha256(), 0
for x, y in loader:
    digest.update(np.ascontiguousarray(x).tobytes())
    digest.update(np.ascontiguousarray(y, dtype=np.float64).tobytes())
    n += len(x)
print("EPOCH", n, digest.hexdigest())
"""

# A config file read on the installed Python (tomllib from 3.11, the tomli backport on 3.10).
CONFIG = """
import pathlib, sys
from nitrain import config
pathlib.Path("c.toml").write_text('epochs = 3\\n[dataset]\\nbase_dir = "d"\\n')
assert config.load("c.toml")["epochs"] == 3
pathlib.Path("bad.toml").write_text("epochs = = 3")
try:
    config.load("bad.toml")
except config.ConfigError as e:
    assert "bad.toml" in str(e), e
else:
    raise AssertionError("a TOML parse error was not reported")
"""


def _wheel() -> Path:
    path = os.environ.get("NITRAIN_WHEEL")
    if not path:
        out = subprocess.run(
            ["bash", str(ROOT / "scripts" / "dev.sh"), "wheel"], capture_output=True, text=True, check=False
        )
        assert out.returncode == 0, f"scripts/dev.sh wheel failed:\n{out.stderr}"
        path = out.stdout.strip().splitlines()[-1]
    wheel = Path(path)
    assert wheel.is_file(), f"no wheel at {wheel}"
    return wheel


def _oldest_python() -> str:
    """A CPython 3.10 when this machine has one (the oldest the abi3 wheel supports), else this one."""
    candidates = sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.10.*/bin/python3.10")))
    candidates += [p for p in [shutil.which("python3.10")] if p]
    for python in candidates:
        ok = subprocess.run([python, "-c", "import sys, venv, ensurepip"], capture_output=True, check=False)
        if ok.returncode == 0:
            return python
    return sys._base_executable  # type: ignore[attr-defined]


def _no_cargo_env() -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON", "CARGO", "RUST"))
    }
    dirs = [d for d in env.get("PATH", "").split(os.pathsep) if d]
    keep = [
        d
        for d in dirs
        if not any(os.path.exists(os.path.join(d, tool)) for tool in ("cargo", "rustc", "maturin"))
        and not d.startswith(sys.prefix)
    ]
    env["PATH"] = os.pathsep.join(keep or ["/usr/bin", "/bin"])
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def test_wheel_tags_and_license():
    wheel = _wheel()
    # cp310-abi3: one wheel for CPython >= 3.10; manylinux2014: glibc >= 2.17.
    assert re.search(r"-cp310-abi3-manylinux2014_x86_64", wheel.name), wheel.name
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        meta = z.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names), names
    assert "nitrain/_core.abi3.so" in names
    assert "License-Expression: Apache-2.0" in meta
    assert "Project-URL:" in meta
    # user extras never pull in test or benchmark tools
    all_line = next(line for line in meta.splitlines() if "extra == 'all'" in line)
    for tool in ("pytest", "ruff", "torchio", "monai", "maturin", "hypothesis"):
        assert tool not in all_line, all_line
    sdists = list(wheel.parent.glob("nitrain-*.tar.gz"))
    assert sdists, f"no sdist beside {wheel}"
    import tarfile

    with tarfile.open(sdists[0]) as t:
        assert any(m.name.endswith("/LICENSE") for m in t.getmembers())


def test_wheel_installs_and_runs_without_cargo(tmp_path):
    wheel = _wheel()
    python = _oldest_python()
    env = _no_cargo_env()
    venv = tmp_path / "venv"
    subprocess.run([python, "-m", "venv", str(venv)], check=True, env=env)
    vpy = str(venv / "bin" / "python")
    install = subprocess.run(
        [vpy, "-m", "pip", "install", "-q", str(wheel)], capture_output=True, text=True, env=env, check=False
    )
    assert install.returncode == 0, install.stderr[-4000:]

    first_block = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)[0]
    script = first_block + CONFIG + EPOCH
    run = subprocess.run(
        [vpy, "-c", script], capture_output=True, text=True, env=env, cwd=tmp_path, check=False, timeout=600
    )
    assert run.returncode == 0, run.stderr[-4000:]
    # the installed package is the wheel's, not this checkout's
    where = subprocess.run(
        [vpy, "-c", "import nitrain, sys; print(nitrain.__file__, sys.version_info[:2])"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        check=True,
    ).stdout
    assert str(venv) in where and str(ROOT) not in where, where

    # same batches as this checkout's build
    import nitrain

    namespace: dict = {}
    from contextlib import redirect_stdout
    from io import StringIO

    buf = StringIO()
    with redirect_stdout(buf):
        exec(compile(EPOCH, "epoch", "exec"), namespace)
    assert run.stdout.strip().splitlines()[-1] == buf.getvalue().strip(), (run.stdout, buf.getvalue())
    assert run.stdout.splitlines()[0].strip() == nitrain.__version__
