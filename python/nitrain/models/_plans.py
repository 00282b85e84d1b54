"""What each architecture is built from, checked once for both frameworks. No torch, no keras here.

One function per architecture turns ``(input_image_size, number_of_outcomes, mode, dim, **options)`` into a
frozen plan of checked values: its keyword-only parameters are the architecture's options and their
defaults (``fetch_architecture``'s creators accept exactly those, ``@options`` describes each in a line),
and its errors are the errors of both the torch builder (``nitrain.models.torch.<name>``) and the keras one
(``nitrain.models.keras.<name>``), which only turn the plan into layers. ``number_of_outcomes`` and ``mode``
arrive already checked by the creator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from nitrain.models._spec import check_min_size, int_tuple, options, parse_image_size, positive_int

#: The ``norm`` values of ``basic`` (``norm_layer`` in both frameworks' ``_layers``).
NORMS = ("batch", "group", "instance", None)
#: The ``activation`` values of the dense autoencoder.
ACTIVATIONS = ("elu", "gelu", "relu", "tanh")


@dataclass(frozen=True)
class ImagePlan:
    """What every image architecture has: ``dim``, the spatial sizes and channel count of the channels-last
    ``input_image_size``, and the output's ``outcomes`` and ``mode``."""

    dim: int
    spatial: tuple[int, ...]
    channels: int
    outcomes: int
    mode: str


@dataclass(frozen=True)
class AlexNetPlan(ImagePlan):
    filters: tuple[int, ...]
    dense_units: int
    dropout: float
    pool_size: int


@options(
    filters="widths of the five convolutions",
    dense_units="width of the two hidden dense layers",
    dropout="dropout rate before each hidden dense layer",
    pool_size="side of the adaptive average pool before the dense layers (None: 6 in 2-D, 3 in 3-D)",
)
def alexnet(
    input_image_size,
    number_of_outcomes: int,
    mode: str,
    dim: int,
    *,
    filters=(64, 192, 384, 256, 256),
    dense_units: int = 4096,
    dropout: float = 0.5,
    pool_size: int | None = None,
) -> AlexNetPlan:
    """AlexNet: five convolutions, three dense layers; every spatial size >= 16."""
    spatial, channels = parse_image_size("alexnet", input_image_size, dim)
    check_min_size("alexnet", spatial, 16, "11-voxel stride-4 first convolution")
    f = int_tuple("alexnet", "filters", filters)
    if len(f) != 5:
        raise ValueError(f"alexnet: filters must have 5 entries, got {filters!r}")
    units = positive_int("alexnet", "dense_units", dense_units)
    ps = positive_int("alexnet", "pool_size", pool_size if pool_size is not None else (6 if dim == 2 else 3))
    return AlexNetPlan(dim, spatial, channels, number_of_outcomes, mode, f, units, dropout, ps)


VGG_CONFIGS = {11: (1, 1, 2, 2, 2), 13: (2, 2, 2, 2, 2), 16: (2, 2, 3, 3, 3), 19: (2, 2, 4, 4, 4)}


@dataclass(frozen=True)
class VGGPlan(ImagePlan):
    depth: int
    #: ``(convolutions, width)`` of each of the five blocks, each followed by a 2x max pool.
    stages: tuple[tuple[int, int], ...]
    dense_units: int
    dropout: float
    batch_norm: bool
    pool_size: int


@options(
    depth="11, 13, 16 or 19 weight layers",
    base_filters="width of the first block; the five blocks are 1, 2, 4, 8, 8 times it",
    dense_units="width of the two hidden dense layers",
    dropout="dropout rate after each hidden dense layer",
    batch_norm_layers="batch norm after every convolution",
    pool_size="side of the adaptive average pool before the dense layers",
)
def vgg(
    input_image_size,
    number_of_outcomes: int,
    mode: str,
    dim: int,
    *,
    depth: int = 16,
    base_filters: int = 64,
    dense_units: int = 4096,
    dropout: float = 0.5,
    batch_norm_layers: bool = True,
    pool_size: int = 1,
) -> VGGPlan:
    """VGG: five blocks of 3-wide convolutions, each followed by a 2x max pool; every spatial size >= 32."""
    spatial, channels = parse_image_size("vgg", input_image_size, dim)
    check_min_size("vgg", spatial, 32, "five 2x max pools")
    if depth not in VGG_CONFIGS:
        raise ValueError(f"vgg: depth must be one of {sorted(VGG_CONFIGS)}, got {depth!r}")
    base = positive_int("vgg", "base_filters", base_filters)
    units = positive_int("vgg", "dense_units", dense_units)
    ps = positive_int("vgg", "pool_size", pool_size)
    stages = tuple((n, base * m) for n, m in zip(VGG_CONFIGS[depth], (1, 2, 4, 8, 8), strict=True))
    return VGGPlan(
        dim, spatial, channels, number_of_outcomes, mode, depth, stages, units, dropout, batch_norm_layers, ps
    )


