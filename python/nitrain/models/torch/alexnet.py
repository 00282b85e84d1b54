"""AlexNet (2-D or 3-D): five convolutions and three dense layers.

Max pools are padded and the features are adaptively pooled, so any spatial size >= 16 works (the first
convolution has an 11-voxel kernel with stride 4).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import nn

from nitrain.models import _plans
from nitrain.models.torch._layers import Classifier, conv, init_weights, max_pool, output_activation


def build(
    input_image_size: Sequence[int], number_of_outcomes: int, mode: str, dim: int, **options: Any
) -> nn.Module:
    """AlexNet; the options, their defaults and checks are ``_plans.alexnet``'s."""
    p = _plans.alexnet(input_image_size, number_of_outcomes, mode, dim, **options)
    channels, f, ps = p.channels, p.filters, p.pool_size
    features = nn.Sequential(
        conv(dim, channels, f[0], kernel_size=11, stride=4, padding=2),
        nn.ReLU(inplace=True),
        max_pool(dim, kernel_size=3, stride=2, padding=1),
        conv(dim, f[0], f[1], kernel_size=5, padding=2),
        nn.ReLU(inplace=True),
        max_pool(dim, kernel_size=3, stride=2, padding=1),
        conv(dim, f[1], f[2], kernel_size=3, padding=1),
        nn.ReLU(inplace=True),
        conv(dim, f[2], f[3], kernel_size=3, padding=1),
        nn.ReLU(inplace=True),
        conv(dim, f[3], f[4], kernel_size=3, padding=1),
        nn.ReLU(inplace=True),
        max_pool(dim, kernel_size=3, stride=2, padding=1),
    )
    head = nn.Sequential(
        nn.Dropout(p.dropout),
        nn.Linear(f[4] * ps**dim, p.dense_units),
        nn.ReLU(inplace=True),
        nn.Dropout(p.dropout),
        nn.Linear(p.dense_units, p.dense_units),
        nn.ReLU(inplace=True),
        nn.Linear(p.dense_units, p.outcomes),
        output_activation(p.mode),
    )
    model = Classifier(dim, channels, features, ps, head)
    init_weights(model)
    return model
