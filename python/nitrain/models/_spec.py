"""Argument checks shared by every architecture creator, and the option descriptions of its plan. No torch,
no keras here: this module is imported eagerly."""

from __future__ import annotations

import inspect
import operator
from collections.abc import Callable
from typing import Any, NamedTuple, TypeVar

MODES = ("classification", "regression", "sigmoid", "segmentation")

F = TypeVar("F", bound=Callable[..., Any])


class Option(NamedTuple):
    """An architecture option: its default and a one-line description."""

    default: Any
    description: str


def options(**descriptions: str) -> Callable[[F], F]:
    """Describe the options of a plan function: one line per keyword-only parameter, no more, no fewer.

    Sets ``plan.options`` (``{name: Option(default, description)}`` in signature order), which
    ``list_architectures(details=True)``, the creators' docstrings and the unknown-option error read, and
    appends the same list to the plan's docstring.
    """

    def describe(plan: F) -> F:
        defaults = {
            p.name: p.default
            for p in inspect.signature(plan).parameters.values()
            if p.kind is inspect.Parameter.KEYWORD_ONLY
        }
        if set(defaults) != set(descriptions):
            raise TypeError(
                f"{plan.__name__}: describe exactly its options {sorted(defaults)}, "
                f"got descriptions of {sorted(descriptions)}"
            )
        described = {n: Option(d, descriptions[n]) for n, d in defaults.items()}
        plan.options = described  # type: ignore[attr-defined]
        plan.__doc__ = f"{inspect.cleandoc(plan.__doc__ or '')}\n\n{format_options(described)}"
        return plan

    return describe


def format_options(opts: dict[str, Option], indent: str = "") -> str:
    """``Options:`` and one ``name=default  description`` line per option, names aligned."""
    if not opts:
        return f"{indent}Options: none."
    left = {n: f"{n}={o.default!r}" for n, o in opts.items()}
    width = max(map(len, left.values()))
    lines = [f"{indent}    {left[n].ljust(width)}  {o.description}" for n, o in opts.items()]
    return "\n".join([f"{indent}Options:", *lines])


def parse_image_size(arch: str, input_image_size, dim: int) -> tuple[tuple[int, ...], int]:
    """``(spatial sizes, channels)`` from a channels-last ``input_image_size`` such as ``(64, 64, 1)``."""
    example = (64, 64, 1) if dim == 2 else (32, 32, 32, 1)
    try:
        size = tuple(operator.index(s) for s in input_image_size)
    except TypeError:
        raise ValueError(
            f"{arch} (dim={dim}): input_image_size must be {dim} spatial sizes and a channel count, "
            f"channels last, as integers (e.g. {example}); got {input_image_size!r}"
        ) from None
    if len(size) != dim + 1:
        raise ValueError(
            f"{arch} (dim={dim}): input_image_size must be {dim} spatial sizes and a channel count, "
            f"channels last (e.g. {example}); got {input_image_size!r} ({len(size)} entries)"
        )
    if any(s < 1 for s in size):
        raise ValueError(f"{arch}: every entry of input_image_size must be >= 1, got {input_image_size!r}")
    return size[:-1], size[-1]


def check_min_size(arch: str, spatial: tuple[int, ...], min_size: int, why: str = "") -> None:
    small = [s for s in spatial if s < min_size]
    if small:
        reason = f" ({why})" if why else ""
        raise ValueError(
            f"{arch}: input too small: every spatial size must be >= {min_size}{reason}; got spatial size "
            f"{tuple(spatial)}. Resample or pad the images, or pick a smaller architecture such as 'basic'."
        )


def check_mode(arch: str, mode: str, allowed: tuple[str, ...]) -> str:
    if mode not in allowed:
        extra = ""
        if mode == "segmentation":
            extra = " Segmentation needs an encoder-decoder network: use fetch_architecture('unet', dim=...)."
        elif mode == "classification" and "segmentation" in allowed:
            extra = " For voxel-wise classes use mode='segmentation' (one logit map per class)."
        raise ValueError(f"{arch}: mode must be one of {list(allowed)}, got {mode!r}.{extra}")
    return mode


def positive_int(arch: str, what: str, value) -> int:
    try:
        v = operator.index(value)
    except TypeError:
        raise ValueError(f"{arch}: {what} must be a positive integer, got {value!r}") from None
    if v < 1:
        raise ValueError(f"{arch}: {what} must be a positive integer, got {value!r}")
    return v


def int_tuple(arch: str, what: str, value, min_len: int = 1) -> tuple[int, ...]:
    if isinstance(value, int):
        value = (value,)
    try:
        out = tuple(positive_int(arch, what, v) for v in value)
    except TypeError:
        raise ValueError(f"{arch}: {what} must be a sequence of positive integers, got {value!r}") from None
    if len(out) < min_len:
        raise ValueError(f"{arch}: {what} needs at least {min_len} entries, got {value!r}")
    return out
