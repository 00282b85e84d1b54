"""`nitrain train CONFIG`: the quickstart pipeline described by a TOML or YAML file.

``EXAMPLE`` below is a complete config: every accepted key, with what it does and its default. ``load``
reads a file, ``build`` checks a config and builds the pipeline (a FolderDataset split into training and
validation, their loaders, the model and a ModelTrainer) and ``run`` trains it and saves the results.
Problems with the config or the data it points at are found before training starts (``build`` reads the
first training record and draws one batch) and raise ``ConfigError`` with a message that names the file,
section or key; ``nitrain train`` prints it as one line and exits with status 2.

Transforms and samplers are written as ``{Name = [positional args]}``, ``{Name = {keyword args}}`` or
``{Name = value}`` (one argument). Relative paths (``output``, ``dataset.base_dir``) are relative to the
current folder.
"""

from __future__ import annotations

import json
import math
import sys
import traceback
from pathlib import Path

EXAMPLE = """\
# A complete nitrain train config: every accepted key. Required: dataset.base_dir, dataset.x,
# dataset.y, model.architecture, model.input_image_size and trainer.loss; the rest show their defaults
# or an example value.
output = "runs/brain-age"  # folder for history.json and checkpoints/ (default "nitrain-run")
epochs = 20                # default 10
seed = 0                   # the split, the loaders' order and random transforms, the model's initial
                           # weights and training (default 0)

[dataset]                  # a FolderDataset, split into training and validation subjects
base_dir = "ds004711"
x = { pattern = "sub-*/anat/*_T1w.nii.gz" }
y = { file = "participants.tsv", column = "age" }  # image targets: { pattern = "sub-*/anat/*_dseg.nii.gz" }
x_transforms = [ { NormalizeIntensity = [0, 1] } ]  # fixed transforms, applied once and cached
y_transforms = []          # fixed transforms of image targets (refused for a table column)
split = 0.8                # fraction of subjects for training; the others validate (default 0.8)
cache = "memory"           # "memory" (default), "disk" or false

[loader]
batch_size = 4             # images per batch (default 4)
shuffle = true             # shuffle the training subjects every epoch (default true)
x_transforms = [ { RandomNoise = { sd = 0.1 } } ]  # random augmentation of training batches only
expand_dims = -1           # channel axis of the batches: -1 last (default), 0 or 1 first, "none"

[sampler]                  # optional: serve slices, blocks or patches instead of whole images
SliceSampler = { sub_batch_size = 32, axis = 2 }

[model]
architecture = "basic"     # a name from nitrain.models.list_architectures()
dim = 2
framework = "torch"        # or "keras"; default: $NITRAIN_FRAMEWORK, else torch when installed
input_image_size = [64, 64, 1]  # channels-last size of one training item (must match the data)
number_of_outcomes = 1     # default 1
mode = "regression"        # default: the architecture's first mode
options = { filters = [16, 32, 64] }  # architecture options

[trainer]
loss = "mse"
optimizer = "adam"         # default "adam"
lr = 0.001                 # default 0.001
metrics = ["mae"]          # default none
monitor = "val_loss"       # what checkpoints/best and early stopping watch (default "val_loss")
early_stopping = 5         # stop after this many epochs without improvement; 0: never (default 0)
checkpoint_freq = 10       # also save checkpoints/epoch_XXX every this many epochs; 0: never (default 10)
"""

SECTIONS = {
    "output": str,
    "epochs": int,
    "seed": int,
    "dataset": dict,
    "loader": dict,
    "sampler": dict,
    "model": dict,
    "trainer": dict,
}
DATASET_KEYS = {"base_dir", "x", "y", "x_transforms", "y_transforms", "split", "cache"}
LOADER_KEYS = {"batch_size", "shuffle", "x_transforms", "expand_dims"}
MODEL_KEYS = {"architecture", "dim", "framework", "input_image_size", "number_of_outcomes", "mode", "options"}
TRAINER_KEYS = {"loss", "optimizer", "lr", "metrics", "monitor", "early_stopping", "checkpoint_freq"}
#: the accepted keys of each section (``sampler`` takes one sampler name, see ``sampler_names``)
KEYS = {
    "config": set(SECTIONS),
    "dataset": DATASET_KEYS,
    "loader": LOADER_KEYS,
    "model": MODEL_KEYS,
    "trainer": TRAINER_KEYS,
}
# Exported names a config cannot build: bases, and transforms taking functions or other transforms.
_NOT_IN_CONFIGS = {
    "BaseTransform",
    "RandomTransform",
    "Compose",
    "OneOf",
    "RandomChoice",
    "CustomFunction",
    "NumpyFunction",
    "BaseSampler",
}
# the key an architecture's error is about, found by a word of its message
_MODEL_ERRORS = {
    "options": "option",
    "number_of_outcomes": "number_of_outcomes",
    "input_image_size": "input_image_size",
    "mode": "mode",
}
_EXPAND_DIMS = {-1: -1, 0: 0, 1: 1, "none": None}
_MAX_METRICS = ("accuracy", "r2", "dice")  # monitored values where larger is better


class ConfigError(ValueError):
    """A config (or the data it points at) that cannot be trained; the message names the file, section
    or key."""


def _toml_module(version_info=None):
    """The TOML parser: ``tomllib`` on Python 3.11+, the ``tomli`` backport on 3.10 (``tomli``'s
    ``loads`` and ``TOMLDecodeError`` are ``tomllib``'s)."""
    if (version_info or sys.version_info) >= (3, 11):
        import tomllib  # type: ignore[import-not-found,unused-ignore]  # 3.11+; mypy checks as 3.10

        return tomllib
    try:
        import tomli
    except ImportError as e:
        raise ConfigError(
            "TOML configs on Python 3.10 need tomli (pip install 'tomli>=1.1'); or use a YAML config"
        ) from e
    return tomli


