"""A small, fast CNN (2-D or 3-D), keras: conv-norm-relu-maxpool blocks, global average pool, linear head
(see ``nitrain.models.torch.basic``)."""

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
    norm_layer,
    output_dense,
    pool_flatten,
    relu,
)


def build(
    input_image_size: Sequence[int], number_of_outcomes: int, mode: str, dim: int, **options: Any
) -> Any:
    """Basic CNN; the options, their defaults and checks are ``_plans.basic``'s."""
    p = _plans.basic(input_image_size, number_of_outcomes, mode, dim, **options)
    inputs = x = image_input(p.spatial, p.channels)
    for c in p.filters:
        x = max_pool(relu(norm_layer(conv(x, dim, c, 3, padding=1, bias=False), p.norm)), dim, 2, 2)
    x = layers.Dropout(p.dropout)(pool_flatten(x, dim, 1))
    return keras.Model(inputs, output_dense(x, p.outcomes, p.mode), name=f"basic_{dim}d")
