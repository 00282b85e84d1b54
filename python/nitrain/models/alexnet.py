"""AlexNet (2-D or 3-D): five convolutions and three dense layers.

Max pools are padded and the features are adaptively pooled, so any spatial size >= 16 works (the first
convolution has an 11-voxel kernel with stride 4).
"""

from __future__ import annotations

from torch import nn

from nitrain.models._layers import Classifier, conv, init_weights, max_pool, output_activation
from nitrain.models._spec import check_min_size, int_tuple, parse_image_size, positive_int

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
        nn.Dropout(dropout),
        nn.Linear(f[4] * ps**dim, units),
        nn.ReLU(inplace=True),
        nn.Dropout(dropout),
        nn.Linear(units, units),
        nn.ReLU(inplace=True),
        nn.Linear(units, number_of_outcomes),
        output_activation(mode),
    )
    model = Classifier(dim, channels, features, ps, head)
    init_weights(model)
    return model
