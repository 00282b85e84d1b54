"""AlexNet (2-D or 3-D), keras: five convolutions and three dense layers (see
``nitrain.models.torch.alexnet``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from nitrain.models import _plans
from nitrain.models.keras._layers import (
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
    """AlexNet; the options, their defaults and checks are ``_plans.alexnet``'s."""
    p = _plans.alexnet(input_image_size, number_of_outcomes, mode, dim, **options)
    f, units = p.filters, p.dense_units
    inputs = image_input(p.spatial, p.channels)
    x = max_pool(relu(conv(inputs, dim, f[0], 11, stride=4, padding=2)), dim, 3, 2, padding=1)
    x = max_pool(relu(conv(x, dim, f[1], 5, padding=2)), dim, 3, 2, padding=1)
    x = relu(conv(x, dim, f[2], 3, padding=1))
    x = relu(conv(x, dim, f[3], 3, padding=1))
    x = max_pool(relu(conv(x, dim, f[4], 3, padding=1)), dim, 3, 2, padding=1)
    x = layers.Dropout(p.dropout)(pool_flatten(x, dim, p.pool_size))
    x = layers.Dropout(p.dropout)(layers.Dense(units, activation="relu")(x))
    x = layers.Dense(units, activation="relu")(x)
    return keras.Model(inputs, output_dense(x, p.outcomes, p.mode), name=f"alexnet_{dim}d")
