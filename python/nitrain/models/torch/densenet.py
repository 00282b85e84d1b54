"""DenseNet (2-D or 3-D): dense blocks joined by compressing, 2x average-pooling transitions.

A stride-2 stem and a stride-2 max pool, then one halving per transition: every spatial size must be
>= 4 * 2 ** (len(block_config) - 1) (32 for the default DenseNet-121 configuration).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from nitrain.models import _plans
from nitrain.models.torch._layers import (
    Classifier,
    avg_pool,
    batch_norm,
    conv,
    init_weights,
    output_activation,
    stem,
)


class _DenseLayer(nn.Module):
    def __init__(self, dim: int, c_in: int, growth_rate: int, bn_size: int, dropout: float):
        super().__init__()
        self.body = nn.Sequential(
            batch_norm(dim, c_in),
            nn.ReLU(inplace=True),
            conv(dim, c_in, bn_size * growth_rate, kernel_size=1, bias=False),
            batch_norm(dim, bn_size * growth_rate),
            nn.ReLU(inplace=True),
            conv(dim, bn_size * growth_rate, growth_rate, kernel_size=3, padding=1, bias=False),
        )
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, self.dropout(self.body(x))], dim=1)


def build(
    input_image_size: Sequence[int], number_of_outcomes: int, mode: str, dim: int, **options: Any
) -> nn.Module:
    """DenseNet; the options, their defaults and checks are ``_plans.densenet``'s."""
    p = _plans.densenet(input_image_size, number_of_outcomes, mode, dim, **options)
    base, blocks, gr = p.base_filters, p.block_config, p.growth_rate
    layers: list[nn.Module] = stem(dim, p.channels, base)
    c = base
    for i, n in enumerate(blocks):
        for _ in range(n):
            layers.append(_DenseLayer(dim, c, gr, p.bn_size, p.dropout))
            c += gr
        if i < len(blocks) - 1:
            c_out = max(1, int(c * p.compression))
            layers += [
                batch_norm(dim, c),
                nn.ReLU(inplace=True),
                conv(dim, c, c_out, kernel_size=1, bias=False),
                avg_pool(dim, kernel_size=2, stride=2),
            ]
            c = c_out
    layers += [batch_norm(dim, c), nn.ReLU(inplace=True)]
    head = nn.Sequential(nn.Linear(c, p.outcomes), output_activation(p.mode))
    model = Classifier(dim, p.channels, nn.Sequential(*layers), 1, head)
    init_weights(model)
    return model
