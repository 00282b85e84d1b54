"""The pretrained model shipped in the package reproduces its card's metric on fresh phantom subjects."""

import numpy as np
import pytest

from nitrain import models, samplers
from nitrain.datasets import make_phantom
from nitrain.samplers._extract import extract_slices
from nitrain.transforms import NormalizeIntensity, QuantileClip

torch = pytest.importorskip("torch")


def test_builtin_card_is_readable_without_loading():
    card = models.model_card("phantom-brain-age")
    assert card["id"] == "nitrain/phantom-brain-age@1"
    assert card["metrics"]["r2"] > 0.8
    assert any(r["id"] == "nitrain/phantom-brain-age@1" for r in models.list_pretrained())
    assert models.model_card("basic-t1") == card  # the original README's name


def test_builtin_brain_age_model_scores_fresh_subjects(monkeypatch, tmp_path):
    monkeypatch.setenv("NITRAIN_HOME", str(tmp_path))  # an empty user registry: the built-in one answers
    model = models.fetch_pretrained("phantom-brain-age")
    card = model.nitrain_card
    norm = card["normalization"]
    size = norm["input_shape"]
    start, stop = norm["slices"]["window"]
    rng = np.random.default_rng(2024)  # subjects the model never saw (the card's cohort used seed 0)
    ages = rng.uniform(20, 80, 16)
    preds = []
    for i, age in enumerate(ages):
        img, _ = make_phantom(size, float(age), seed=10_000 + i)
        img = NormalizeIntensity(0, 1)(QuantileClip(0.005, 0.995)(img))
        idx = np.array([(0, k) for k in range(start, stop)])
        slices = extract_slices([img], idx, norm["slices"]["axis"], channel="first")
        with torch.no_grad():
            out = model(torch.from_numpy(slices)).numpy().mean()
        preds.append(out * norm["target"]["sd"] + norm["target"]["mean"])
    preds = np.array(preds)
    r2 = 1 - ((ages - preds) ** 2).sum() / ((ages - ages.mean()) ** 2).sum()
    mae = np.abs(ages - preds).mean()
    print(f"fresh subjects: R^2 {r2:.3f}, MAE {mae:.1f} years; card: {card['metrics']}")
    assert r2 >= card["metrics"]["r2"] - 0.15, (r2, card["metrics"])
    assert mae <= card["metrics"]["mae_years"] + 3, (mae, card["metrics"])
    assert samplers.SliceSampler(axis=2, slices=(start, stop)).count(1, tuple(size)) == stop - start
