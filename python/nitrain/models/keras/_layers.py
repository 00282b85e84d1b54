"""Dimension-generic keras 3 building blocks (2-D or 3-D), functional style, channels last.

Only ``keras.layers`` and ``keras.ops``: the models run on every keras backend (tensorflow, torch, jax).
Convolutions and pools take torch-style explicit ``padding`` so every feature map has the same size as
in the torch model of the same name (and hence the same dense-layer widths and parameter counts).
"""

from __future__ import annotations

from typing import Any

from nitrain._frameworks import require_keras
from nitrain.models._plans import NORMS

keras: Any = require_keras("nitrain.models.keras")
layers: Any = keras.layers

#: torch's defaults: BatchNorm momentum 0.1 (keras counts it the other way round) and eps 1e-5 everywhere.
BN_MOMENTUM = 0.9
EPS = 1e-5


def kaiming_fan_out():
    """``nn.init.kaiming_normal_(mode='fan_out', nonlinearity='relu')``, as the torch models use."""
    return keras.initializers.VarianceScaling(scale=2.0, mode="fan_out", distribution="untruncated_normal")


def _nd(dim: int, name: str):
    return getattr(layers, f"{name}{dim}D")


def pad(x, dim: int, padding: int):
    return _nd(dim, "ZeroPadding")(padding)(x) if padding else x


def conv(x, dim: int, filters: int, kernel_size, stride=1, padding: int = 0, bias: bool = True, **kw):
    """``ConvNd(c_in, filters, kernel_size, stride, padding, bias=bias)`` of torch on a channels-last map."""
    k = kernel_size if isinstance(kernel_size, tuple) else (kernel_size,) * dim
    same = stride == 1 and all(2 * padding == s - 1 for s in k)
    if not same:
        x = pad(x, dim, padding)
    return _nd(dim, "Conv")(
        filters,
        k,
        strides=stride,
        padding="same" if same else "valid",
        use_bias=bias,
        kernel_initializer=kw.pop("kernel_initializer", kaiming_fan_out()),
        **kw,
    )(x)


def conv_transpose(x, dim: int, filters: int, kernel_size: int, stride: int, padding: str = "valid"):
    return getattr(layers, f"Conv{dim}DTranspose")(
        filters, kernel_size, strides=stride, padding=padding, kernel_initializer=kaiming_fan_out()
    )(x)


def batch_norm(x):
    return layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=EPS)(x)


def norm_layer(x, kind):
    """``'batch'``, ``'group'`` (8 groups or fewer), ``'instance'`` (one group per channel, affine) or
    ``None`` (identity), as ``nitrain.models.torch._layers.norm_layer``."""
    channels = x.shape[-1]
    if kind == "batch":
        return batch_norm(x)
    if kind == "group":
        groups = next(g for g in (8, 4, 2, 1) if channels % g == 0)
        return layers.GroupNormalization(groups=groups, epsilon=EPS)(x)
    if kind == "instance":
        return layers.GroupNormalization(groups=channels, epsilon=EPS)(x)
    if kind is None:
        return x
    raise ValueError(f"norm must be one of {NORMS}, got {kind!r}")


def relu(x):
    return layers.ReLU()(x)


def max_pool(x, dim: int, pool_size: int, stride: int, padding: int = 0):
    """torch pads max pools with -inf; every padded pool here follows a ReLU, so zeros are equivalent."""
    return _nd(dim, "MaxPooling")(pool_size, strides=stride)(pad(x, dim, padding))


def avg_pool(x, dim: int, pool_size: int, stride: int):
    return _nd(dim, "AveragePooling")(pool_size, strides=stride)(x)


def stem(x, dim: int, width: int):
    """ResNet's and DenseNet's stem, as ``nitrain.models.torch._layers.stem``."""
    x = relu(batch_norm(conv(x, dim, width, 7, stride=2, padding=3, bias=False)))
    return max_pool(x, dim, 3, 2, padding=1)


def pool_flatten(x, dim: int, pool_size: int):
    """torch's ``AdaptiveAvgPoolNd(pool_size)`` then ``flatten(1)``."""
    if pool_size == 1:
        return _nd(dim, "GlobalAveragePooling")()(x)
    return layers.Flatten()(_nd(dim, "AdaptiveAveragePooling")(pool_size)(x))


def output_dense(x, outcomes: int, mode: str):
    """The last linear layer: sigmoid for ``mode='sigmoid'``, otherwise linear (classification gives
    logits; the softmax lives in the loss, e.g. ``CategoricalCrossentropy(from_logits=True)``)."""
    return layers.Dense(outcomes, activation="sigmoid" if mode == "sigmoid" else None, name="output")(x)


def image_input(spatial, channels: int):
    return keras.Input(shape=(*spatial, channels), name="image")


@keras.saving.register_keras_serializable(package="nitrain")
class ClassTokenAndPosition(layers.Layer):
    """Prepends a learned class token to ``(N, tokens, embed)`` and adds learned position embeddings."""

    def __init__(self, tokens: int, embed_dim: int, **kwargs):
        super().__init__(**kwargs)
        self.tokens = tokens
        self.embed_dim = embed_dim
        init = keras.initializers.TruncatedNormal(stddev=0.02)
        self.cls_token = self.add_weight(shape=(1, 1, embed_dim), initializer=init, name="cls_token")
        self.pos_embed = self.add_weight(shape=(1, tokens + 1, embed_dim), initializer=init, name="pos_embed")

    def call(self, x):
        ops = keras.ops
        cls = ops.broadcast_to(ops.cast(self.cls_token, x.dtype), (ops.shape(x)[0], 1, self.embed_dim))
        return ops.concatenate([cls, x], axis=1) + ops.cast(self.pos_embed, x.dtype)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.tokens + 1, self.embed_dim)

    def get_config(self):
        return {**super().get_config(), "tokens": self.tokens, "embed_dim": self.embed_dim}


@keras.saving.register_keras_serializable(package="nitrain")
class TakeClassToken(layers.Layer):
    """``x[:, 0]`` of a ``(N, tokens, embed)`` sequence."""

    def call(self, x):
        return x[:, 0]

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1])
