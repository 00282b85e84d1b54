"""A small vision transformer (2-D or 3-D): non-overlapping patch embedding, a class token, learned
position embeddings, pre-norm transformer layers and a linear head on the class token.

Every spatial size must be a multiple of ``patch_size`` (and at least one patch).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from nitrain.models import _plans
from nitrain.models.torch._layers import NitrainNet, conv, output_activation


class ViT(NitrainNet):
    def __init__(self, p: _plans.ViTPlan):
        super().__init__(p.dim, p.channels)
        dim, channels, patch, embed_dim, dropout = p.dim, p.channels, p.patch, p.embed_dim, p.dropout
        self.patch_embed = conv(dim, channels, embed_dim, kernel_size=patch, stride=patch)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, p.n_patches + 1, embed_dim))
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        self.dropout = nn.Dropout(dropout)
        layer = nn.TransformerEncoderLayer(
            embed_dim, p.heads, p.mlp_dim, dropout, activation="gelu", batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, p.depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(embed_dim)
        self.head = nn.Sequential(nn.Linear(embed_dim, p.outcomes), output_activation(p.mode))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        tokens = self.patch_embed(x).flatten(2).transpose(1, 2)  # (N, patches, embed)
        cls = self.cls_token.expand(tokens.shape[0], -1, -1)
        tokens = self.dropout(torch.cat([cls, tokens], dim=1) + self.pos_embed)
        return self.head(self.norm(self.encoder(tokens))[:, 0])


def build(
    input_image_size: Sequence[int], number_of_outcomes: int, mode: str, dim: int, **options: Any
) -> nn.Module:
    """Vision transformer; the options, their defaults and checks are ``_plans.vit``'s."""
    return ViT(_plans.vit(input_image_size, number_of_outcomes, mode, dim, **options))
