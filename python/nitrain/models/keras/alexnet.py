"""AlexNet (2-D or 3-D), keras: five convolutions and three dense layers (see ``nitrain.models.alexnet``)."""

from __future__ import annotations

from nitrain.models._spec import check_min_size, int_tuple, parse_image_size, positive_int
from nitrain.models.keras._layers import (
    conv,
    image_input,
    keras,
    layers,
    max_pool,
    output_dense,
    pool_flatten,
    relu,
)

MIN_SIZE = 16


def build(
    input_image_size,
    number_of_outcomes: int,
    mode: str,
    dim: int,
    *,
    filters=(64, 192, 384, 256, 256),
    dense_units: int = 4096,
    dropout: float = 0.5,
    pool_size: int | None = None,
):
    """AlexNet. Options: ``filters`` (5 convolution widths), ``dense_units``, ``dropout``, ``pool_size``
    (side of the adaptive average pool before the dense layers; default 6 in 2-D, 3 in 3-D)."""
    spatial, channels = parse_image_size("alexnet", input_image_size, dim)
    check_min_size("alexnet", spatial, MIN_SIZE, "11-voxel stride-4 first convolution")
    f = int_tuple("alexnet", "filters", filters)
    if len(f) != 5:
        raise ValueError(f"alexnet: filters must have 5 entries, got {filters!r}")
    units = positive_int("alexnet", "dense_units", dense_units)
    ps = positive_int("alexnet", "pool_size", pool_size if pool_size is not None else (6 if dim == 2 else 3))
    inputs = image_input(spatial, channels)
    x = max_pool(relu(conv(inputs, dim, f[0], 11, stride=4, padding=2)), dim, 3, 2, padding=1)
    x = max_pool(relu(conv(x, dim, f[1], 5, padding=2)), dim, 3, 2, padding=1)
    x = relu(conv(x, dim, f[2], 3, padding=1))
    x = relu(conv(x, dim, f[3], 3, padding=1))
    x = max_pool(relu(conv(x, dim, f[4], 3, padding=1)), dim, 3, 2, padding=1)
    x = layers.Dropout(dropout)(pool_flatten(x, dim, ps))
    x = layers.Dropout(dropout)(layers.Dense(units, activation="relu")(x))
    x = layers.Dense(units, activation="relu")(x)
    return keras.Model(inputs, output_dense(x, number_of_outcomes, mode), name=f"alexnet_{dim}d")
