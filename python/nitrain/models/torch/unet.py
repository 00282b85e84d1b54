"""U-Net (2-D or 3-D) for segmentation and other voxel-wise outputs.

``len(filters) - 1`` halvings, so every spatial size must be >= 2 ** (len(filters) - 1) (8 by default).
Sizes need not be divisible by that: upsampled maps are zero-padded to their skip connection's size.
Outputs are ``(N, number_of_outcomes, *spatial)``: logits for 'segmentation' (softmax or sigmoid lives in
the loss), probabilities for 'sigmoid', linear values for 'regression'.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from nitrain.models import _plans
from nitrain.models.torch._layers import (
    NitrainNet,
    batch_norm,
    conv,
    conv_transpose,
    init_weights,
    max_pool,
    output_activation,
)


def _double_conv(dim: int, c_in: int, c_out: int, bn: bool, dropout: float) -> nn.Module:
    layers: list[nn.Module] = []
    for a, b in ((c_in, c_out), (c_out, c_out)):
        layers.append(conv(dim, a, b, kernel_size=3, padding=1, bias=not bn))
        if bn:
            layers.append(batch_norm(dim, b))
        layers.append(nn.ReLU(inplace=True))
    if dropout:
        layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


class UNet(NitrainNet):
    def __init__(
        self,
        dim: int,
        channels: int,
        outcomes: int,
        mode: str,
        filters: Sequence[int],
        bn: bool,
        dropout: float,
    ) -> None:
        super().__init__(dim, channels)
        self.down = nn.ModuleList()
        c = channels
        for f in filters:
            self.down.append(_double_conv(dim, c, f, bn, dropout))
            c = f
        self.pool = max_pool(dim, kernel_size=2, stride=2)
        self.up = nn.ModuleList()
        self.merge = nn.ModuleList()
        for f in reversed(filters[:-1]):
            self.up.append(conv_transpose(dim, c, f, kernel_size=2, stride=2))
            self.merge.append(_double_conv(dim, 2 * f, f, bn, dropout))
            c = f
        self.out = nn.Sequential(conv(dim, c, outcomes, kernel_size=1), output_activation(mode))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        skips = []
        for i, block in enumerate(self.down):
            if i:
                x = self.pool(x)
            x = block(x)
            skips.append(x)
        skips.pop()
        for up, merge in zip(self.up, self.merge, strict=True):
            skip = skips.pop()
            x = up(x)
            pad: list[int] = []
            for axis in range(x.dim() - 1, 1, -1):  # F.pad lists the last axis first
                pad += [0, skip.shape[axis] - x.shape[axis]]
            if any(pad):
                x = F.pad(x, pad)
            x = merge(torch.cat([skip, x], dim=1))
        return self.out(x)


def build(
    input_image_size: Sequence[int], number_of_outcomes: int, mode: str, dim: int, **options: Any
) -> nn.Module:
    """U-Net; the options, their defaults and checks are ``_plans.unet``'s."""
    p = _plans.unet(input_image_size, number_of_outcomes, mode, dim, **options)
    model = UNet(dim, p.channels, p.outcomes, p.mode, p.filters, p.batch_norm, p.dropout)
    init_weights(model)
    return model
