"""The architecture table behind ``list_architectures`` and ``fetch_architecture``. Imports no torch."""

from __future__ import annotations

import importlib
import inspect
import operator
import os
from dataclasses import dataclass

from nitrain.models._spec import MODES, check_mode, positive_int

FRAMEWORKS = ("torch",)
_KERAS_NAMES = ("keras", "tensorflow", "tf")
_CLASSIFIER_MODES = ("classification", "regression", "sigmoid")
_RECON_MODES = ("regression", "sigmoid")


class FrameworkNotAvailableError(ImportError, ValueError):
    """A framework nitrain knows of but this build does not provide models for (keras / tensorflow)."""


@dataclass(frozen=True)
class Architecture:
    name: str
    dims: tuple
    module: str
    function: str
    modes: tuple[str, ...]
    default_mode: str
    min_size: str
    description: str


ARCHITECTURES: dict[str, Architecture] = {
    a.name: a
    for a in (
        Architecture(
            "alexnet",
            (2, 3),
            "alexnet",
            "build",
            _CLASSIFIER_MODES,
            "classification",
            "16",
            "AlexNet: 5 convolutions, 3 dense layers",
        ),
        Architecture(
            "vgg",
            (2, 3),
            "vgg",
            "build",
            _CLASSIFIER_MODES,
            "classification",
            "32",
            "VGG 11/13/16/19 with batch norm",
        ),
        Architecture(
            "resnet",
            (2, 3),
            "resnet",
            "build",
            _CLASSIFIER_MODES,
            "classification",
            "32",
            "ResNet 10/18/34/50/101/152",
        ),
        Architecture(
            "densenet",
            (2, 3),
            "densenet",
            "build",
            _CLASSIFIER_MODES,
            "classification",
            "4*2**(len(block_config)-1) (32)",
            "DenseNet (121 by default)",
        ),
        Architecture(
            "unet",
            (2, 3),
            "unet",
            "build",
            ("segmentation", "sigmoid", "regression"),
            "segmentation",
            "2**(len(filters)-1) (8)",
            "U-Net encoder-decoder, voxel-wise outputs",
        ),
        Architecture(
            "autoencoder",
            (None,),
            "autoencoder",
            "build_dense",
            _RECON_MODES,
            "regression",
            "-",
            "dense autoencoder from layer widths, e.g. (784, 500, 500, 2000, 10)",
        ),
        Architecture(
            "conv_autoencoder",
            (2, 3),
            "autoencoder",
            "build_conv",
            _RECON_MODES,
            "regression",
            "4",
            "convolutional autoencoder with a dense code",
        ),
        Architecture(
            "basic",
            (2, 3),
            "basic",
            "build",
            _CLASSIFIER_MODES,
            "classification",
            "2**len(filters) (8)",
            "small fast CNN: conv-bn-relu-pool blocks, global pool, linear",
        ),
        Architecture(
            "vit",
            (2, 3),
            "vit",
            "build",
            _CLASSIFIER_MODES,
            "classification",
            "patch_size (8)",
            "small vision transformer with patch embedding",
        ),
    )
}


class ArchitectureTable(list):
    """A list of dicts (name, dims, frameworks, modes, default_mode, min_size, description) that prints
    as a table."""

    def __repr__(self) -> str:
        cols = ("name", "dims", "frameworks", "modes", "min_size", "description")
        rows = [[_cell(r[c]) for c in cols] for r in self]
        widths = [max(len(c), *(len(row[i]) for row in rows)) for i, c in enumerate(cols)]
        lines = ["  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True))]
        lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in rows]
        return "\n".join(line.rstrip() for line in lines)

    __str__ = __repr__


def _cell(v) -> str:
    if isinstance(v, tuple):
        return ",".join("-" if x is None else str(x) for x in v)
    return str(v)


def list_architectures() -> ArchitectureTable:
    """Every architecture ``fetch_architecture`` accepts: one dict per name with its ``dims`` (``None`` means
    the architecture takes ``dim=None``), ``frameworks``, supported ``modes`` (the first is the default) and
    ``min_size`` (smallest spatial size per axis)."""
    return ArchitectureTable(
        {
            "name": a.name,
            "dims": a.dims,
            "frameworks": FRAMEWORKS,
            "modes": a.modes,
            "default_mode": a.default_mode,
            "min_size": a.min_size,
            "description": a.description,
        }
        for a in ARCHITECTURES.values()
    )


