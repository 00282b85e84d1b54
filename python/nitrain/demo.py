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


def framework_seeder(framework: str):
    """``f(seed)`` that seeds ``framework`` ('torch' or 'keras'; an ImportError says what to install)."""
    from nitrain._frameworks import require_keras, require_torch

    if framework == "torch":
        return require_torch("nitrain demo").manual_seed
    if framework == "keras":
        return require_keras("nitrain demo").utils.set_random_seed
    raise ValueError(f"nitrain demo: framework must be 'torch' or 'keras', got {framework!r}")


def run_demo(
    out="nitrain-demo",
    n_subjects: int = 64,
    size: int = 64,
    epochs: int = 40,
    seed: int = 0,
    framework: str = "torch",
    verbose: int = 1,
    pool: int | None = 16,
) -> dict:
    """Run the whole pipeline into the folder ``out``; return the metrics (also in ``metrics.json``).

    ``framework``: 'torch' (checkpoints ``.pt``, weights as safetensors) or 'keras' (keras 3, channels-last;
    checkpoints and registered weights ``.weights.h5``). The data, split, loaders, architecture, training
    settings and report are the same for both.

    ``verbose=1`` reports the six stages (``STAGES``: writing the cohort, reading it, training, testing,
    explaining, writing the report): a ``tqdm.auto`` bar over the stages when stderr is a terminal or in a
    notebook, else one line ``[k/6] ...`` per stage on stdout; plus the results and the trainer's own
    progress. ``verbose=0`` prints nothing."""
    seed_everything = framework_seeder(framework)

    from nitrain import datasets, explainers, loaders, models, plot, samplers, trainers, utils
    from nitrain import transforms as tx

    started = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    seed_everything(seed)
    stages = _Stages(len(STAGES), verbose)
    say = stages.say

    cohort = out / "cohort"
    if not (cohort / "participants.tsv").exists():
        stages.start(f"writing a phantom cohort of {n_subjects} subjects ({size}^3) to {cohort}")
        datasets.make_phantom_cohort(cohort, n_subjects=n_subjects, seed=seed, shape=(size,) * 3)
    else:
        stages.start(f"using the phantom cohort already in {cohort}")
    stages.start("reading the cohort (clipped, normalised and cached in memory)")
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
        pool=pool,  # each sub-batch mixes slices of up to `pool` subjects
    )
    eval_sampler = samplers.SliceSampler(sub_batch_size=64, axis=2, slices=window)
    val_loader = loaders.DatasetLoader(val, batch_size=8, sampler=eval_sampler, seed=seed)
    test_loader = loaders.DatasetLoader(test, batch_size=8, sampler=eval_sampler, seed=seed)

    arch = models.fetch_architecture("basic", dim=2, framework=framework)
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
    spec = model.nitrain_spec
    stages.start(
        f"training a {spec['dim']}-D '{spec['name']}' CNN ({framework}, {spec['mode']}) to predict age from "
        f"slices: {len(train)} training and {len(val)} validation subjects, up to {epochs} "
        f"epoch{'' if epochs == 1 else 's'} of {len(train_loader)} batches"
    )
    history = trainer.fit(train_loader, epochs=epochs, validation=val_loader)

    stages.start(f"testing on {len(test)} held-out subjects")
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
    oldest = int(np.argmax(truth))
    stages.start(f"explaining the prediction for the oldest held-out subject, {test.ids[oldest]} (occlusion)")
    subject, _ = test[oldest]
    explainer = explainers.OcclusionExplainer(
        model,
        patch_size=(size // 8,) * 3,
        stride=size // 8,
        baseline="blur",  # a patch of the head's mean (dark) could itself look like a lesion
        sampler=eval_sampler,
        batch_size=16,
    )
    t0 = time.perf_counter()
    heat = explainer.explain(subject)
    metrics["occlusion_seconds"] = time.perf_counter() - t0
    heat_path = out / "explanation.nii.gz"
    heat.to_file(str(heat_path))
    plot.overlay(subject, heat, path=out / "explanation.png", axis=2, n_slices=6)

    stages.start("writing the report and the model card")
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
    stages.close()
    say(f"report in {out}: metrics.json, training_curve.png, explanation.png/.nii.gz, checkpoints/")
    say(f"model card {card['id']} in {out / 'registry'}")
    say(f"done in {metrics['seconds']:.0f} s")
    return metrics


#: the stages ``run_demo`` reports, in order
STAGES = ("cohort", "reading", "training", "testing", "explaining", "report")


class _Stages:
    """Progress over the demo's stages. When someone is watching (``nitrain._progress.interactive()``: a
    terminal or a notebook) a ``tqdm.auto`` bar counts the stages and shows the current one, and messages go
    through ``tqdm.write`` so the bar stays in place; otherwise each stage is one line ``[k/n] what``.
    Nothing at all with ``verbose=0``."""

    def __init__(self, total: int, verbose: int):
        from nitrain._progress import interactive

        self.total, self.done, self.verbose = total, 0, bool(verbose)
        self.bar = None
        if self.verbose and interactive():
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, unit="stage", position=0, leave=True, dynamic_ncols=True)

    def say(self, text: str) -> None:
        if not self.verbose:
            return
        if self.bar is not None:
            self.bar.write(text)
        else:
            print(text, flush=True)

    def start(self, text: str) -> None:
        """Begin the next stage (the previous one is complete)."""
        if self.bar is not None and self.done:
            self.bar.update(1)
        self.done += 1
        self.say(f"[{self.done}/{self.total}] {text}")
        if self.bar is not None:
            self.bar.set_description(f"nitrain demo [{self.done}/{self.total}] {text.split(':')[0]}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.update(self.total - self.bar.n)
            self.bar.close()


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
