"""VGG (2-D or 3-D), keras: blocks of 3-wide convolutions, each block halving the image (see
``nitrain.models.vgg``)."""

from __future__ import annotations

from nitrain.models._spec import check_min_size, parse_image_size, positive_int
from nitrain.models.keras._layers import (
    batch_norm,
    conv,
    image_input,
    keras,
    layers,
    max_pool,
    output_dense,
    pool_flatten,
    relu,
)

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
    inputs = x = image_input(spatial, channels)
    for n, mult in zip(CONFIGS[depth], (1, 2, 4, 8, 8), strict=True):
        for _ in range(n):
            x = conv(x, dim, base * mult, 3, padding=1, bias=not batch_norm_layers)
            x = relu(batch_norm(x) if batch_norm_layers else x)
        x = max_pool(x, dim, 2, 2)
    x = pool_flatten(x, dim, ps)
    x = layers.Dropout(dropout)(layers.Dense(units, activation="relu")(x))
    x = layers.Dropout(dropout)(layers.Dense(units, activation="relu")(x))
    return keras.Model(inputs, output_dense(x, number_of_outcomes, mode), name=f"vgg{depth}_{dim}d")
