"""A small vision transformer (2-D or 3-D), keras: non-overlapping patch embedding, a class token, learned
position embeddings, pre-norm transformer layers and a linear head on the class token (see
``nitrain.models.torch.vit``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from nitrain.models import _plans
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


def _encoder_layer(x: Any, embed_dim: int, heads: int, mlp_dim: int, dropout: float) -> Any:
    """torch's ``TransformerEncoderLayer(norm_first=True, activation='gelu')``."""
    h = layers.LayerNormalization(epsilon=EPS)(x)
    h = layers.MultiHeadAttention(heads, embed_dim // heads, dropout=dropout)(h, h)
    x = layers.Add()([x, layers.Dropout(dropout)(h)])
    h = layers.LayerNormalization(epsilon=EPS)(x)
    h = layers.Dense(mlp_dim, activation=keras.activations.gelu)(h)
    h = layers.Dense(embed_dim)(layers.Dropout(dropout)(h))
    return layers.Add()([x, layers.Dropout(dropout)(h)])


def build(
    input_image_size: Sequence[int], number_of_outcomes: int, mode: str, dim: int, **options: Any
) -> Any:
    """Vision transformer; the options, their defaults and checks are ``_plans.vit``'s."""
    p = _plans.vit(input_image_size, number_of_outcomes, mode, dim, **options)
    e, n_patches = p.embed_dim, p.n_patches
    inputs = image_input(p.spatial, p.channels)
    x = conv(inputs, dim, e, p.patch, stride=p.patch, kernel_initializer="glorot_uniform")
    x = layers.Reshape((n_patches, e))(x)
    x = layers.Dropout(p.dropout)(ClassTokenAndPosition(n_patches, e, name="class_token_and_position")(x))
    for _ in range(p.depth):
        x = _encoder_layer(x, e, p.heads, p.mlp_dim, p.dropout)
    x = TakeClassToken()(layers.LayerNormalization(epsilon=EPS)(x))
    return keras.Model(inputs, output_dense(x, p.outcomes, p.mode), name=f"vit_{dim}d")
