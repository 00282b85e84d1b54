"""`nitrain demo` end to end, in a smaller setting than the README's main job (which runs the full one)."""

import json

import pytest

from nitrain.cli import main

pytest.importorskip("torch")
pytest.importorskip("matplotlib")


@pytest.mark.slow
def test_demo_writes_a_report_and_learns_age(tmp_path):
    out = tmp_path / "demo"
    code = main(["demo", "--out", str(out), "--subjects", "24", "--size", "48", "--epochs", "15", "--quiet"])
    assert code == 0
    for name in ("metrics.json", "training_curve.png", "explanation.png", "explanation.nii.gz"):
        assert (out / name).is_file(), name
    assert any((out / "checkpoints").glob("*.pt"))
    assert list((out / "registry").rglob("card.json"))
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["test_subjects"] == 5
    assert metrics["r2"] >= 0.7, metrics
    assert metrics["mae_years"] < 8, metrics
    assert (out / "training_curve.png").read_bytes()[:4] == b"\x89PNG"
