"""ResNet (2-D or 3-D), depth 10, 18, 34, 50, 101 or 152 (bottleneck blocks from 50 on).

A stride-2 stem, a stride-2 max pool and three stride-2 stages: 32x downsampling, so every spatial size must
be >= 32. Features are globally average pooled before the linear head.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from nitrain.models import _plans
from nitrain.models.torch._layers import Classifier, batch_norm, conv, init_weights, output_activation, stem


class _Block(nn.Module):
    def __init__(self, dim: int, c_in: int, width: int, stride: int, bottleneck: bool):
        super().__init__()
        expansion = 4 if bottleneck else 1
        c_out = width * expansion
        if bottleneck:
            self.body = nn.Sequential(
                conv(dim, c_in, width, kernel_size=1, bias=False),
                batch_norm(dim, width),
                nn.ReLU(inplace=True),
                conv(dim, width, width, kernel_size=3, stride=stride, padding=1, bias=False),
                batch_norm(dim, width),
                nn.ReLU(inplace=True),
                conv(dim, width, c_out, kernel_size=1, bias=False),
                batch_norm(dim, c_out),
            )
        else:
            self.body = nn.Sequential(
                conv(dim, c_in, width, kernel_size=3, stride=stride, padding=1, bias=False),
                batch_norm(dim, width),
                nn.ReLU(inplace=True),
                conv(dim, width, c_out, kernel_size=3, padding=1, bias=False),
                batch_norm(dim, c_out),
            )
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(
                conv(dim, c_in, c_out, kernel_size=1, stride=stride, bias=False), batch_norm(dim, c_out)
            )
        self.out_channels = c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.shortcut(x))


def build(
    input_image_size: Sequence[int], number_of_outcomes: int, mode: str, dim: int, **options: Any
) -> nn.Module:
    """ResNet; the options, their defaults and checks are ``_plans.resnet``'s."""
    p = _plans.resnet(input_image_size, number_of_outcomes, mode, dim, **options)
    base = p.base_filters
    layers: list[nn.Module] = stem(dim, p.channels, base)
    c_in = base
    for width, stride in p.blocks:
        block = _Block(dim, c_in, width, stride, p.bottleneck)
        layers.append(block)
        c_in = block.out_channels
    head = nn.Sequential(nn.Dropout(p.dropout), nn.Linear(c_in, p.outcomes), output_activation(p.mode))
    model = Classifier(dim, p.channels, nn.Sequential(*layers), 1, head)
    init_weights(model)
    return model
