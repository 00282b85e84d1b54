"""A small, fast CNN (2-D or 3-D), keras: conv-norm-relu-maxpool blocks, global average pool, linear head
(see ``nitrain.models.basic``)."""

from __future__ import annotations

from nitrain.models._spec import check_min_size, int_tuple, parse_image_size
from nitrain.models.keras._layers import (
    NORMS,
    conv,
    image_input,
    keras,
    layers,
    max_pool,
    norm_layer,
    output_dense,
    pool_flatten,
    relu,
)


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
    inputs = x = image_input(spatial, channels)
    for c in f:
        x = max_pool(relu(norm_layer(conv(x, dim, c, 3, padding=1, bias=False), norm)), dim, 2, 2)
    x = layers.Dropout(dropout)(pool_flatten(x, dim, 1))
    return keras.Model(inputs, output_dense(x, number_of_outcomes, mode), name=f"basic_{dim}d")
