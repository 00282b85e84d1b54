"""U-Net (2-D or 3-D), keras, for segmentation and other voxel-wise outputs (see
``nitrain.models.torch.unet``).

Outputs are channels-last ``(N, *spatial, number_of_outcomes)``: logits for 'segmentation', probabilities
for 'sigmoid', linear values for 'regression'. Upsampled maps are zero-padded (at the end of each axis) to
their skip connection's size, so spatial sizes need not be divisible by ``2 ** (len(filters) - 1)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from nitrain.models import _plans
from nitrain.models.keras._layers import (
    _nd,
    batch_norm,
    conv,
    conv_transpose,
    image_input,
    keras,
    layers,
    max_pool,
    relu,
)


def _double_conv(x: Any, dim: int, filters: int, bn: bool, dropout: float) -> Any:
    for _ in range(2):
        x = conv(x, dim, filters, 3, padding=1, bias=not bn)
        x = relu(batch_norm(x) if bn else x)
    return layers.Dropout(dropout)(x) if dropout else x


def build(
    input_image_size: Sequence[int], number_of_outcomes: int, mode: str, dim: int, **options: Any
) -> Any:
    """U-Net; the options, their defaults and checks are ``_plans.unet``'s."""
    p = _plans.unet(input_image_size, number_of_outcomes, mode, dim, **options)
    inputs = x = image_input(p.spatial, p.channels)
    skips = []
    for i, width in enumerate(p.filters):
        if i:
            x = max_pool(x, dim, 2, 2)
        x = _double_conv(x, dim, width, p.batch_norm, p.dropout)
        skips.append(x)
    skips.pop()
    for width in reversed(p.filters[:-1]):
        skip = skips.pop()
        x = conv_transpose(x, dim, width, 2, 2)
        missing = [s - t for s, t in zip(skip.shape[1:-1], x.shape[1:-1], strict=True)]
        if any(missing):
            x = _nd(dim, "ZeroPadding")(tuple((0, m) for m in missing))(x)
        x = _double_conv(layers.Concatenate(axis=-1)([skip, x]), dim, width, p.batch_norm, p.dropout)
    activation = "sigmoid" if p.mode == "sigmoid" else None
    out = _nd(dim, "Conv")(p.outcomes, 1, activation=activation, name="output")(x)
    return keras.Model(inputs, out, name=f"unet_{dim}d")
