"""VGG (2-D or 3-D): blocks of 3-wide convolutions, each block halving the image; depth 11, 13, 16 or 19.

Five halvings, so every spatial size must be >= 32. Features are adaptively pooled (``pool_size``, default
1) before the dense layers, which keeps the 3-D model's dense layers small.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import nn

from nitrain.models import _plans
from nitrain.models.torch._layers import (
    Classifier,
    batch_norm,
    conv,
    init_weights,
    max_pool,
    output_activation,
)


def build(
    input_image_size: Sequence[int], number_of_outcomes: int, mode: str, dim: int, **options: Any
) -> nn.Module:
    """VGG; the options, their defaults and checks are ``_plans.vgg``'s."""
    p = _plans.vgg(input_image_size, number_of_outcomes, mode, dim, **options)
    layers: list[nn.Module] = []
    c_in = p.channels
    for n, width in p.stages:
        for _ in range(n):
            layers.append(conv(dim, c_in, width, kernel_size=3, padding=1, bias=not p.batch_norm))
            if p.batch_norm:
                layers.append(batch_norm(dim, width))
            layers.append(nn.ReLU(inplace=True))
            c_in = width
        layers.append(max_pool(dim, kernel_size=2, stride=2))
    head = nn.Sequential(
        nn.Linear(c_in * p.pool_size**dim, p.dense_units),
        nn.ReLU(inplace=True),
        nn.Dropout(p.dropout),
        nn.Linear(p.dense_units, p.dense_units),
        nn.ReLU(inplace=True),
        nn.Dropout(p.dropout),
        nn.Linear(p.dense_units, p.outcomes),
        output_activation(p.mode),
    )
    model = Classifier(dim, p.channels, nn.Sequential(*layers), p.pool_size, head)
    init_weights(model)
    return model
