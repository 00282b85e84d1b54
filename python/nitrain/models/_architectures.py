"""The architecture table behind ``list_architectures`` and ``fetch_architecture``. Imports no torch and
no keras: a creator imports its framework and builder module (``Lazy``) when it is called."""

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
from nitrain.models._spec import MODES, Option, check_mode, format_options, positive_int

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
class Lazy:
    """The function ``module.function``, imported when first called: the table names each builder without
    importing torch or keras. The one place a builder module is imported."""

    module: str
    function: str

    def __call__(self, *args, **kwargs):
        return getattr(importlib.import_module(self.module), self.function)(*args, **kwargs)


@dataclass(frozen=True, kw_only=True)
class Architecture:
    """One row of the table: what ``fetch_architecture(name, ...)`` builds, and how."""

    name: str
    #: The framework-free ``_plans`` function: its keyword-only parameters are the options (``plan.options``
    #: describes them), and it checks every argument for both frameworks.
    plan: Callable
    #: The ``dim`` values it takes (``None``: ``dim=None``, for the dense autoencoder).
    dims: tuple[int | None, ...]
    #: The ``mode`` values it takes; the first is the default.
    modes: tuple[str, ...]
    #: Smallest spatial size per axis, as users read it.
    min_size: str
    description: str
    #: framework -> ``builder(input_image_size, number_of_outcomes, mode, dim, **options)``.
    builders: dict[str, Callable]

    @property
    def default_mode(self) -> str:
        return self.modes[0]

    @property
    def frameworks(self) -> tuple[str, ...]:
        return tuple(self.builders)

    @property
    def options(self) -> dict[str, Option]:
        return self.plan.options  # type: ignore[attr-defined]


ARCHITECTURES: dict[str, Architecture] = {
    a.name: a
    for a in (
        Architecture(
            name="alexnet",
            plan=_plans.alexnet,
            dims=(2, 3),
            modes=_CLASSIFIER_MODES,
            min_size="16",
            description="AlexNet: 5 convolutions, 3 dense layers",
            builders={
                "torch": Lazy("nitrain.models.torch.alexnet", "build"),
                "keras": Lazy("nitrain.models.keras.alexnet", "build"),
            },
        ),
        Architecture(
            name="vgg",
            plan=_plans.vgg,
            dims=(2, 3),
            modes=_CLASSIFIER_MODES,
            min_size="32",
            description="VGG 11/13/16/19 with batch norm",
            builders={
                "torch": Lazy("nitrain.models.torch.vgg", "build"),
                "keras": Lazy("nitrain.models.keras.vgg", "build"),
            },
        ),
        Architecture(
            name="resnet",
            plan=_plans.resnet,
            dims=(2, 3),
            modes=_CLASSIFIER_MODES,
            min_size="32",
            description="ResNet 10/18/34/50/101/152",
            builders={
                "torch": Lazy("nitrain.models.torch.resnet", "build"),
                "keras": Lazy("nitrain.models.keras.resnet", "build"),
            },
        ),
        Architecture(
            name="densenet",
            plan=_plans.densenet,
            dims=(2, 3),
            modes=_CLASSIFIER_MODES,
            min_size="4*2**(len(block_config)-1) (32)",
            description="DenseNet (121 by default)",
            builders={
                "torch": Lazy("nitrain.models.torch.densenet", "build"),
                "keras": Lazy("nitrain.models.keras.densenet", "build"),
            },
        ),
        Architecture(
            name="unet",
            plan=_plans.unet,
            dims=(2, 3),
            modes=("segmentation", "sigmoid", "regression"),
            min_size="2**(len(filters)-1) (8)",
            description="U-Net encoder-decoder, voxel-wise outputs",
            builders={
                "torch": Lazy("nitrain.models.torch.unet", "build"),
                "keras": Lazy("nitrain.models.keras.unet", "build"),
            },
        ),
        Architecture(
            name="autoencoder",
            plan=_plans.autoencoder,
            dims=(None,),
            modes=_RECON_MODES,
            min_size="-",
            description="dense autoencoder from layer widths, e.g. (784, 500, 500, 2000, 10)",
            builders={
                "torch": Lazy("nitrain.models.torch.autoencoder", "build_dense"),
                "keras": Lazy("nitrain.models.keras.autoencoder", "build_dense"),
            },
        ),
        Architecture(
            name="conv_autoencoder",
            plan=_plans.conv_autoencoder,
            dims=(2, 3),
            modes=_RECON_MODES,
            min_size="4",
            description="convolutional autoencoder with a dense code",
            builders={
                "torch": Lazy("nitrain.models.torch.autoencoder", "build_conv"),
                "keras": Lazy("nitrain.models.keras.autoencoder", "build_conv"),
            },
        ),
        Architecture(
            name="basic",
            plan=_plans.basic,
            dims=(2, 3),
            modes=_CLASSIFIER_MODES,
            min_size="2**len(filters) (8)",
            description="small fast CNN: conv-bn-relu-pool blocks, global pool, linear",
            builders={
                "torch": Lazy("nitrain.models.torch.basic", "build"),
                "keras": Lazy("nitrain.models.keras.basic", "build"),
            },
        ),
        Architecture(
            name="vit",
            plan=_plans.vit,
            dims=(2, 3),
            modes=_CLASSIFIER_MODES,
            min_size="patch_size (8)",
            description="small vision transformer with patch embedding",
            builders={
                "torch": Lazy("nitrain.models.torch.vit", "build"),
                "keras": Lazy("nitrain.models.keras.vit", "build"),
            },
        ),
    )
}

