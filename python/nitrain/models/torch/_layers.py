"""Dimension-generic torch building blocks (2-D or 3-D) shared by the architectures."""

from __future__ import annotations

import torch
from torch import nn

from nitrain.models._plans import NORMS


def conv(dim: int, *args, **kwargs) -> nn.Module:
    return (nn.Conv2d if dim == 2 else nn.Conv3d)(*args, **kwargs)


def conv_transpose(dim: int, *args, **kwargs) -> nn.Module:
    return (nn.ConvTranspose2d if dim == 2 else nn.ConvTranspose3d)(*args, **kwargs)


def batch_norm(dim: int, channels: int) -> nn.Module:
    return (nn.BatchNorm2d if dim == 2 else nn.BatchNorm3d)(channels)


def norm_layer(dim: int, channels: int, kind) -> nn.Module:
    """``'batch'``, ``'group'`` (8 groups or fewer), ``'instance'`` or ``None`` (identity).

    Batch statistics suit i.i.d. batches; slices served image-batch by image-batch are not, and their
    running statistics then lag behind: ``'group'`` does not depend on the batch at all.
    """
    if kind == "batch":
        return batch_norm(dim, channels)
    if kind == "group":
        groups = next(g for g in (8, 4, 2, 1) if channels % g == 0)
        return nn.GroupNorm(groups, channels)
    if kind == "instance":
        return (nn.InstanceNorm2d if dim == 2 else nn.InstanceNorm3d)(channels, affine=True)
    if kind is None:
        return nn.Identity()
    raise ValueError(f"norm must be one of {NORMS}, got {kind!r}")


def max_pool(dim: int, *args, **kwargs) -> nn.Module:
    return (nn.MaxPool2d if dim == 2 else nn.MaxPool3d)(*args, **kwargs)


def avg_pool(dim: int, *args, **kwargs) -> nn.Module:
    return (nn.AvgPool2d if dim == 2 else nn.AvgPool3d)(*args, **kwargs)


def adaptive_avg_pool(dim: int, size: int) -> nn.Module:
    return (nn.AdaptiveAvgPool2d if dim == 2 else nn.AdaptiveAvgPool3d)(size)


def stem(dim: int, channels: int, width: int) -> list[nn.Module]:
    """ResNet's and DenseNet's stem: a 7-wide stride-2 convolution, batch norm, ReLU, a 3-wide stride-2
    max pool (4x downsampling)."""
    return [
        conv(dim, channels, width, kernel_size=7, stride=2, padding=3, bias=False),
        batch_norm(dim, width),
        nn.ReLU(inplace=True),
        max_pool(dim, kernel_size=3, stride=2, padding=1),
    ]


def output_activation(mode: str) -> nn.Module:
    """``sigmoid`` squashes; ``classification`` gives logits (softmax lives in the loss); else linear."""
    return nn.Sigmoid() if mode == "sigmoid" else nn.Identity()


def init_weights(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.Conv3d | nn.ConvTranspose2d | nn.ConvTranspose3d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d | nn.BatchNorm3d | nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class NitrainNet(nn.Module):
    """Base class: remembers the expected channels-first input and checks it on every call."""

    def __init__(self, dim: int | None, in_channels: int):
        super().__init__()
        self.dim = dim
        self.in_channels = in_channels

    def check_input(self, x: torch.Tensor) -> None:
        if self.dim is None:
            return
        if x.dim() != self.dim + 2 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"{type(self).__name__} expects channels-first input "
                f"(N, {self.in_channels}, {'H, W' if self.dim == 2 else 'D, H, W'}); got shape "
                f"{tuple(x.shape)}. nitrain torch models take (N, C, *spatial) tensors: move a channels-last "
                "axis with x.movedim(-1, 1)."
            )


class Classifier(NitrainNet):
    """``features -> adaptive average pool -> flatten -> head`` for the image-level architectures."""

    def __init__(self, dim: int, in_channels: int, features: nn.Module, pool_size: int, head: nn.Module):
        super().__init__(dim, in_channels)
        self.features = features
        self.pool = adaptive_avg_pool(dim, pool_size)
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        return self.head(torch.flatten(self.pool(self.features(x)), 1))