def default_framework() -> str:
    return os.environ.get("NITRAIN_FRAMEWORK", "").strip().lower() or "torch"


def _check_framework(framework: str | None) -> str:
    fw = (framework or default_framework()).lower()
    if fw in _KERAS_NAMES:
        raise FrameworkNotAvailableError(
            f"framework={fw!r}: keras/tensorflow models are not implemented in this build of nitrain "
            "(they would need `pip install nitrain[tensorflow]` and a nitrain release that ships them). "
            f"Available frameworks: {list(FRAMEWORKS)}; use framework='torch' (or unset NITRAIN_FRAMEWORK)."
        )
    if fw not in FRAMEWORKS:
        raise ValueError(f"unknown framework {fw!r}; available: {list(FRAMEWORKS)}")
    return fw


def fetch_architecture(name: str, dim: int | None = None, framework: str | None = None):
    """The creator function of architecture ``name`` in ``dim`` dimensions.

    The creator is ``fn(input_image_size, number_of_outcomes=1, mode=<default>, **options)``:
    ``input_image_size`` is channels-last, e.g. ``(64, 64, 1)``, as in the original nitrain, while the torch
    module it returns takes channels-first tensors ``(N, C, *spatial)``. ``mode`` is 'classification'
    (logits; the softmax belongs in the loss, e.g. ``nn.CrossEntropyLoss``), 'regression' (linear),
    'sigmoid' or, for unet, 'segmentation' (``(N, number_of_outcomes, *spatial)`` logits). Calling the
    creator needs torch; fetching it does not. ``framework`` defaults to ``$NITRAIN_FRAMEWORK``, else torch.
    """
    _check_framework(framework)
    arch = ARCHITECTURES.get(name) if isinstance(name, str) else None
    if arch is None:
        raise ValueError(f"unknown architecture {name!r}; available: {sorted(ARCHITECTURES)}")
    if dim is not None:
        try:
            dim = operator.index(dim)
        except TypeError:
            raise ValueError(f"{name}: dim must be an integer or None, got {dim!r}") from None
    if dim not in arch.dims:
        valid = ", ".join(f"dim={d}" for d in arch.dims)
        raise ValueError(
            f"architecture {name!r} does not support dim={dim!r}; valid: {valid}. "
            "See nitrain.models.list_architectures()."
        )
    return _creator(arch, dim)


def _load_builder(arch: Architecture):
    try:
        import torch  # noqa: F401
    except ImportError as e:
        raise ImportError("nitrain.models architectures need torch: pip install nitrain[torch]") from e
    module = importlib.import_module(f"nitrain.models.{arch.module}")
    return getattr(module, arch.function)


def _creator(arch: Architecture, dim: int | None):
    def create(input_image_size, number_of_outcomes: int = 1, mode: str | None = None, **options):
        builder = _load_builder(arch)
        allowed = [
            p.name
            for p in inspect.signature(builder).parameters.values()
            if p.kind is inspect.Parameter.KEYWORD_ONLY
        ]
        unknown = sorted(set(options) - set(allowed))
        if unknown:
            raise TypeError(f"{arch.name}: unknown option(s) {unknown}; valid options: {allowed}")
        mode = arch.default_mode if mode is None else mode
        if mode not in MODES:
            raise ValueError(f"{arch.name}: mode must be one of {list(arch.modes)}, got {mode!r}")
        check_mode(arch.name, mode, arch.modes)
        outcomes = positive_int(arch.name, "number_of_outcomes", number_of_outcomes)
        model = builder(input_image_size, outcomes, mode, dim, **options)
        size = tuple(operator.index(s) for s in input_image_size)
        model.nitrain_spec = {
            "name": arch.name,
            "dim": dim,
            "input_image_size": size,
            "number_of_outcomes": outcomes,
            "mode": mode,
            "options": dict(options),
            "framework": "torch",
            "channels": "first",
        }
        return model

    suffix = f"_{dim}d" if dim is not None else ""
    create.__name__ = create.__qualname__ = f"create_{arch.name}{suffix}"
    create.__doc__ = f"{arch.description}. Modes: {list(arch.modes)} (default {arch.default_mode!r}).\n\n" + (
        fetch_architecture.__doc__ or ""
    )
    return create
