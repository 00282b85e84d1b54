"""`nitrain demo --task segmentation`: segment brain tissue in the built-in phantom cohort.

Pipeline: a phantom cohort with label maps -> FolderDataset (T1 in, tissue map out: background, CSF, grey
and white matter) -> DatasetLoader of random blocks with a random affine co-transform (the T1 and its label
map moved by one draw) -> a 3-D U-Net -> ModelTrainer with per-class Dice on validation volumes tiled by a
grid of blocks -> sliding-window inference of every held-out volume -> per-class Dice in ``metrics.json``
and an overlay of prediction against truth.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

#: Tissue classes predicted, and the phantom labels (``datasets.phantom.LABELS``) each gathers.
TISSUES = {"background": (0, 5, 6), "csf": (1, 4), "gray_matter": (2,), "white_matter": (3,)}
STAGES = 5


def tissue_map(labels: np.ndarray) -> np.ndarray:
    """Phantom labels -> tissue classes 0..3 (``TISSUES``), as float32."""
    lut = np.zeros(256, np.float32)
    for k, values in enumerate(TISSUES.values()):
        lut[list(values)] = k
    return lut[np.asarray(labels).astype(np.int64)]


def dice_per_class(pred: np.ndarray, truth: np.ndarray, classes: int) -> list[float]:
    """Dice of classes 1..classes-1 between two label maps (1.0 where both lack the class)."""
    out = []
    for k in range(1, classes):
        p, t = pred == k, truth == k
        total = int(p.sum()) + int(t.sum())
        out.append(1.0 if total == 0 else 2.0 * float((p & t).sum()) / total)
    return out


def run_segmentation_demo(
    out: str | Path = "nitrain-demo-segmentation",
    n_subjects: int = 24,
    size: int = 48,
    block: int = 32,
    epochs: int = 12,
    seed: int = 0,
    framework: str = "torch",
    verbose: int = 1,
) -> dict:
    """Run the segmentation pipeline into the folder ``out``; return the metrics (also in
    ``metrics.json``): held-out Dice per tissue class (the mean over subjects of whole-volume Dice) and
    their mean, with the training history's length and timings. ``framework``: 'torch' or 'keras'."""
    from nitrain.demo import framework_seeder

    seed_everything = framework_seeder(framework)
    from nitrain import datasets, loaders, models, samplers, trainers, utils
    from nitrain import transforms as tx
    from nitrain.inference import sliding_window

    started = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    seed_everything(seed)
    say = print if verbose else (lambda *a, **k: None)

    cohort = out / "cohort"
    say(f"[1/{STAGES}] writing a phantom cohort of {n_subjects} subjects ({size}^3) with label maps")
    if not (cohort / "participants.tsv").exists():
        datasets.make_phantom_cohort(cohort, n_subjects=n_subjects, seed=seed, shape=(size,) * 3, labels=True)
    dataset = datasets.FolderDataset(
        cohort,
        x={"pattern": "sub-*/anat/*_T1w.nii.gz"},
        y={"pattern": "sub-*/anat/*_dseg.nii.gz"},
        x_transforms=[tx.NormalizeIntensity(0, 1)],
        y_transforms=[tx.NumpyFunction(tissue_map, cache_key="nitrain-demo-tissues")],
        cache="memory",
    )
    train, val, test = dataset.split((0.7, 0.1, 0.2), random=True, seed=seed)
    classes = len(TISSUES)
    train_loader = loaders.DatasetLoader(
        train,
        batch_size=4,
        shuffle=True,
        sampler=samplers.BlockSampler(block, n_blocks=4, sub_batch_size=4, shuffle=True),
        co_transforms=[tx.RandomAffine(rotation=10, zoom=(0.9, 1.1))],
        seed=seed,
    )
    grid = samplers.BlockSampler(block, stride=block, sub_batch_size=8)  # tiles every volume
    val_loader = loaders.DatasetLoader(val, batch_size=2, sampler=grid, seed=seed)

    arch = models.fetch_architecture("unet", dim=3, framework=framework)
    model = arch(
        input_image_size=(block,) * 3 + (1,),
        number_of_outcomes=classes,
        mode="segmentation",
        filters=(16, 32, 64),
    )
    trainer = trainers.ModelTrainer(
        model,
        loss="cross_entropy",
        optimizer="adam",
        lr=3e-3,
        metrics=["dice"],
        seed=seed,
        verbose=verbose,
        callbacks=[utils.EarlyStopping(monitor="val_loss", patience=4)],
    )
    say(
        f"[2/{STAGES}] training a 3-D U-Net ({framework}) on {block}^3 blocks with random affine "
        f"co-transforms: {len(train)} training and {len(val)} validation subjects, up to {epochs} epochs "
        f"of {len(train_loader)} batches"
    )
    history = trainer.fit(train_loader, epochs=epochs, validation=val_loader)

    say(f"[3/{STAGES}] segmenting {len(test)} held-out volumes by sliding windows (overlap 0.5, gaussian)")
    per_subject, shown = [], None
    for i in range(len(test)):
        x, y = test[i]
        pred = sliding_window(model, x, block, overlap=0.5, blend="gaussian", batch_size=8)
        truth = y.numpy()
        per_subject.append(dice_per_class(pred.numpy(), truth, classes))
        if shown is None:
            shown = (x, truth, pred.numpy())
    dice = np.mean(per_subject, axis=0)
    names = list(TISSUES)[1:]
    metrics: dict[str, Any] = {
        "test_subjects": len(test),
        "dice": {name: float(d) for name, d in zip(names, dice, strict=True)},
        "mean_dice": float(dice.mean()),
        "epochs_run": len(history["loss"]),
        "final_train_loss": float(history["loss"][-1]),
        "final_val_dice": float(history["val_dice"][-1]) if history.get("val_dice") else None,
    }
    say(
        "held-out Dice: "
        + ", ".join(f"{n} {d:.3f}" for n, d in metrics["dice"].items())
        + f"; mean {metrics['mean_dice']:.3f}"
    )

    say(f"[4/{STAGES}] drawing prediction against truth")
    assert shown is not None
    _overlay(*shown, out / "segmentation.png", names)

    say(f"[5/{STAGES}] writing the report")
    metrics["seconds"] = time.perf_counter() - started
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    say(f"report in {out}: metrics.json, segmentation.png; done in {metrics['seconds']:.0f} s")
    return metrics


