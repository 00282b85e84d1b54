import pytest


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A fresh ``NITRAIN_HOME`` (the local registry lives under it), with no ``NITRAIN_REGISTRY``."""
    monkeypatch.setenv("NITRAIN_HOME", str(tmp_path))
    monkeypatch.delenv("NITRAIN_REGISTRY", raising=False)
    return tmp_path
