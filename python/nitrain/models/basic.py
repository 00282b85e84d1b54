"""A small, fast CNN (2-D or 3-D): conv-norm-relu-maxpool blocks, global average pool, linear head.

Each block halves the image, so every spatial size must be >= 2 ** len(filters) (8 by default).
"""

from __future__ import annotations

from torch import nn

from nitrain.models._layers import (
    NORMS,
    Classifier,
    conv,
    init_weights,
    max_pool,
    norm_layer,
    output_activation,
)
from nitrain.models._spec import check_min_size, int_tuple, parse_image_size


def build(
    input_image_size,
    number_of_outcomes: int,
    mode: str,
    dim: int,
    *,
    filters=(16, 32, 64),
    dropout: float = 0.0,
    norm="batch",
):
    """Basic CNN. Options: ``filters`` (one block per entry), ``dropout`` (before the linear head), ``norm``
    (``'batch'``, ``'group'``, ``'instance'`` or ``None``; use ``'group'`` for slices served
    image-batch by image-batch, whose batches are not i.i.d.)."""
    if norm not in NORMS:
        raise ValueError(f"basic: norm must be one of {NORMS}, got {norm!r}")
    spatial, channels = parse_image_size("basic", input_image_size, dim)
    f = int_tuple("basic", "filters", filters)
    check_min_size("basic", spatial, 2 ** len(f), f"{len(f)} 2x max pools")
    layers: list[nn.Module] = []
    c_in = channels
    for c in f:
        layers += [
            conv(dim, c_in, c, kernel_size=3, padding=1, bias=False),
            norm_layer(dim, c, norm),
            nn.ReLU(inplace=True),
            max_pool(dim, kernel_size=2, stride=2),
        ]
        c_in = c
    head = nn.Sequential(nn.Dropout(dropout), nn.Linear(c_in, number_of_outcomes), output_activation(mode))
    model = Classifier(dim, channels, nn.Sequential(*layers), 1, head)
    init_weights(model)
    return model
