"""VGG (2-D or 3-D): blocks of 3-wide convolutions, each block halving the image; depth 11, 13, 16 or 19.

Five halvings, so every spatial size must be >= 32. Features are adaptively pooled (``pool_size``, default
1) before the dense layers, which keeps the 3-D model's dense layers small.
"""

from __future__ import annotations

from torch import nn

from nitrain.models._layers import Classifier, batch_norm, conv, init_weights, max_pool, output_activation
from nitrain.models._spec import check_min_size, parse_image_size, positive_int

MIN_SIZE = 32
CONFIGS = {11: (1, 1, 2, 2, 2), 13: (2, 2, 2, 2, 2), 16: (2, 2, 3, 3, 3), 19: (2, 2, 4, 4, 4)}


def build(
    input_image_size,
    number_of_outcomes: int,
    mode: str,
    dim: int,
    *,
    depth: int = 16,
    base_filters: int = 64,
    dense_units: int = 4096,
    dropout: float = 0.5,
    batch_norm_layers: bool = True,
    pool_size: int = 1,
):
    """VGG. Options: ``depth`` (11, 13, 16, 19), ``base_filters`` (widths are base x 1, 2, 4, 8, 8),
    ``dense_units``, ``dropout``, ``batch_norm_layers``, ``pool_size``."""
    spatial, channels = parse_image_size("vgg", input_image_size, dim)
    check_min_size("vgg", spatial, MIN_SIZE, "five 2x max pools")
    if depth not in CONFIGS:
        raise ValueError(f"vgg: depth must be one of {sorted(CONFIGS)}, got {depth!r}")
    base = positive_int("vgg", "base_filters", base_filters)
    units = positive_int("vgg", "dense_units", dense_units)
    ps = positive_int("vgg", "pool_size", pool_size)
    layers: list[nn.Module] = []
    c_in = channels
    for n, mult in zip(CONFIGS[depth], (1, 2, 4, 8, 8), strict=True):
        for _ in range(n):
            layers.append(conv(dim, c_in, base * mult, kernel_size=3, padding=1, bias=not batch_norm_layers))
            if batch_norm_layers:
                layers.append(batch_norm(dim, base * mult))
            layers.append(nn.ReLU(inplace=True))
            c_in = base * mult
        layers.append(max_pool(dim, kernel_size=2, stride=2))
    head = nn.Sequential(
        nn.Linear(c_in * ps**dim, units),
        nn.ReLU(inplace=True),
        nn.Dropout(dropout),
        nn.Linear(units, units),
        nn.ReLU(inplace=True),
        nn.Dropout(dropout),
        nn.Linear(units, number_of_outcomes),
        output_activation(mode),
    )
    model = Classifier(dim, channels, nn.Sequential(*layers), ps, head)
    init_weights(model)
    return model