def _overlay(image: Any, truth: np.ndarray, pred: np.ndarray, path: Path, names: list[str]) -> None:
    """The middle slice along each axis: T1, truth and prediction side by side."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.colors import ListedColormap
    from matplotlib.figure import Figure

    t1 = image.numpy()
    colours = ListedColormap(["none", "tab:blue", "tab:orange", "tab:green"][: len(names) + 1])
    fig = Figure(figsize=(9, 9))
    FigureCanvasAgg(fig)
    for row, axis in enumerate(range(3)):
        k = t1.shape[axis] // 2
        for col, (title, lab) in enumerate((("T1", None), ("truth", truth), ("prediction", pred))):
            ax = fig.add_subplot(3, 3, 3 * row + col + 1)
            ax.imshow(np.take(t1, k, axis=axis).T, cmap="gray", origin="lower")
            if lab is not None:
                ax.imshow(
                    np.take(lab, k, axis=axis).T,
                    cmap=colours,
                    vmin=0,
                    vmax=len(names),
                    alpha=0.5,
                    origin="lower",
                )
            ax.set_title(f"{title}, axis {axis} slice {k}", fontsize=8)
            ax.axis("off")
    fig.suptitle("tissue classes: " + ", ".join(f"{k + 1} {n}" for k, n in enumerate(names)), fontsize=9)
    fig.savefig(path, dpi=80)
