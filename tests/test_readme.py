"""Every python block in the README runs, in order, in one namespace, in a scratch folder."""

import os
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_has_examples():
    assert BLOCKS, "README.md has no python examples"


def test_readme_examples_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    saved = dict(os.environ)  # blocks may set NITRAIN_HOME and the like
    try:
        for i, block in enumerate(BLOCKS):
            try:
                exec(compile(block, f"README.md python block {i}", "exec"), namespace)
            except Exception as e:  # pragma: no cover - the message is the point
                pytest.fail(f"README python block {i} failed: {e!r}\n{block}")
    finally:
        os.environ.clear()
        os.environ.update(saved)
