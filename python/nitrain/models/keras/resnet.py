"""ResNet (2-D or 3-D), keras, depth 10, 18, 34, 50, 101 or 152 (see ``nitrain.models.torch.resnet``)."""

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
    output_dense,
    pool_flatten,
    relu,
    stem,
)


def _block(x: Any, dim: int, width: int, stride: int, bottleneck: bool) -> Any:
    c_in = x.shape[-1]
    c_out = width * (4 if bottleneck else 1)
    if bottleneck:
        y = relu(batch_norm(conv(x, dim, width, 1, bias=False)))
        y = relu(batch_norm(conv(y, dim, width, 3, stride=stride, padding=1, bias=False)))
        y = batch_norm(conv(y, dim, c_out, 1, bias=False))
    else:
        y = relu(batch_norm(conv(x, dim, width, 3, stride=stride, padding=1, bias=False)))
        y = batch_norm(conv(y, dim, c_out, 3, padding=1, bias=False))
    shortcut = x
    if stride != 1 or c_in != c_out:
        shortcut = batch_norm(conv(x, dim, c_out, 1, stride=stride, bias=False))
    return relu(layers.Add()([y, shortcut]))


def build(
    input_image_size: Sequence[int], number_of_outcomes: int, mode: str, dim: int, **options: Any
) -> Any:
    """ResNet; the options, their defaults and checks are ``_plans.resnet``'s."""
    p = _plans.resnet(input_image_size, number_of_outcomes, mode, dim, **options)
    inputs = image_input(p.spatial, p.channels)
    x = stem(inputs, dim, p.base_filters)
    for width, stride in p.blocks:
        x = _block(x, dim, width, stride, p.bottleneck)
    x = layers.Dropout(p.dropout)(pool_flatten(x, dim, 1))
    return keras.Model(inputs, output_dense(x, p.outcomes, p.mode), name=f"resnet{p.depth}_{dim}d")
