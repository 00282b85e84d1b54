"""DenseNet (2-D or 3-D): dense blocks joined by compressing, 2x average-pooling transitions.

A stride-2 stem and a stride-2 max pool, then one halving per transition: every spatial size must be
>= 4 * 2 ** (len(block_config) - 1) (32 for the default DenseNet-121 configuration).
"""

from __future__ import annotations

import torch
from torch import nn

from nitrain.models._layers import (
    Classifier,
    avg_pool,
    batch_norm,
    conv,
    init_weights,
    max_pool,
    output_activation,
)
from nitrain.models._spec import check_min_size, int_tuple, parse_image_size, positive_int


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
    input_image_size,
    number_of_outcomes: int,
    mode: str,
    dim: int,
    *,
    growth_rate: int = 32,
    block_config=(6, 12, 24, 16),
    base_filters: int = 64,
    bn_size: int = 4,
    compression: float = 0.5,
    dropout: float = 0.0,
):
    """DenseNet (default: DenseNet-121). Options: ``growth_rate``, ``block_config`` (layers per dense
    block), ``base_filters`` (stem width), ``bn_size`` (bottleneck width factor), ``compression``
    (channel factor of each transition, in (0, 1]), ``dropout`` (inside dense layers)."""
    spatial, channels = parse_image_size("densenet", input_image_size, dim)
    blocks = int_tuple("densenet", "block_config", block_config)
    check_min_size(
        "densenet", spatial, 4 * 2 ** (len(blocks) - 1), f"stem plus {len(blocks) - 1} transitions"
    )
    gr = positive_int("densenet", "growth_rate", growth_rate)
    base = positive_int("densenet", "base_filters", base_filters)
    bn = positive_int("densenet", "bn_size", bn_size)
    if not 0 < compression <= 1:
        raise ValueError(f"densenet: compression must be in (0, 1], got {compression!r}")
    layers: list[nn.Module] = [
        conv(dim, channels, base, kernel_size=7, stride=2, padding=3, bias=False),
        batch_norm(dim, base),
        nn.ReLU(inplace=True),
        max_pool(dim, kernel_size=3, stride=2, padding=1),
    ]
    c = base
    for i, n in enumerate(blocks):
        for _ in range(n):
            layers.append(_DenseLayer(dim, c, gr, bn, dropout))
            c += gr
        if i < len(blocks) - 1:
            c_out = max(1, int(c * compression))
            layers += [
                batch_norm(dim, c),
                nn.ReLU(inplace=True),
                conv(dim, c, c_out, kernel_size=1, bias=False),
                avg_pool(dim, kernel_size=2, stride=2),
            ]
            c = c_out
    layers += [batch_norm(dim, c), nn.ReLU(inplace=True)]
    head = nn.Sequential(nn.Linear(c, number_of_outcomes), output_activation(mode))
    model = Classifier(dim, channels, nn.Sequential(*layers), 1, head)
    init_weights(model)
    return model
