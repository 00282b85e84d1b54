"""Argument checks shared by every architecture creator. No torch here: this module is imported eagerly."""

from __future__ import annotations

import operator

MODES = ("classification", "regression", "sigmoid", "segmentation")


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