_COLUMNS = ("name", "dims", "frameworks", "modes", "min_size", "description")


class ArchitectureTable(list):
    """A list of dicts (name, dims, frameworks, modes, default_mode, min_size, description; with
    ``details=True`` also options: ``{name: Option(default, description)}``) that prints as a table, or
    with ``details=True`` one block per architecture with its options."""

    def __init__(self, rows=(), details: bool = False):
        super().__init__(rows)
        self.details = details

    def __repr__(self) -> str:
        if self.details:
            return "\n\n".join(_details(row) for row in self)
        rows = [[_cell(r[c]) for c in _COLUMNS] for r in self]
        widths = [max(len(c), *(len(row[i]) for row in rows)) for i, c in enumerate(_COLUMNS)]
        lines = ["  ".join(c.ljust(w) for c, w in zip(_COLUMNS, widths, strict=True))]
        lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in rows]
        return "\n".join(line.rstrip() for line in lines)

    __str__ = __repr__


def _cell(v) -> str:
    if isinstance(v, tuple):
        return ",".join("-" if x is None else str(x) for x in v)
    return str(v)


def _details(row: dict) -> str:
    modes = ", ".join(m + (" (default)" if m == row["default_mode"] else "") for m in row["modes"])
    dims = ", ".join(map(str, row["dims"]))
    return "\n".join(
        [
            f"{row['name']} - {row['description']}",
            f"  dims: {dims}   frameworks: {', '.join(row['frameworks'])}   min_size: {row['min_size']}",
            f"  modes: {modes}",
            format_options(row["options"], indent="  "),
        ]
    )


def list_architectures(details: bool = False) -> ArchitectureTable:
    """Every architecture ``fetch_architecture`` accepts: one dict per name with its ``dims`` (``None`` means
    the architecture takes ``dim=None``), ``frameworks``, supported ``modes`` (the first is the default,
    also given as ``default_mode``), ``min_size`` (smallest spatial size per axis) and ``description``.

    ``details=True`` adds ``options``, ``{name: Option(default, description)}``: the keyword options its
    creator takes, with their defaults and a line on each; the table then prints one block per
    architecture.
    """
    if not isinstance(details, bool):
        raise TypeError(f"list_architectures: details must be True or False, got {details!r}")
    return ArchitectureTable(
        (
            {
                "name": a.name,
                "dims": a.dims,
                "frameworks": a.frameworks,
                "modes": a.modes,
                "default_mode": a.default_mode,
                "min_size": a.min_size,
                "description": a.description,
                **({"options": dict(a.options)} if details else {}),
            }
            for a in ARCHITECTURES.values()
        ),
        details=details,
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
    ``**options`` are the architecture's own (widths, depth, dropout ...): the creator's docstring and
    ``list_architectures(details=True)`` list them with their defaults and a line on each.
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


def _require_framework(arch: Architecture, framework: str) -> None:
    """Import ``framework`` (keras quietly, after torch's triton), or raise ``FrameworkNotAvailableError``
    naming the extra to install."""
    if framework == "keras":
        from nitrain._frameworks import require_keras

        try:
            require_keras(f"nitrain.models {arch.name} (framework='keras')")
        except ImportError as e:
            raise FrameworkNotAvailableError(str(e)) from e
    else:
        try:
            import torch  # noqa: F401
        except ImportError as e:
            raise FrameworkNotAvailableError(
                f"nitrain.models architectures need torch: {_EXTRAS['torch']} "
                f"(or build the keras version: framework='keras', {_EXTRAS['keras']})"
            ) from e


def _creator(arch: Architecture, dim: int | None, framework: str):
    def create(input_image_size, number_of_outcomes: int = 1, mode: str | None = None, **options):
        _require_framework(arch, framework)
        unknown = sorted(set(options) - set(arch.options))
        if unknown:
            raise TypeError(
                f"{arch.name}: unknown option(s) {unknown}; valid options: {list(arch.options)} "
                "(nitrain.models.list_architectures(details=True) describes them)"
            )
        mode = arch.default_mode if mode is None else mode
        if mode not in MODES:
            raise ValueError(f"{arch.name}: mode must be one of {list(arch.modes)}, got {mode!r}")
        check_mode(arch.name, mode, arch.modes)
        outcomes = positive_int(arch.name, "number_of_outcomes", number_of_outcomes)
        model = arch.builders[framework](input_image_size, outcomes, mode, dim, **options)
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
    create.__dict__["framework"] = framework  # a function attribute: fetch_architecture(...).framework
    create.__doc__ = "\n\n".join(
        [
            f"{arch.description} ({framework}). Modes: {list(arch.modes)} (default {arch.default_mode!r})."
            + (f" Smallest spatial size per axis: {arch.min_size}." if dim is not None else ""),
            format_options(arch.options),
            inspect.cleandoc(fetch_architecture.__doc__ or ""),
        ]
    )
    return create
