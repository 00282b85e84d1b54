"""Autoencoders: a dense (MLP) one given its layer widths, and a convolutional one (2-D or 3-D).

Both return the reconstruction from ``forward`` and expose ``encode`` / ``decode`` (and the ``encoder`` /
``decoder`` submodules). Modes: 'regression' (linear reconstruction, the default) or 'sigmoid'
(reconstruction squashed to (0, 1), for images scaled to that range). ``number_of_outcomes`` is not used:
the output has the input's shape.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from nitrain.models import _plans
from nitrain.models.torch._layers import (
    NitrainNet,
    batch_norm,
    conv,
    conv_transpose,
    init_weights,
    output_activation,
)

#: The torch module of each of ``_plans.ACTIVATIONS``.
_ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh, "elu": nn.ELU}


class DenseAutoencoder(NitrainNet):
    def __init__(self, units: tuple[int, ...], mode: str, activation: str):
        super().__init__(None, units[0])
        act = _ACTIVATIONS[activation]
        enc: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(units[:-1], units[1:], strict=True)):
            enc.append(nn.Linear(a, b))
            if i < len(units) - 2:  # the code layer stays linear
                enc.append(act())
        dec: list[nn.Module] = []
        back = units[::-1]
        for i, (a, b) in enumerate(zip(back[:-1], back[1:], strict=True)):
            dec.append(nn.Linear(a, b))
            if i < len(back) - 2:
                dec.append(act())
        dec.append(output_activation(mode))
        self.encoder = nn.Sequential(*enc)
        self.decoder = nn.Sequential(*dec)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(x, 1) if x.dim() > 2 else x
        if x.shape[-1] != self.in_channels:
            raise ValueError(
                f"DenseAutoencoder expects {self.in_channels} features per sample, got {tuple(x.shape)}"
            )
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))


def build_dense(
    input_image_size: Sequence[int], number_of_outcomes: int, mode: str, dim: None, **options: Any
) -> nn.Module:
    """Dense autoencoder; the options, their defaults and checks are ``_plans.autoencoder``'s."""
    p = _plans.autoencoder(input_image_size, number_of_outcomes, mode, dim, **options)
    model = DenseAutoencoder(p.units, p.mode, p.activation)
    init_weights(model)
    return model


class ConvAutoencoder(NitrainNet):
    def __init__(
        self,
        dim: int,
        spatial: Sequence[int],
        channels: int,
        mode: str,
        filters: Sequence[int],
        latent_dim: int,
        bottom: Sequence[int],
    ) -> None:
        super().__init__(dim, channels)
        self.spatial = tuple(spatial)
        enc: list[nn.Module] = []
        c = channels
        for f in filters:
            enc += [
                conv(dim, c, f, kernel_size=3, stride=2, padding=1),
                batch_norm(dim, f),
                nn.ReLU(inplace=True),
            ]
            c = f
        self.bottom = tuple(bottom)
        flat = c * math.prod(bottom)
        enc += [nn.Flatten(), nn.Linear(flat, latent_dim)]
        self.encoder = nn.Sequential(*enc)
        dec: list[nn.Module] = [
            nn.Linear(latent_dim, flat),
            nn.ReLU(inplace=True),
            nn.Unflatten(1, (c, *bottom)),
        ]
        widths = list(filters[::-1][1:]) + [channels]
        for i, f in enumerate(widths):
            dec.append(conv_transpose(dim, c, f, kernel_size=3, stride=2, padding=1, output_padding=1))
            if i < len(widths) - 1:
                dec += [batch_norm(dim, f), nn.ReLU(inplace=True)]
            c = f
        self.decoder = nn.Sequential(*dec)
        self.activation = output_activation(mode)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        y = self.decoder(z)
        crop = (slice(None), slice(None), *(slice(0, s) for s in self.spatial))
        y = y[crop]
        return self.activation(y)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))


def build_conv(
    input_image_size: Sequence[int], number_of_outcomes: int, mode: str, dim: int, **options: Any
) -> nn.Module:
    """Convolutional autoencoder; the options, their defaults and checks are ``_plans.conv_autoencoder``'s."""
    p = _plans.conv_autoencoder(input_image_size, number_of_outcomes, mode, dim, **options)
    model = ConvAutoencoder(dim, p.spatial, p.channels, p.mode, p.filters, p.latent_dim, p.bottom)
    init_weights(model)
    return model
