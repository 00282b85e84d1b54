"""A small, fast CNN (2-D or 3-D): conv-norm-relu-maxpool blocks, global average pool, linear head.

Each block halves the image, so every spatial size must be >= 2 ** len(filters) (8 by default).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import nn

from nitrain.models import _plans
from nitrain.models.torch._layers import (
    Classifier,
    conv,
    init_weights,
    max_pool,
    norm_layer,
    output_activation,
)


def build(
    input_image_size: Sequence[int], number_of_outcomes: int, mode: str, dim: int, **options: Any
) -> nn.Module:
    """Basic CNN; the options, their defaults and checks are ``_plans.basic``'s."""
    p = _plans.basic(input_image_size, number_of_outcomes, mode, dim, **options)
    layers: list[nn.Module] = []
    c_in = p.channels
    for c in p.filters:
        layers += [
            conv(dim, c_in, c, kernel_size=3, padding=1, bias=False),
            norm_layer(dim, c, p.norm),
            nn.ReLU(inplace=True),
            max_pool(dim, kernel_size=2, stride=2),
        ]
        c_in = c
    head = nn.Sequential(nn.Dropout(p.dropout), nn.Linear(c_in, p.outcomes), output_activation(p.mode))
    model = Classifier(dim, p.channels, nn.Sequential(*layers), 1, head)
    init_weights(model)
    return model
