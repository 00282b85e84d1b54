"""ResNet (2-D or 3-D), keras, depth 10, 18, 34, 50, 101 or 152 (see ``nitrain.models.resnet``)."""

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
CONFIGS = {
    10: ("basic", (1, 1, 1, 1)),
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
}


def _block(x, dim: int, width: int, stride: int, bottleneck: bool):
    c_in = x.shape[-1]
    c_out = width * (4 if bottleneck else 1)
    if bottleneck:
        y = relu(batch_norm(conv(x, dim, width, 1, bias=False)))
        y = relu(batch_norm(conv(y, dim, width, 3, stride=stride, padding=1, bias=False)))
        y = batch_norm(conv(y, dim, c_out, 1, bias=False))
    else:
        y = relu(batch_norm(conv(x, dim, width, 3, stride=stride, padding=1, bias=False)))
        y = batch_norm(conv(y, dim, c_out, 3, padding=1, bias=False))
    shortcut = x
    if stride != 1 or c_in != c_out:
        shortcut = batch_norm(conv(x, dim, c_out, 1, stride=stride, bias=False))
    return relu(layers.Add()([y, shortcut]))


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
    inputs = image_input(spatial, channels)
    x = relu(batch_norm(conv(inputs, dim, base, 7, stride=2, padding=3, bias=False)))
    x = max_pool(x, dim, 3, 2, padding=1)
    for stage, n in enumerate(counts):
        for i in range(n):
            x = _block(x, dim, base * 2**stage, 2 if stage > 0 and i == 0 else 1, kind == "bottleneck")
    x = layers.Dropout(dropout)(pool_flatten(x, dim, 1))
    return keras.Model(inputs, output_dense(x, number_of_outcomes, mode), name=f"resnet{depth}_{dim}d")