RESNET_CONFIGS = {
    10: ("basic", (1, 1, 1, 1)),
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
}


@dataclass(frozen=True)
class ResNetPlan(ImagePlan):
    depth: int
    base_filters: int
    bottleneck: bool
    #: ``(width, stride)`` of every residual block, stem excluded; a bottleneck block outputs 4 x width.
    blocks: tuple[tuple[int, int], ...]
    dropout: float


@options(
    depth="10, 18, 34 (basic blocks), 50, 101 or 152 (bottleneck blocks)",
    base_filters="stem width; the four stages are 1, 2, 4, 8 times it (bottleneck blocks output 4x that)",
    dropout="dropout rate before the linear head",
)
def resnet(
    input_image_size,
    number_of_outcomes: int,
    mode: str,
    dim: int,
    *,
    depth: int = 18,
    base_filters: int = 64,
    dropout: float = 0.0,
) -> ResNetPlan:
    """ResNet: a stride-2 stem and four stages of residual blocks (32x downsampling); every spatial size
    >= 32."""
    spatial, channels = parse_image_size("resnet", input_image_size, dim)
    check_min_size("resnet", spatial, 32, "32x downsampling")
    if depth not in RESNET_CONFIGS:
        raise ValueError(f"resnet: depth must be one of {sorted(RESNET_CONFIGS)}, got {depth!r}")
    base = positive_int("resnet", "base_filters", base_filters)
    kind, counts = RESNET_CONFIGS[depth]
    blocks = tuple(
        (base * 2**stage, 2 if stage > 0 and i == 0 else 1)
        for stage, n in enumerate(counts)
        for i in range(n)
    )
    return ResNetPlan(
        dim, spatial, channels, number_of_outcomes, mode, depth, base, kind == "bottleneck", blocks, dropout
    )


@dataclass(frozen=True)
class DenseNetPlan(ImagePlan):
    growth_rate: int
    block_config: tuple[int, ...]
    base_filters: int
    bn_size: int
    compression: float
    dropout: float


@options(
    growth_rate="channels each dense layer adds",
    block_config="dense layers per block (default: DenseNet-121)",
    base_filters="stem width",
    bn_size="bottleneck width of each dense layer, in multiples of growth_rate",
    compression="channel factor of each transition, in (0, 1]",
    dropout="dropout rate inside each dense layer",
)
def densenet(
    input_image_size,
    number_of_outcomes: int,
    mode: str,
    dim: int,
    *,
    growth_rate: int = 32,
    block_config=(6, 12, 24, 16),
    base_filters: int = 64,
    bn_size: int = 4,
    compression: float = 0.5,
    dropout: float = 0.0,
) -> DenseNetPlan:
    """DenseNet: dense blocks joined by compressing 2x transitions; every spatial size
    >= 4 * 2 ** (len(block_config) - 1)."""
    spatial, channels = parse_image_size("densenet", input_image_size, dim)
    blocks = int_tuple("densenet", "block_config", block_config)
    check_min_size(
        "densenet", spatial, 4 * 2 ** (len(blocks) - 1), f"stem plus {len(blocks) - 1} transitions"
    )
    gr = positive_int("densenet", "growth_rate", growth_rate)
    base = positive_int("densenet", "base_filters", base_filters)
    bn = positive_int("densenet", "bn_size", bn_size)
    if not 0 < compression <= 1:
        raise ValueError(f"densenet: compression must be in (0, 1], got {compression!r}")
    return DenseNetPlan(
        dim, spatial, channels, number_of_outcomes, mode, gr, blocks, base, bn, compression, dropout
    )


@dataclass(frozen=True)
class UNetPlan(ImagePlan):
    filters: tuple[int, ...]
    batch_norm: bool
    dropout: float


@options(
    filters="width of each level, top to bottom (at least 2 levels)",
    batch_norm_layers="batch norm after every convolution",
    dropout="dropout rate after each double convolution",
)
def unet(
    input_image_size,
    number_of_outcomes: int,
    mode: str,
    dim: int,
    *,
    filters=(32, 64, 128, 256),
    batch_norm_layers: bool = True,
    dropout: float = 0.0,
) -> UNetPlan:
    """U-Net; every spatial size >= 2 ** (len(filters) - 1)."""
    spatial, channels = parse_image_size("unet", input_image_size, dim)
    f = int_tuple("unet", "filters", filters, min_len=2)
    check_min_size("unet", spatial, 2 ** (len(f) - 1), f"{len(f) - 1} 2x max pools")
    return UNetPlan(dim, spatial, channels, number_of_outcomes, mode, f, batch_norm_layers, dropout)


