"""`nitrain train CONFIG`: the quickstart pipeline described by a TOML or YAML file.

``EXAMPLE`` is a complete config: every accepted key, with what it does and its default. ``load``
reads a file, ``build`` checks a config and builds the pipeline (a FolderDataset split into training and
validation, their loaders, the model and a ModelTrainer) and ``run`` trains it and saves the results.
Problems with the config or the data it points at are found before training starts (``build`` reads the
first training record and draws one batch) and raise ``ConfigError`` with a message that names the file,
section or key; ``nitrain train`` prints it as one line and exits with status 2.

Transforms and samplers are written as ``{Name = [positional args]}``, ``{Name = {keyword args}}`` or
``{Name = value}`` (one argument). Relative paths (``output``, ``dataset.base_dir``) are relative to the
current folder.

The config as written (``EXAMPLE``, the keys of each section, ``load``, ``apply_overrides`` and the checks
of single values) is in ``nitrain._config_file`` and re-exported here; this module builds and runs it.
"""

from __future__ import annotations

import json
import math
import os
import traceback
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

# the config as written: in nitrain._config_file (EXAMPLE, KEYS, sampler_names ... are re-exported)
from nitrain._config_file import (
    DATASET_KEYS,
    LOADER_KEYS,
    MODEL_KEYS,
    SECTIONS,
    TRAINER_KEYS,
    ConfigError,
    _check_keys,
    _expand_dims,
    _int,
    _message,
    _named,
    _transforms,
    apply_overrides,
    load,
)
from nitrain._config_file import EXAMPLE as EXAMPLE
from nitrain._config_file import KEYS as KEYS
from nitrain._config_file import _toml_module as _toml_module
from nitrain._config_file import sampler_names as sampler_names
from nitrain._config_file import transform_names as transform_names

if TYPE_CHECKING:
    from nitrain.datasets.base import BaseDataset

# the key an architecture's error is about, found by a word of its message
_MODEL_ERRORS = {
    "options": "option",
    "number_of_outcomes": "number_of_outcomes",
    "input_image_size": "input_image_size",
    "mode": "mode",
}
_MAX_METRICS = ("accuracy", "r2", "dice")  # monitored values where larger is better


def _item_shape(x: Any, channel: str | None) -> tuple[int, ...]:
    """The channels-last shape of one item of a batch ``x`` laid out with ``channel`` ('last', 'first' or
    None: no channel axis, the trainer adds one of length 1)."""
    shape = tuple(int(s) for s in x.shape[1:])
    if channel == "first":
        return (*shape[1:], shape[0])
    if channel is None:
        return (*shape, 1)
    return shape


def _first_batch(train: BaseDataset, loader_args: dict[str, Any]) -> Any:
    """One batch of the first training record, drawn like the training batches (a separate loader, so
    the training loader's epochs and random draws are untouched)."""
    from nitrain import loaders

    probe = loaders.DatasetLoader(train.subset([0]), batch_size=1, prefetch=0, **loader_args)
    return next(iter(probe))


def _monitor_names(metrics: Iterable[Any] | None) -> set[str]:
    names = {"loss"}
    for m in metrics or []:
        if isinstance(m, str):
            names.add("accuracy" if m.lower() in ("acc", "accuracy") else m.lower())
    return names | {f"val_{n}" for n in names}


