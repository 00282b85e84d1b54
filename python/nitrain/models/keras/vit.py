"""A small vision transformer (2-D or 3-D), keras: non-overlapping patch embedding, a class token, learned
position embeddings, pre-norm transformer layers and a linear head on the class token (see
``nitrain.models.vit``)."""

from __future__ import annotations

import math

from nitrain.models._spec import int_tuple, parse_image_size, positive_int
from nitrain.models.keras._layers import (
    EPS,
    ClassTokenAndPosition,
    TakeClassToken,
    conv,
    image_input,
    keras,
    layers,
    output_dense,
)


def _encoder_layer(x, embed_dim: int, heads: int, mlp_dim: int, dropout: float):
    """torch's ``TransformerEncoderLayer(norm_first=True, activation='gelu')``."""
    h = layers.LayerNormalization(epsilon=EPS)(x)
    h = layers.MultiHeadAttention(heads, embed_dim // heads, dropout=dropout)(h, h)
    x = layers.Add()([x, layers.Dropout(dropout)(h)])
    h = layers.LayerNormalization(epsilon=EPS)(x)
    h = layers.Dense(mlp_dim, activation=keras.activations.gelu)(h)
    h = layers.Dense(embed_dim)(layers.Dropout(dropout)(h))
    return layers.Add()([x, layers.Dropout(dropout)(h)])


def build(
    input_image_size,
    number_of_outcomes: int,
    mode: str,
    dim: int,
    *,
    patch_size=8,
    embed_dim: int = 64,
    depth: int = 4,
    heads: int = 4,
    mlp_dim: int | None = None,
    dropout: float = 0.0,
):
    """Vision transformer. Options: ``patch_size`` (an int or one per spatial axis), ``embed_dim``,
    ``depth`` (transformer layers), ``heads`` (must divide embed_dim), ``mlp_dim`` (default 2 x
    embed_dim), ``dropout``."""
    spatial, channels = parse_image_size("vit", input_image_size, dim)
    patch = int_tuple("vit", "patch_size", patch_size)
    if len(patch) == 1:
        patch = patch * dim
    if len(patch) != dim:
        raise ValueError(f"vit: patch_size must be an int or {dim} ints, got {patch_size!r}")
    bad = [(s, p) for s, p in zip(spatial, patch, strict=True) if s < p or s % p]
    if bad:
        raise ValueError(
            f"vit: every spatial size must be a positive multiple of patch_size {patch}; got spatial size "
            f"{tuple(spatial)}. Pad or crop the images, or pick another patch_size."
        )
    e = positive_int("vit", "embed_dim", embed_dim)
    h = positive_int("vit", "heads", heads)
    if e % h:
        raise ValueError(f"vit: heads ({h}) must divide embed_dim ({e})")
    mlp = positive_int("vit", "mlp_dim", mlp_dim if mlp_dim is not None else 2 * e)
    n_layers = positive_int("vit", "depth", depth)
    n_patches = math.prod(s // p for s, p in zip(spatial, patch, strict=True))
    inputs = image_input(spatial, channels)
    x = conv(inputs, dim, e, patch, stride=patch, kernel_initializer="glorot_uniform")
    x = layers.Reshape((n_patches, e))(x)
    x = layers.Dropout(dropout)(ClassTokenAndPosition(n_patches, e, name="class_token_and_position")(x))
    for _ in range(n_layers):
        x = _encoder_layer(x, e, h, mlp, dropout)
    x = TakeClassToken()(layers.LayerNormalization(epsilon=EPS)(x))
    return keras.Model(inputs, output_dense(x, number_of_outcomes, mode), name=f"vit_{dim}d")
