"""DenseNet (2-D or 3-D), keras: dense blocks joined by compressing, 2x average-pooling transitions (see
``nitrain.models.torch.densenet``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from nitrain.models import _plans
from nitrain.models.keras._layers import (
    avg_pool,
    batch_norm,
    conv,
    image_input,
    keras,
    layers,
    output_dense,
    pool_flatten,
    relu,
    stem,
)


def _dense_layer(x: Any, dim: int, growth_rate: int, bn_size: int, dropout: float) -> Any:
    y = conv(relu(batch_norm(x)), dim, bn_size * growth_rate, 1, bias=False)
    y = conv(relu(batch_norm(y)), dim, growth_rate, 3, padding=1, bias=False)
    return layers.Concatenate(axis=-1)([x, layers.Dropout(dropout)(y)])


def build(
    input_image_size: Sequence[int], number_of_outcomes: int, mode: str, dim: int, **options: Any
) -> Any:
    """DenseNet; the options, their defaults and checks are ``_plans.densenet``'s."""
    p = _plans.densenet(input_image_size, number_of_outcomes, mode, dim, **options)
    inputs = image_input(p.spatial, p.channels)
    x = stem(inputs, dim, p.base_filters)
    c = p.base_filters
    for i, n in enumerate(p.block_config):
        for _ in range(n):
            x = _dense_layer(x, dim, p.growth_rate, p.bn_size, p.dropout)
            c += p.growth_rate
        if i < len(p.block_config) - 1:
            c = max(1, int(c * p.compression))
            x = avg_pool(conv(relu(batch_norm(x)), dim, c, 1, bias=False), dim, 2, 2)
    x = pool_flatten(relu(batch_norm(x)), dim, 1)
    return keras.Model(inputs, output_dense(x, p.outcomes, p.mode), name=f"densenet_{dim}d")