def build(cfg: dict, verbose: int = 1) -> dict:
    """Check the whole config and build the pipeline (nothing is trained yet).

    Besides checking every key, it reads the first training record and draws one batch the way training
    does, so unreadable images, transforms or sampler settings that do not fit the images, and an
    ``input_image_size`` other than the data's are reported here, as ``ConfigError``. ``verbose`` goes to
    the trainer. Returns a dict: 'dataset' (the whole FolderDataset), 'trainer', 'train' and 'val'
    (loaders), 'checkpoints' (the ModelCheckpoints callback), 'early_stopping' (the EarlyStopping
    callback or None), 'output' (a Path), 'epochs' and 'monitor'."""
    from nitrain import datasets, loaders, models, samplers, trainers, utils
    from nitrain import transforms as tx

    _check_keys("config", cfg, set(SECTIONS), {"dataset", "model", "trainer"})
    for key, kind in SECTIONS.items():
        if key in cfg and (not isinstance(cfg[key], kind) or isinstance(cfg[key], bool)):
            what = {str: "a string", int: "an integer", dict: "a table (section)"}[kind]
            raise ConfigError(f"config: {key!r} must be {what}, got {cfg[key]!r}")
    epochs = _int("config: 'epochs'", cfg.get("epochs", 10), 1)
    seed = _int("config: 'seed'", cfg.get("seed", 0), 0)
    d, ld, m, t = cfg["dataset"], cfg.get("loader", {}), cfg["model"], cfg["trainer"]
    _check_keys("dataset", d, DATASET_KEYS, {"base_dir", "x", "y"})  # every section before any data is read
    _check_keys("loader", ld, LOADER_KEYS)
    _check_keys("model", m, MODEL_KEYS, {"architecture", "input_image_size"})
    _check_keys("trainer", t, TRAINER_KEYS, {"loss"})

    # -- dataset -------------------------------------------------------------------------------------
    xt = _transforms("dataset.x_transforms", d.get("x_transforms", []), tx)
    yt = _transforms("dataset.y_transforms", d.get("y_transforms", []), tx)
    if yt and not (isinstance(d["y"], dict) and "pattern" in d["y"]):
        raise ConfigError(
            "dataset.y_transforms: transforms apply to image targets (y = { pattern = ... }); "
            f"y = {d['y']!r} is not one"
        )
    cache = d.get("cache", "memory")
    if cache not in ("memory", "disk", False, None):
        raise ConfigError(f'dataset.cache: must be "memory", "disk" or false, got {cache!r}')
    try:
        dataset = datasets.FolderDataset(
            d["base_dir"], d["x"], d["y"], x_transforms=xt, y_transforms=yt, cache=cache or None
        )
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ConfigError(f"dataset: {_message(e)}") from e
    split = d.get("split", 0.8)
    if isinstance(split, bool) or not isinstance(split, int | float) or not 0 < split < 1:
        raise ConfigError(f"dataset.split: must be a fraction between 0 and 1, got {split!r}")
    train, val = dataset.split(split, random=True, seed=seed)
    if len(train) == 0 or len(val) == 0:
        raise ConfigError(
            f"dataset.split: {split} of {len(dataset)} subjects leaves "
            f"{len(train)} for training and {len(val)} for validation; both need at least one"
        )

    # -- sampler and loaders -------------------------------------------------------------------------
    sampler = None
    if "sampler" in cfg:
        sampler = _named("sampler", cfg["sampler"], samplers, "sampler")
    lxt = _transforms("loader.x_transforms", ld.get("x_transforms", []), tx)
    if not isinstance(ld.get("shuffle", True), bool):
        raise ConfigError(f"loader.shuffle: must be true or false, got {ld['shuffle']!r}")
    shared: dict[str, Any] = {
        "sampler": sampler,
        "expand_dims": _expand_dims(ld.get("expand_dims", -1)),
        "seed": seed,
    }
    try:
        train_loader = loaders.DatasetLoader(
            train,
            batch_size=ld.get("batch_size", 4),
            shuffle=ld.get("shuffle", True),
            x_transforms=lxt,
            **shared,
        )
        val_loader = loaders.DatasetLoader(val, batch_size=ld.get("batch_size", 4), **shared)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"loader: {_message(e)}") from e
    try:
        x, _ = _first_batch(train, {**shared, "x_transforms": lxt})
    except (OSError, ValueError, KeyError, TypeError, IndexError, RuntimeError) as e:
        msg = _message(e)
        owners = [(sampler, "sampler")] + [
            (t, f"{section}.x_transforms[{i}]")
            for section, ts in (("dataset", xt), ("loader", lxt))
            for i, t in enumerate(ts)
        ]
        where = next((w for o, w in owners if o is not None and msg.startswith(type(o).__name__)), None)
        if where is None:  # a message that does not name its owner: where was it raised?
            frames = [Path(f.filename).parts for f in traceback.extract_tb(e.__traceback__)]
            in_sampler = any(parts[-2:-1] == ("samplers",) for parts in frames)
            where = "sampler" if sampler is not None and in_sampler else "dataset"
        raise ConfigError(f"{where}: {msg} (drawing a training batch of {train.ids[0]})") from e

    # -- model ---------------------------------------------------------------------------------------
    try:
        arch = models.fetch_architecture(m["architecture"], dim=m.get("dim"), framework=m.get("framework"))
    except ImportError as e:  # FrameworkNotAvailableError
        raise ConfigError(f"model.framework: {_message(e)}") from e
    except ValueError as e:
        msg = _message(e)
        what = "dim"
        if "unknown architecture" in msg:
            what = "architecture"
        elif "framework" in msg:
            what = "framework"
        raise ConfigError(f"model.{what}: {msg}") from e
    size = m["input_image_size"]
    if not isinstance(size, list) or not all(isinstance(s, int) and not isinstance(s, bool) for s in size):
        raise ConfigError(f"model.input_image_size: must be a list of integers, got {size!r}")
    if not isinstance(x, list):  # several inputs: the architecture checks its inputs itself
        found = _item_shape(x, train_loader.channel)
        if tuple(size) != found:
            raise ConfigError(
                f"model.input_image_size: {size} does not match the training items, which are "
                f"{list(found)} (channels-last, after the transforms and the sampler)"
            )
    options = m.get("options", {})
    if not isinstance(options, dict):
        raise ConfigError(f"model.options: must be a table of architecture options, got {options!r}")
    try:
        _seed_framework(m.get("framework"), seed)
        model = arch(tuple(size), m.get("number_of_outcomes", 1), m.get("mode"), **options)
    except ImportError as e:
        raise ConfigError(f"model.framework: {_message(e)}") from e
    except (TypeError, ValueError) as e:
        msg = _message(e)
        what = next((f"model.{k}" for k in _MODEL_ERRORS if _MODEL_ERRORS[k] in msg), "model")
        raise ConfigError(f"{what}: {msg}") from e

    # -- trainer -------------------------------------------------------------------------------------
    metrics = t.get("metrics")
    if metrics is not None and not (isinstance(metrics, list) and all(isinstance(v, str) for v in metrics)):
        raise ConfigError(f"trainer.metrics: must be a list of metric names, got {metrics!r}")
    monitor = t.get("monitor", "val_loss")
    if monitor not in _monitor_names(metrics):
        raise ConfigError(
            f"trainer.monitor: {monitor!r} is not logged; choose from {sorted(_monitor_names(metrics))}"
        )
    freq = _int("trainer.checkpoint_freq", t.get("checkpoint_freq", 10), 0)
    patience = _int("trainer.early_stopping", t.get("early_stopping", 0), 0)
    out = Path(cfg.get("output", "nitrain-run"))
    checkpoints = utils.ModelCheckpoints(
        freq=freq or None, directory=out / "checkpoints", save_best=True, monitor=monitor
    )
    callbacks: list[object] = [checkpoints]
    early = None
    if patience:
        early = utils.EarlyStopping(monitor=monitor, patience=patience)
        callbacks.append(early)
    try:
        trainer = trainers.ModelTrainer(
            model,
            loss=t["loss"],
            optimizer=t.get("optimizer", "adam"),
            lr=t.get("lr", 1e-3),
            metrics=metrics,
            callbacks=callbacks,
            seed=seed,
            verbose=verbose,
        )
    except ImportError as e:
        raise ConfigError(f"model.framework: {_message(e)}") from e
    except (TypeError, ValueError) as e:
        raise ConfigError(f"trainer: {_message(e)}") from e
    return {
        "dataset": dataset,
        "trainer": trainer,
        "train": train_loader,
        "val": val_loader,
        "checkpoints": checkpoints,
        "early_stopping": early,
        "output": out,
        "epochs": epochs,
        "monitor": monitor,
    }


