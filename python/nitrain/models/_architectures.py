"""The architecture table behind ``list_architectures`` and ``fetch_architecture``. Imports no torch and
no keras: the creator imports its framework when it is called."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import operator
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass

from nitrain.models import _plans
from nitrain.models._spec import MODES, check_mode, positive_int

FRAMEWORKS = ("torch", "keras")
#: Every name ``framework=`` (and ``$NITRAIN_FRAMEWORK``) accepts, and the framework it means.
FRAMEWORK_NAMES = {
    "torch": "torch",
    "pytorch": "torch",
    "keras": "keras",
    "tensorflow": "keras",
    "tf": "keras",
}
_EXTRAS = {"torch": "pip install nitrain[torch]", "keras": "pip install 'nitrain[tensorflow]'"}
_CLASSIFIER_MODES = ("classification", "regression", "sigmoid")
_RECON_MODES = ("regression", "sigmoid")


class FrameworkNotAvailableError(ImportError, ValueError):
    """The framework a model was asked for (torch or keras) is not installed; the message names the extra
    to install."""


@dataclass(frozen=True)
class Architecture:
    name: str
    dims: tuple
    module: str
    function: str
    #: The framework-free ``_plans`` function: its keyword-only parameters are the options; it checks them.
    plan: Callable
    modes: tuple[str, ...]
    default_mode: str
    min_size: str
    description: str
    frameworks: tuple[str, ...] = FRAMEWORKS


ARCHITECTURES: dict[str, Architecture] = {
    a.name: a
    for a in (
        Architecture(
            "alexnet",
            (2, 3),
            "alexnet",
            "build",
            _plans.alexnet,
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
            _plans.vgg,
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
            _plans.resnet,
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
            _plans.densenet,
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
            _plans.unet,
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
            _plans.autoencoder,
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
            _plans.conv_autoencoder,
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
            _plans.basic,
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
            _plans.vit,
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
            "frameworks": a.frameworks,
            "modes": a.modes,
            "default_mode": a.default_mode,
            "min_size": a.min_size,
            "description": a.description,
        }
        for a in ARCHITECTURES.values()
    )


def _installed(package: str) -> bool:
    """Whether ``package`` could be imported, without importing it (``sys.modules[name] = None`` blocks)."""
    if package in sys.modules:
        return sys.modules[package] is not None
    try:
        return importlib.util.find_spec(package) is not None
    except (ImportError, ValueError):
        return False


def default_framework() -> str:
    """``$NITRAIN_FRAMEWORK`` if set, else torch if it is installed, else keras if it is installed, else
    torch (whose creators then say how to install it)."""
    env = os.environ.get("NITRAIN_FRAMEWORK", "").strip()
    if env:
        return _check_framework(env, "NITRAIN_FRAMEWORK")
    for fw in ("torch", "keras"):
        if _installed(fw):
            return fw
    return "torch"


def _check_framework(framework: str | None, what: str = "framework") -> str:
    """The canonical framework name ('torch' or 'keras') of ``framework`` (None: the default)."""
    if framework is None:
        return default_framework()
    fw = FRAMEWORK_NAMES.get(framework.strip().lower()) if isinstance(framework, str) else None
    if fw is None:
        raise ValueError(
            f"unknown {what} {framework!r}; available: {list(FRAMEWORKS)} ('tensorflow' and 'tf' mean keras)"
        )
    return fw


def fetch_architecture(name: str, dim: int | None = None, framework: str | None = None):
    """The creator function of architecture ``name`` in ``dim`` dimensions, for ``framework``.

    The creator is ``fn(input_image_size, number_of_outcomes=1, mode=<default>, **options)``;
    ``input_image_size`` is channels-last, e.g. ``(64, 64, 1)``, as in the original nitrain.

    - ``framework='torch'``: an ``nn.Module`` taking channels-first tensors ``(N, C, *spatial)``.
    - ``framework='keras'`` (also 'tensorflow', 'tf'): a keras 3 ``Model`` taking channels-last
      ``(N, *spatial, C)`` input, with the torch model's layers, widths, options and checks. It runs on
      whatever backend ``KERAS_BACKEND`` picks (tensorflow by default, or torch / jax).

    ``mode`` is 'classification' (logits; the softmax belongs in the loss, e.g. ``nn.CrossEntropyLoss`` or
    keras' ``from_logits=True``), 'regression' (linear), 'sigmoid' or, for unet, 'segmentation' (logit
    maps, ``(N, number_of_outcomes, *spatial)`` in torch, ``(N, *spatial, number_of_outcomes)`` in keras).
    The model's ``nitrain_spec`` records how it was built (``register_pretrained`` uses it).

    ``framework`` defaults to ``$NITRAIN_FRAMEWORK``, else torch if installed, else keras if installed.
    Calling the creator imports the framework (``FrameworkNotAvailableError`` names the extra to install
    when it is missing); fetching it does not.
    """
    fw = _check_framework(framework)
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
    if fw not in arch.frameworks:
        raise FrameworkNotAvailableError(
            f"architecture {name!r} has no {fw} version; it is available for {list(arch.frameworks)}"
        )
    return _creator(arch, dim, fw)


def _load_builder(arch: Architecture, framework: str):
    if framework == "keras":
        from nitrain._frameworks import require_keras

        try:
            require_keras(f"nitrain.models {arch.name} (framework='keras')")
        except ImportError as e:
            raise FrameworkNotAvailableError(str(e)) from e
        module = importlib.import_module(f"nitrain.models.keras.{arch.module}")
    else:
        try:
            import torch  # noqa: F401
        except ImportError as e:
            raise FrameworkNotAvailableError(
                f"nitrain.models architectures need torch: {_EXTRAS['torch']} "
                f"(or build the keras version: framework='keras', {_EXTRAS['keras']})"
            ) from e
        module = importlib.import_module(f"nitrain.models.{arch.module}")
    return getattr(module, arch.function)


def _creator(arch: Architecture, dim: int | None, framework: str):
    def create(input_image_size, number_of_outcomes: int = 1, mode: str | None = None, **options):
        builder = _load_builder(arch, framework)
        allowed = [
            p.name
            for p in inspect.signature(arch.plan).parameters.values()
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
        spec = {
            "name": arch.name,
            "dim": dim,
            "input_image_size": size,
            "number_of_outcomes": outcomes,
            "mode": mode,
            "options": dict(options),
            "framework": framework,
            "channels": "last" if framework == "keras" else "first",
        }
        if framework == "keras":
            object.__setattr__(model, "nitrain_spec", spec)  # a plain dict, not one keras tracks
        else:
            model.nitrain_spec = spec
        return model

    suffix = (f"_{dim}d" if dim is not None else "") + ("_keras" if framework == "keras" else "")
    create.__name__ = create.__qualname__ = f"create_{arch.name}{suffix}"
    create.framework = framework
    create.__doc__ = (
        f"{arch.description} ({framework}). Modes: {list(arch.modes)} (default {arch.default_mode!r}).\n\n"
        + (fetch_architecture.__doc__ or "")
    )
    return create