@dataclass(frozen=True)
class DenseAutoencoderPlan:
    #: Layer widths from the input to the code; the decoder mirrors them.
    units: tuple[int, ...]
    mode: str
    activation: str


@options(activation="activation of the hidden layers: 'relu', 'gelu', 'tanh' or 'elu'")
def autoencoder(
    input_image_size,
    number_of_outcomes: int,
    mode: str,
    dim: None,
    *,
    activation: str = "relu",
) -> DenseAutoencoderPlan:
    """Dense autoencoder. ``input_image_size`` is the list of layer widths from the input to the code, e.g.
    ``(784, 500, 500, 2000, 10)``; the decoder mirrors it."""
    units = int_tuple("autoencoder", "input_image_size (layer widths)", input_image_size, min_len=2)
    if activation not in ACTIVATIONS:
        raise ValueError(f"autoencoder: activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
    return DenseAutoencoderPlan(units, mode, activation)


@dataclass(frozen=True)
class ConvAutoencoderPlan(ImagePlan):
    filters: tuple[int, ...]
    latent_dim: int
    #: Spatial size of the last encoder map: each stride-2 convolution gives ``(s + 1) // 2``.
    bottom: tuple[int, ...]


@options(
    filters="widths of the stride-2 encoder convolutions; the decoder mirrors them",
    latent_dim="size of the dense code",
)
def conv_autoencoder(
    input_image_size,
    number_of_outcomes: int,
    mode: str,
    dim: int,
    *,
    filters=(32, 64, 128),
    latent_dim: int = 16,
) -> ConvAutoencoderPlan:
    """Convolutional autoencoder: stride-2 convolutions, a dense code, transposed convolutions back; every
    spatial size >= 4."""
    spatial, channels = parse_image_size("conv_autoencoder", input_image_size, dim)
    check_min_size("conv_autoencoder", spatial, 4)
    f = int_tuple("conv_autoencoder", "filters", filters)
    latent = positive_int("conv_autoencoder", "latent_dim", latent_dim)
    bottom = spatial
    for _ in f:
        bottom = tuple((s + 1) // 2 for s in bottom)
    return ConvAutoencoderPlan(dim, spatial, channels, number_of_outcomes, mode, f, latent, bottom)


@dataclass(frozen=True)
class BasicPlan(ImagePlan):
    filters: tuple[int, ...]
    dropout: float
    norm: str | None


@options(
    filters="width of each conv-norm-relu-maxpool block",
    dropout="dropout rate before the linear head",
    norm="'batch', 'group', 'instance' or None; 'group' for slices served image-batch by image-batch",
)
def basic(
    input_image_size,
    number_of_outcomes: int,
    mode: str,
    dim: int,
    *,
    filters=(16, 32, 64),
    dropout: float = 0.0,
    norm="batch",
) -> BasicPlan:
    """Basic CNN: conv-norm-relu-maxpool blocks, global average pool, linear head; every spatial size
    >= 2 ** len(filters). Slices served image-batch by image-batch are not i.i.d. batches: batch norm's
    running statistics then lag behind, group norm does not depend on the batch."""
    if norm not in NORMS:
        raise ValueError(f"basic: norm must be one of {NORMS}, got {norm!r}")
    spatial, channels = parse_image_size("basic", input_image_size, dim)
    f = int_tuple("basic", "filters", filters)
    check_min_size("basic", spatial, 2 ** len(f), f"{len(f)} 2x max pools")
    return BasicPlan(dim, spatial, channels, number_of_outcomes, mode, f, dropout, norm)


@dataclass(frozen=True)
class ViTPlan(ImagePlan):
    #: Patch side along each spatial axis, and how many patches the image makes.
    patch: tuple[int, ...]
    n_patches: int
    embed_dim: int
    depth: int
    heads: int
    mlp_dim: int
    dropout: float


@options(
    patch_size="patch side: an int, or one per spatial axis; each spatial size must be a multiple",
    embed_dim="token width",
    depth="transformer layers",
    heads="attention heads; must divide embed_dim",
    mlp_dim="hidden width of each transformer MLP (None: 2 x embed_dim)",
    dropout="dropout rate of the embeddings, attention and MLPs",
)
def vit(
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
) -> ViTPlan:
    """Vision transformer: patch embedding, a class token, pre-norm transformer layers, a linear head."""
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
    layers = positive_int("vit", "depth", depth)
    n_patches = math.prod(s // p for s, p in zip(spatial, patch, strict=True))
    return ViTPlan(
        dim, spatial, channels, number_of_outcomes, mode, patch, n_patches, e, layers, h, mlp, dropout
    )