def load(path) -> dict:
    """Read a ``.toml``, ``.yaml`` or ``.yml`` config into a dict (``ConfigError`` when the file is missing,
    unreadable or not valid)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read the config: {e}") from e
    suffix = path.suffix.lower()
    if suffix == ".toml":
        toml = _toml_module()
        try:
            return toml.loads(text)
        except toml.TOMLDecodeError as e:
            raise ConfigError(f"{path}: not valid TOML: {e}") from e
    if suffix in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError as e:
            raise ConfigError("YAML configs need pyyaml (pip install pyyaml); or use TOML") from e
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            mark, problem = getattr(e, "problem_mark", None), getattr(e, "problem", None)
            if mark is not None and problem:
                where = f" at line {mark.line + 1}, column {mark.column + 1}"
                context = f" ({e.context})" if getattr(e, "context", None) else ""
                raise ConfigError(f"{path}: not valid YAML{where}: {problem}{context}") from e
            raise ConfigError(f"{path}: not valid YAML: {_message(e)}") from e
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: expected a mapping at the top level")
        return data
    raise ConfigError(f"{path}: expected a .toml, .yaml or .yml file")


def apply_overrides(cfg: dict, epochs: int | None = None, output=None, framework: str | None = None) -> dict:
    """``cfg`` with ``epochs``, ``output`` and ``model.framework`` replaced by the given values (the
    ``nitrain train`` options); ``None`` keeps the config's value. ``cfg`` itself is not changed."""
    cfg = dict(cfg)
    if epochs is not None:
        cfg["epochs"] = epochs
    if output is not None:
        cfg["output"] = str(output)
    if framework is not None:
        model = cfg.get("model")
        cfg["model"] = {**model, "framework": framework} if isinstance(model, dict) else model
    return cfg


def _message(e: BaseException) -> str:
    """An exception's message (a KeyError's without the quotes ``str`` adds)."""
    if isinstance(e, KeyError) and len(e.args) == 1:
        return str(e.args[0])
    return " ".join(str(e).split()) or type(e).__name__


def _check_keys(
    where: str, table: dict, allowed: set[str], required: set[str] | frozenset[str] = frozenset()
) -> None:
    unknown = sorted(set(table) - allowed, key=str)
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}; allowed: {sorted(allowed)}")
    missing = sorted(required - set(table))
    if missing:
        raise ConfigError(f"{where}: missing key {missing[0]!r}")


def _int(where: str, value, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"{where}: must be an integer >= {low}, got {value!r}")
    return value


def _names(namespace) -> list[str]:
    """The classes of ``namespace`` a config may name."""
    return sorted(
        n for n in getattr(namespace, "__all__", []) if n[:1].isupper() and n not in _NOT_IN_CONFIGS
    )


def sampler_names() -> list[str]:
    """The names the ``[sampler]`` section accepts."""
    from nitrain import samplers

    return _names(samplers)


def transform_names() -> list[str]:
    """The names the ``x_transforms`` / ``y_transforms`` lists accept."""
    from nitrain import transforms

    return _names(transforms)


def _named(where: str, spec, namespace, kind: str):
    """``{Name: args}`` -> ``namespace.Name(*args)`` / ``(**args)`` / ``(args)`` / ``()`` (args None)."""
    if not isinstance(spec, dict) or len(spec) != 1:
        raise ConfigError(f"{where}: expected one {{Name = arguments}}, got {spec!r}")
    ((name, args),) = spec.items()
    valid = _names(namespace)
    if name not in valid:
        raise ConfigError(f"{where}: unknown {kind} {name!r}; allowed: {valid}")
    cls = getattr(namespace, name)
    try:
        if args is None:
            return cls()
        if isinstance(args, dict):
            return cls(**args)
        if isinstance(args, list):
            return cls(*args)
        return cls(args)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{where}: {name}: {_message(e)}") from e


def _transforms(where: str, specs, namespace) -> list:
    if not isinstance(specs, list):
        raise ConfigError(f"{where}: expected a list of {{Name = arguments}}, got {specs!r}")
    return [_named(f"{where}[{i}]", t, namespace, "transform") for i, t in enumerate(specs)]


def _expand_dims(value):
    key = value.lower() if isinstance(value, str) else value
    if value is None or (not isinstance(value, bool) and key in _EXPAND_DIMS):
        return None if value is None else _EXPAND_DIMS[key]
    raise ConfigError(f'loader.expand_dims: must be -1, 0, 1 or "none", got {value!r}')


def _item_shape(x, channel) -> tuple:
    """The channels-last shape of one item of a batch ``x`` laid out with ``channel`` ('last', 'first' or
    None: no channel axis, the trainer adds one of length 1)."""
    shape = tuple(int(s) for s in x.shape[1:])
    if channel == "first":
        return (*shape[1:], shape[0])
    if channel is None:
        return (*shape, 1)
    return shape


def _first_batch(train, loader_args: dict):
    """One batch of the first training record, drawn like the training batches (a separate loader, so
    the training loader's epochs and random draws are untouched)."""
    from nitrain import loaders

    probe = loaders.DatasetLoader(train.subset([0]), batch_size=1, prefetch=0, **loader_args)
    return next(iter(probe))


def _monitor_names(metrics) -> set[str]:
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
    shared = {"sampler": sampler, "expand_dims": _expand_dims(ld.get("expand_dims", -1)), "seed": seed}
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


def _seed_framework(framework, seed: int) -> None:
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


def run(path, verbose: int = 1, epochs: int | None = None, output=None, framework: str | None = None) -> dict:
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
