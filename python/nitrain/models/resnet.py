"""ResNet (2-D or 3-D), depth 10, 18, 34, 50, 101 or 152 (bottleneck blocks from 50 on).

A stride-2 stem, a stride-2 max pool and three stride-2 stages: 32x downsampling, so every spatial size must
be >= 32. Features are globally average pooled before the linear head.
"""

from __future__ import annotations

import torch
from torch import nn

from nitrain.models._layers import Classifier, batch_norm, conv, init_weights, max_pool, output_activation
from nitrain.models._spec import check_min_size, parse_image_size, positive_int

MIN_SIZE = 32
CONFIGS = {
    10: ("basic", (1, 1, 1, 1)),
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
}


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
    input_image_size,
    number_of_outcomes: int,
    mode: str,
    dim: int,
    *,
    depth: int = 18,
    base_filters: int = 64,
    dropout: float = 0.0,
):
    """ResNet. Options: ``depth`` (10, 18, 34, 50, 101, 152), ``base_filters`` (stage widths base x 1, 2,
    4, 8), ``dropout`` (before the linear head)."""
    spatial, channels = parse_image_size("resnet", input_image_size, dim)
    check_min_size("resnet", spatial, MIN_SIZE, "32x downsampling")
    if depth not in CONFIGS:
        raise ValueError(f"resnet: depth must be one of {sorted(CONFIGS)}, got {depth!r}")
    base = positive_int("resnet", "base_filters", base_filters)
    kind, counts = CONFIGS[depth]
    layers: list[nn.Module] = [
        conv(dim, channels, base, kernel_size=7, stride=2, padding=3, bias=False),
        batch_norm(dim, base),
        nn.ReLU(inplace=True),
        max_pool(dim, kernel_size=3, stride=2, padding=1),
    ]
    c_in = base
    for stage, n in enumerate(counts):
        for i in range(n):
            stride = 2 if stage > 0 and i == 0 else 1
            block = _Block(dim, c_in, base * 2**stage, stride, kind == "bottleneck")
            layers.append(block)
            c_in = block.out_channels
    head = nn.Sequential(nn.Dropout(dropout), nn.Linear(c_in, number_of_outcomes), output_activation(mode))
    model = Classifier(dim, channels, nn.Sequential(*layers), 1, head)
    init_weights(model)
    return model
