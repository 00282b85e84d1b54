"""Autoencoders, keras: a dense (MLP) one given its layer widths, and a convolutional one (2-D or 3-D)
(see ``nitrain.models.autoencoder``).

Both models return the reconstruction and carry their halves as the sub-models ``model.encoder`` and
``model.decoder`` (also ``model.get_layer('encoder')``): ``model.encoder(x)`` is the code,
``model.decoder(z)`` the reconstruction. The dense one takes ``(N, features)``; flatten images first.
"""

from __future__ import annotations

import math

from nitrain.models._spec import check_min_size, int_tuple, parse_image_size, positive_int
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

_ACTIVATIONS = ("elu", "gelu", "relu", "tanh")


def _output_activation(mode: str):
    return "sigmoid" if mode == "sigmoid" else "linear"


def _join(encoder, decoder, name: str):
    inputs = keras.Input(shape=encoder.input_shape[1:], name=encoder.inputs[0].name)
    model = keras.Model(inputs, decoder(encoder(inputs)), name=name)
    model.encoder = encoder
    model.decoder = decoder
    return model


def build_dense(
    input_image_size,
    number_of_outcomes: int,
    mode: str,
    dim: None,
    *,
    activation: str = "relu",
):
    """Dense autoencoder. ``input_image_size`` is the list of layer widths from the input to the code, e.g.
    ``(784, 500, 500, 2000, 10)``; the decoder mirrors it. Option: ``activation`` (relu, gelu, tanh, elu)."""
    units = int_tuple("autoencoder", "input_image_size (layer widths)", input_image_size, min_len=2)
    if activation not in _ACTIVATIONS:
        raise ValueError(f"autoencoder: activation must be one of {sorted(_ACTIVATIONS)}, got {activation!r}")
    act = keras.activations.gelu if activation == "gelu" else activation  # exact (erf) GELU, as torch's
    inputs = x = keras.Input(shape=(units[0],), name="features")
    for i, u in enumerate(units[1:]):
        x = layers.Dense(u, activation=act if i < len(units) - 2 else None)(x)  # the code stays linear
    encoder = keras.Model(inputs, x, name="encoder")
    back = units[::-1]
    code = x = keras.Input(shape=(units[-1],), name="code")
    for i, u in enumerate(back[1:]):
        x = layers.Dense(u, activation=act if i < len(back) - 2 else _output_activation(mode))(x)
    decoder = keras.Model(code, x, name="decoder")
    return _join(encoder, decoder, "autoencoder")


def build_conv(
    input_image_size,
    number_of_outcomes: int,
    mode: str,
    dim: int,
    *,
    filters=(32, 64, 128),
    latent_dim: int = 16,
):
    """Convolutional autoencoder. Options: ``filters`` (one stride-2 convolution each; the decoder
    mirrors them with transposed convolutions), ``latent_dim`` (size of the dense code). Every spatial
    size must be >= 4."""
    spatial, channels = parse_image_size("conv_autoencoder", input_image_size, dim)
    check_min_size("conv_autoencoder", spatial, 4)
    f = int_tuple("conv_autoencoder", "filters", filters)
    latent = positive_int("conv_autoencoder", "latent_dim", latent_dim)
    inputs = x = image_input(spatial, channels)
    bottom = list(spatial)
    for width in f:
        x = relu(batch_norm(conv(x, dim, width, 3, stride=2, padding=1)))
        bottom = [(s + 1) // 2 for s in bottom]
    encoder = keras.Model(inputs, layers.Dense(latent)(layers.Flatten()(x)), name="encoder")
    code = keras.Input(shape=(latent,), name="code")
    x = layers.Dense(f[-1] * math.prod(bottom), activation="relu")(code)
    x = layers.Reshape((*bottom, f[-1]))(x)
    widths = list(f[::-1][1:]) + [channels]
    for i, width in enumerate(widths):
        # torch's ConvTranspose(kernel 3, stride 2, padding 1, output_padding 1): exactly twice the size
        x = conv_transpose(x, dim, width, 3, 2, padding="same")
        if i < len(widths) - 1:
            x = relu(batch_norm(x))
    extra = [b * 2 ** len(f) - s for b, s in zip(bottom, spatial, strict=True)]
    if any(extra):
        x = _nd(dim, "Cropping")(tuple((0, e) for e in extra))(x)
    x = layers.Activation(_output_activation(mode))(x)
    decoder = keras.Model(code, x, name="decoder")
    return _join(encoder, decoder, f"conv_autoencoder_{dim}d")
