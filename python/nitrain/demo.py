"""`nitrain demo`: train and explain a brain-age model on the built-in phantom cohort.

Pipeline: a phantom cohort written as a BIDS-style folder -> FolderDataset with cached fixed transforms ->
DatasetLoader with a SliceSampler and random noise -> a 2-D CNN from the zoo -> ModelTrainer with early
stopping and checkpoints -> held-out subject-level MAE and R^2 -> an occlusion map of one held-out subject ->
a report folder (metrics.json, training curve, explanation overlay, checkpoint, model card).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np


def _r2(y, p) -> float:
    y, p = np.asarray(y, float), np.asarray(p, float)
    return float(1 - ((y - p) ** 2).sum() / ((y - y.mean()) ** 2).sum())


def run_demo(
    out="nitrain-demo",
    n_subjects: int = 64,
    size: int = 64,
    epochs: int = 40,
    seed: int = 0,
    framework: str = "torch",
    verbose: int = 1,
) -> dict:
    """Run the whole pipeline into the folder ``out``; return the metrics (also in ``metrics.json``)."""
    if framework != "torch":
        raise ValueError(f"nitrain demo: framework {framework!r} is not available in this build (torch only)")
    import torch

    from nitrain import datasets, explainers, loaders, models, plot, samplers, trainers, utils
    from nitrain import transforms as tx

    started = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    say = print if verbose else (lambda *a, **k: None)

    cohort = out / "cohort"
    if not (cohort / "participants.tsv").exists():
        say(f"writing a phantom cohort of {n_subjects} subjects ({size}^3) to {cohort}")
        datasets.make_phantom_cohort(cohort, n_subjects=n_subjects, seed=seed, shape=(size,) * 3)
    dataset = datasets.FolderDataset(
        cohort,
        x={"pattern": "sub-*/anat/*_T1w.nii.gz"},
        y={"file": "participants.tsv", "column": "age"},
        x_transforms=[tx.QuantileClip(0.005, 0.995), tx.NormalizeIntensity(0, 1)],
        cache="memory",
    )
    ages = np.array(dataset[:][1], float)
    mu, sd = float(ages.mean()), float(ages.std())
    dataset.y_transforms = [lambda a: (a - mu) / sd]  # train on standardised age
    train, val, test = dataset.split((0.7, 0.1, 0.2), random=True, seed=seed)
    window = (size * 5 // 16, size * 11 // 16)  # the central slices, where the anatomy is
    sampler = samplers.SliceSampler(sub_batch_size=32, axis=2, shuffle=True, slices=window)
    train_loader = loaders.DatasetLoader(
        train,
        batch_size=8,
        shuffle=True,
        sampler=sampler,
        x_transforms=[tx.RandomNoise(sd=(0.0, 0.1))],
        seed=seed,
    )
    eval_sampler = samplers.SliceSampler(sub_batch_size=64, axis=2, slices=window)
    val_loader = loaders.DatasetLoader(val, batch_size=8, sampler=eval_sampler, seed=seed)
    test_loader = loaders.DatasetLoader(test, batch_size=8, sampler=eval_sampler, seed=seed)

    arch = models.fetch_architecture("basic", dim=2)
    model = arch(input_image_size=(size, size, 1), number_of_outcomes=1, mode="regression")
    trainer = trainers.ModelTrainer(
        model,
        loss="mse",
        optimizer="adam",
        lr=1e-3,
        metrics=["mae"],
        seed=seed,
        verbose=verbose,
        callbacks=[
            utils.EarlyStopping(monitor="val_loss", patience=6),
            utils.ModelCheckpoints(freq=10, directory=str(out / "checkpoints"), save_best=True),
        ],
    )
    say(f"training {type(model).__name__} on {len(train)} subjects ({len(train_loader)} batches per epoch)")
    history = trainer.fit(train_loader, epochs=epochs, validation=val_loader)
    calib = loaders.DatasetLoader(train, batch_size=len(train), shuffle=True, sampler=sampler, seed=seed + 1)
    recalibrate_batchnorm(model, calib)

    pred = np.asarray(trainer.predict(test_loader, reduce="record"), float).reshape(-1) * sd + mu
    truth = np.array([test[i][1] for i in range(len(test))], float) * sd + mu
    metrics = {
        "test_subjects": len(test),
        "mae_years": float(np.abs(pred - truth).mean()),
        "r2": _r2(truth, pred),
        "epochs_run": len(history["loss"]),
        "final_train_loss": float(history["loss"][-1]),
        "final_val_loss": float(history["val_loss"][-1]) if history.get("val_loss") else None,
    }
    say(f"held-out subjects: MAE {metrics['mae_years']:.1f} years, R^2 {metrics['r2']:.3f}")

    # Explain one held-out subject: which regions move the predicted age?
    subject, _ = test[int(np.argmax(truth))]
    explainer = explainers.OcclusionExplainer(
        model,
        patch_size=(size // 8,) * 3,
        stride=size // 8,
        baseline="mean",
        sampler=eval_sampler,
        batch_size=16,
    )
    t0 = time.perf_counter()
    heat = explainer.explain(subject)
    metrics["occlusion_seconds"] = time.perf_counter() - t0
    heat_path = out / "explanation.nii.gz"
    heat.to_file(str(heat_path))
    plot.overlay(subject, heat, path=out / "explanation.png", axis=2, n_slices=6)

    _curve(history, out / "training_curve.png")
    # The model card goes into a registry inside the report folder (the environment is restored after).
    saved = {k: os.environ.get(k) for k in ("NITRAIN_HOME", "NITRAIN_REGISTRY")}
    os.environ["NITRAIN_HOME"] = str(out / "registry")
    os.environ.pop("NITRAIN_REGISTRY", None)
    try:
        card = models.register_pretrained(
            model,
            "phantom-brain-age",
            description="2-D slice CNN predicting age from phantom T1 slices",
            metrics={k: metrics[k] for k in ("mae_years", "r2")},
            training_data=f"nitrain phantom cohort, {n_subjects} subjects, seed {seed}",
            normalization={
                "x_transforms": ["QuantileClip(0.005, 0.995)", "NormalizeIntensity(0, 1)"],
                "target": {"mean": mu, "sd": sd},
                "slices": {"axis": 2, "window": list(window)},
                "input_shape": [size] * 3,
            },
            overwrite=True,
        )
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    metrics["seconds"] = time.perf_counter() - started
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    say(f"report in {out}: metrics.json, training_curve.png, explanation.png/.nii.gz, checkpoints/")
    say(f"model card {card['id']} in {out / 'registry'}")
    return metrics


def recalibrate_batchnorm(model, loader) -> None:
    """Replace batch-norm running statistics by exact averages over one pass of ``loader`` ("precise BN"):
    the running averages kept during training lag behind weights that keep changing."""
    import torch

    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    saved = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
    model.train()
    device = next(model.parameters()).device
    with torch.no_grad():
        for x, _ in loader:
            model(torch.from_numpy(x).movedim(-1, 1).to(device))
    for m, mom in zip(norms, saved, strict=True):
        m.momentum = mom
    model.eval()


def _curve(history, path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.plot(history["loss"], label="train loss")
    if history.get("val_loss"):
        ax.plot(history["val_loss"], label="validation loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("MSE (standardised age)")
    ax.legend()
    fig.savefig(path, dpi=100)
