"""A small vision transformer (2-D or 3-D): non-overlapping patch embedding, a class token, learned
position embeddings, pre-norm transformer layers and a linear head on the class token.

Every spatial size must be a multiple of ``patch_size`` (and at least one patch).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from nitrain.models._layers import NitrainNet, conv, output_activation
from nitrain.models._spec import int_tuple, parse_image_size, positive_int


class ViT(NitrainNet):
    def __init__(
        self, dim, channels, n_patches, patch, outcomes, mode, embed_dim, depth, heads, mlp_dim, dropout
    ):
        super().__init__(dim, channels)
        self.patch_embed = conv(dim, channels, embed_dim, kernel_size=patch, stride=patch)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, n_patches + 1, embed_dim))
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        self.dropout = nn.Dropout(dropout)
        layer = nn.TransformerEncoderLayer(
            embed_dim, heads, mlp_dim, dropout, activation="gelu", batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(embed_dim)
        self.head = nn.Sequential(nn.Linear(embed_dim, outcomes), output_activation(mode))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        tokens = self.patch_embed(x).flatten(2).transpose(1, 2)  # (N, patches, embed)
        cls = self.cls_token.expand(tokens.shape[0], -1, -1)
        tokens = self.dropout(torch.cat([cls, tokens], dim=1) + self.pos_embed)
        return self.head(self.norm(self.encoder(tokens))[:, 0])


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
    n_patches = math.prod(s // p for s, p in zip(spatial, patch, strict=True))
    return ViT(
        dim,
        channels,
        n_patches,
        patch,
        number_of_outcomes,
        mode,
        e,
        positive_int("vit", "depth", depth),
        h,
        mlp,
        dropout,
    )
