"""Autoencoders, keras: a dense (MLP) one given its layer widths, and a convolutional one (2-D or 3-D)
(see ``nitrain.models.torch.autoencoder``).

Both models return the reconstruction and carry their halves as the sub-models ``model.encoder`` and
``model.decoder`` (also ``model.get_layer('encoder')``): ``model.encoder(x)`` is the code,
``model.decoder(z)`` the reconstruction. The dense one takes ``(N, features)``; flatten images first.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from nitrain.models import _plans
from nitrain.models.keras._layers import (
    _nd,
    batch_norm,
    conv,
    conv_transpose,
    image_input,
    keras,
    layers,
    relu,
)


def _output_activation(mode: str) -> str:
    return "sigmoid" if mode == "sigmoid" else "linear"


def _join(encoder: Any, decoder: Any, name: str) -> Any:
    inputs = keras.Input(shape=encoder.input_shape[1:], name=encoder.inputs[0].name)
    model = keras.Model(inputs, decoder(encoder(inputs)), name=name)
    model.encoder = encoder
    model.decoder = decoder
    return model


def build_dense(
    input_image_size: Sequence[int], number_of_outcomes: int, mode: str, dim: None, **options: Any
) -> Any:
    """Dense autoencoder; the options, their defaults and checks are ``_plans.autoencoder``'s."""
    p = _plans.autoencoder(input_image_size, number_of_outcomes, mode, dim, **options)
    units = p.units
    act = keras.activations.gelu if p.activation == "gelu" else p.activation  # exact (erf) GELU, as torch's
    inputs = x = keras.Input(shape=(units[0],), name="features")
    for i, u in enumerate(units[1:]):
        x = layers.Dense(u, activation=act if i < len(units) - 2 else None)(x)  # the code stays linear
    encoder = keras.Model(inputs, x, name="encoder")
    back = units[::-1]
    code = x = keras.Input(shape=(units[-1],), name="code")
    for i, u in enumerate(back[1:]):
        x = layers.Dense(u, activation=act if i < len(back) - 2 else _output_activation(p.mode))(x)
    decoder = keras.Model(code, x, name="decoder")
    return _join(encoder, decoder, "autoencoder")


def build_conv(
    input_image_size: Sequence[int], number_of_outcomes: int, mode: str, dim: int, **options: Any
) -> Any:
    """Convolutional autoencoder; the options, their defaults and checks are ``_plans.conv_autoencoder``'s."""
    p = _plans.conv_autoencoder(input_image_size, number_of_outcomes, mode, dim, **options)
    f, spatial, bottom = p.filters, p.spatial, p.bottom
    inputs = x = image_input(spatial, p.channels)
    for width in f:
        x = relu(batch_norm(conv(x, dim, width, 3, stride=2, padding=1)))
    encoder = keras.Model(inputs, layers.Dense(p.latent_dim)(layers.Flatten()(x)), name="encoder")
    code = keras.Input(shape=(p.latent_dim,), name="code")
    x = layers.Dense(f[-1] * math.prod(bottom), activation="relu")(code)
    x = layers.Reshape((*bottom, f[-1]))(x)
    widths = list(f[::-1][1:]) + [p.channels]
    for i, width in enumerate(widths):
        # torch's ConvTranspose(kernel 3, stride 2, padding 1, output_padding 1): exactly twice the size
        x = conv_transpose(x, dim, width, 3, 2, padding="same")
        if i < len(widths) - 1:
            x = relu(batch_norm(x))
    extra = [b * 2 ** len(f) - s for b, s in zip(bottom, spatial, strict=True)]
    if any(extra):
        x = _nd(dim, "Cropping")(tuple((0, e) for e in extra))(x)
    x = layers.Activation(_output_activation(p.mode))(x)
    decoder = keras.Model(code, x, name="decoder")
    return _join(encoder, decoder, f"conv_autoencoder_{dim}d")
