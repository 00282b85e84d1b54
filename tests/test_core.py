"""The compiled module: its stubs, its thread pool and the environment variable that sizes it."""

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

import nitrain
from nitrain import _core


def test_stubs_match_the_built_module():
    stub = ast.parse((Path(nitrain.__file__).parent / "_core.pyi").read_text())
    declared = {n.name for n in stub.body if isinstance(n, ast.FunctionDef)}
    declared |= {n.target.id for n in stub.body if isinstance(n, ast.AnnAssign)}
    public = {name for name in dir(_core) if not name.startswith("_")} | {"__version__"}
    assert declared == public


def test_version_is_the_crate_version():
    assert _core.__version__ == nitrain.__version__


def _threads_with_env(value: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, NITRAIN_NUM_THREADS=value)
    code = "import nitrain; print(nitrain.get_num_threads())"
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)


def test_num_threads_env_sets_the_pool_size():
    res = _threads_with_env("3")
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "3"


def test_bad_num_threads_env_is_a_clear_error():
    res = _threads_with_env("many")
    assert res.returncode != 0
    assert 'NITRAIN_NUM_THREADS must be a positive integer, got "many"' in res.stderr


def test_set_num_threads_validates():
    with pytest.raises(ValueError, match="positive integer or None, got 0"):
        nitrain.set_num_threads(0)
    before = nitrain.get_num_threads()
    assert nitrain.set_num_threads(None) >= 1
    nitrain.set_num_threads(before)


def test_keras_then_a_torch_optimiser_in_one_process():
    """tensorflow loaded before torch's triton aborts the process (both bundle LLVM); nitrain's keras import
    loads triton first, so keras work followed by a torch optimiser step runs."""
    pytest.importorskip("keras")
    pytest.importorskip("torch")
    code = (
        "from nitrain._frameworks import require_keras\n"
        "keras = require_keras('test')\n"
        "keras.ops.convert_to_numpy(keras.ops.ones(2))\n"
        "import torch\n"
        "m = torch.nn.Linear(2, 1)\n"
        "opt = torch.optim.Adam(m.parameters())\n"
        "m(torch.ones(1, 2)).sum().backward()\n"
        "opt.step()\n"
        "print('ok')\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0 and res.stdout.strip().endswith("ok"), res.stderr[-2000:]
