"""DenseNet (2-D or 3-D), keras: dense blocks joined by compressing, 2x average-pooling transitions (see
``nitrain.models.densenet``)."""

from __future__ import annotations

from nitrain.models._spec import check_min_size, int_tuple, parse_image_size, positive_int
from nitrain.models.keras._layers import (
    avg_pool,
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


def _dense_layer(x, dim: int, growth_rate: int, bn_size: int, dropout: float):
    y = conv(relu(batch_norm(x)), dim, bn_size * growth_rate, 1, bias=False)
    y = conv(relu(batch_norm(y)), dim, growth_rate, 3, padding=1, bias=False)
    return layers.Concatenate(axis=-1)([x, layers.Dropout(dropout)(y)])


def build(
    input_image_size,
    number_of_outcomes: int,
    mode: str,
    dim: int,
    *,
    growth_rate: int = 32,
    block_config=(6, 12, 24, 16),
    base_filters: int = 64,
    bn_size: int = 4,
    compression: float = 0.5,
    dropout: float = 0.0,
):
    """DenseNet (default: DenseNet-121). Options: ``growth_rate``, ``block_config`` (layers per dense
    block), ``base_filters`` (stem width), ``bn_size`` (bottleneck width factor), ``compression``
    (channel factor of each transition, in (0, 1]), ``dropout`` (inside dense layers)."""
    spatial, channels = parse_image_size("densenet", input_image_size, dim)
    blocks = int_tuple("densenet", "block_config", block_config)
    check_min_size(
        "densenet", spatial, 4 * 2 ** (len(blocks) - 1), f"stem plus {len(blocks) - 1} transitions"
    )
    gr = positive_int("densenet", "growth_rate", growth_rate)
    base = positive_int("densenet", "base_filters", base_filters)
    bn = positive_int("densenet", "bn_size", bn_size)
    if not 0 < compression <= 1:
        raise ValueError(f"densenet: compression must be in (0, 1], got {compression!r}")
    inputs = image_input(spatial, channels)
    x = relu(batch_norm(conv(inputs, dim, base, 7, stride=2, padding=3, bias=False)))
    x = max_pool(x, dim, 3, 2, padding=1)
    c = base
    for i, n in enumerate(blocks):
        for _ in range(n):
            x = _dense_layer(x, dim, gr, bn, dropout)
            c += gr
        if i < len(blocks) - 1:
            c = max(1, int(c * compression))
            x = avg_pool(conv(relu(batch_norm(x)), dim, c, 1, bias=False), dim, 2, 2)
    x = pool_flatten(relu(batch_norm(x)), dim, 1)
    return keras.Model(inputs, output_dense(x, number_of_outcomes, mode), name=f"densenet_{dim}d")
