"""VGG (2-D or 3-D), keras: blocks of 3-wide convolutions, each block halving the image (see
``nitrain.models.torch.vgg``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from nitrain.models import _plans
from nitrain.models.keras._layers import (
    batch_norm,
    conv,
    image_input,
    keras,
    layers,
    max_pool,
    output_dense,
    pool_flatten,
    relu,
)


def build(
    input_image_size: Sequence[int], number_of_outcomes: int, mode: str, dim: int, **options: Any
) -> Any:
    """VGG; the options, their defaults and checks are ``_plans.vgg``'s."""
    p = _plans.vgg(input_image_size, number_of_outcomes, mode, dim, **options)
    inputs = x = image_input(p.spatial, p.channels)
    for n, width in p.stages:
        for _ in range(n):
            x = conv(x, dim, width, 3, padding=1, bias=not p.batch_norm)
            x = relu(batch_norm(x) if p.batch_norm else x)
        x = max_pool(x, dim, 2, 2)
    x = pool_flatten(x, dim, p.pool_size)
    x = layers.Dropout(p.dropout)(layers.Dense(p.dense_units, activation="relu")(x))
    x = layers.Dropout(p.dropout)(layers.Dense(p.dense_units, activation="relu")(x))
    return keras.Model(inputs, output_dense(x, p.outcomes, p.mode), name=f"vgg{p.depth}_{dim}d")
