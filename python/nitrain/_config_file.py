"""A ``nitrain train`` config as written: ``EXAMPLE`` (every accepted key, with what it does and its
default), the keys of each section, ``load`` (a TOML or YAML file into a dict), ``apply_overrides`` and
the checks of single values and ``{Name = arguments}`` specs that ``nitrain.config.build`` uses. Imports
no other nitrain module at import time (``sampler_names`` and ``transform_names`` import theirs when called).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

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
_EXPAND_DIMS = {-1: -1, 0: 0, 1: 1, "none": None}


class ConfigError(ValueError):
    """A config (or the data it points at) that cannot be trained; the message names the file, section
    or key."""


def _toml_module(version_info: tuple[int, ...] | None = None) -> ModuleType:
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


def load(path: str | os.PathLike[str]) -> dict:
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


def apply_overrides(
    cfg: dict,
    epochs: int | None = None,
    output: str | os.PathLike[str] | None = None,
    framework: str | None = None,
) -> dict:
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


def _int(where: str, value: object, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"{where}: must be an integer >= {low}, got {value!r}")
    return value


def _names(namespace: object) -> list[str]:
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


def _named(where: str, spec: object, namespace: object, kind: str) -> Any:
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


def _transforms(where: str, specs: object, namespace: object) -> list[Any]:
    if not isinstance(specs, list):
        raise ConfigError(f"{where}: expected a list of {{Name = arguments}}, got {specs!r}")
    return [_named(f"{where}[{i}]", t, namespace, "transform") for i, t in enumerate(specs)]


def _expand_dims(value: Any) -> int | None:
    key = value.lower() if isinstance(value, str) else value
    if value is None or (not isinstance(value, bool) and key in _EXPAND_DIMS):
        return None if value is None else _EXPAND_DIMS[key]
    raise ConfigError(f'loader.expand_dims: must be -1, 0, 1 or "none", got {value!r}')