def _seed_framework(framework: str | None, seed: int) -> None:
    """Seed the framework the model is built with, so the same seed gives the same initial weights."""
    from nitrain.models._architectures import _check_framework

    if _check_framework(framework) == "keras":
        from nitrain._frameworks import require_keras

        require_keras("nitrain train").utils.set_random_seed(seed)
    else:
        from nitrain._frameworks import require_torch

        require_torch("nitrain train").manual_seed(seed)


def _best_epoch(values: list, monitor: str) -> int | None:
    """0-based epoch of the first best value of ``values`` (NaN never best), as ModelCheckpoints keeps it."""
    name = monitor.removeprefix("val_")
    best, at = None, None
    for i, v in enumerate(values):
        v = float(v)
        if math.isnan(v):
            continue
        if best is None or (v > best if name in _MAX_METRICS else v < best):
            best, at = v, i
    return at


def run(
    path: str | os.PathLike[str],
    verbose: int = 1,
    epochs: int | None = None,
    output: str | os.PathLike[str] | None = None,
    framework: str | None = None,
) -> dict:
    """Train the config at ``path`` and return the history dict.

    ``epochs``, ``output`` and ``framework`` override the config's values when given. Written into the
    output folder: ``history.json`` (loss, metrics and lr per epoch), ``checkpoints/final`` (the model at
    the end of training: the last epoch's weights, or the best epoch's when early stopping stopped the
    run and restored them), ``checkpoints/best`` (the epoch with the best ``trainer.monitor`` value) and
    ``checkpoints/epoch_XXX`` every ``trainer.checkpoint_freq`` epochs; the ending is ``.pt`` for torch,
    ``.weights.h5`` for keras. With ``verbose`` it prints each file written and what it holds."""
    cfg = apply_overrides(load(path), epochs=epochs, output=output, framework=framework)
    parts = build(cfg, verbose=verbose)
    out, trainer, monitor = parts["output"], parts["trainer"], parts["monitor"]
    out.mkdir(parents=True, exist_ok=True)
    history = trainer.fit(parts["train"], epochs=parts["epochs"], validation=parts["val"])
    (out / "history.json").write_text(
        json.dumps({k: list(map(float, v)) for k, v in history.items()}, indent=2) + "\n"
    )
    done = len(history["loss"])
    final = trainer.save_checkpoint(str(out / "checkpoints" / f"final{trainer.checkpoint_suffix}"))
    if verbose:
        print(f"trained {done} of {parts['epochs']} epochs; wrote:")
        print(f"  {out / 'history.json'}: loss, metrics and lr of every epoch")
        early = parts["early_stopping"]
        if early is not None and early.stopped_epoch is not None and early.best_state is not None:
            stopped, best = early.stopped_epoch + 1, early.best_epoch + 1
            what = f"early stopping after epoch {stopped} restored epoch {best}'s weights"
        else:
            what = f"the model after epoch {done}"
        if final is not None:
            print(f"  {final}: {what}")
        best = _best_epoch(history.get(monitor, []), monitor)
        for saved in parts["checkpoints"].saved:
            if Path(saved).name.startswith("best") and best is not None:
                value = float(history[monitor][best])
                print(f"  {saved}: the model of epoch {best + 1}, best {monitor} = {value:.4g}")
            elif not Path(saved).name.startswith("best"):
                print(f"  {saved}: periodic checkpoint")
    return history
