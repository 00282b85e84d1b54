"""Cases shared by the torch and keras model tests, so both frameworks are checked on the same models."""

from nitrain import models

# Small configurations (name -> dim -> (input_image_size, options)) so every forward pass is quick on a CPU.
SMALL = {
    "alexnet": {
        2: ((32, 32, 1), {"filters": (4, 6, 8, 8, 8), "dense_units": 16}),
        3: ((16, 16, 16, 2), {"filters": (4, 6, 8, 8, 8), "dense_units": 16}),
    },
    "vgg": {
        2: ((32, 32, 1), {"base_filters": 2, "dense_units": 16}),
        3: ((32, 32, 32, 1), {"base_filters": 2, "dense_units": 16, "depth": 11}),
    },
    "resnet": {
        2: ((32, 32, 1), {"base_filters": 4}),
        3: ((32, 32, 32, 1), {"base_filters": 2, "depth": 10}),
    },
    "densenet": {
        2: ((32, 32, 1), {"growth_rate": 4, "block_config": (2, 2, 2, 2), "base_filters": 8}),
        3: ((16, 16, 16, 1), {"growth_rate": 4, "block_config": (2, 2), "base_filters": 4, "bn_size": 2}),
    },
    "unet": {
        2: ((30, 34, 1), {"filters": (4, 8, 16)}),
        3: ((16, 16, 16, 2), {"filters": (4, 8)}),
    },
    "autoencoder": {None: ((64, 32, 8), {})},
    "conv_autoencoder": {
        2: ((30, 32, 2), {"filters": (4, 8), "latent_dim": 4}),
        3: ((16, 16, 16, 1), {"filters": (4, 8), "latent_dim": 4}),
    },
    "basic": {
        2: ((32, 32, 1), {}),
        3: ((16, 16, 16, 1), {"filters": (4, 8)}),
    },
    "vit": {
        2: ((32, 32, 1), {"patch_size": 8, "embed_dim": 16, "depth": 1, "heads": 2}),
        3: ((16, 16, 16, 1), {"patch_size": (8, 8, 4), "embed_dim": 16, "depth": 1, "heads": 2}),
    },
}

#: Every (name, dim, mode) ``list_architectures`` offers.
CASES = [
    (row["name"], dim, mode)
    for row in models.list_architectures()
    for dim in row["dims"]
    for mode in row["modes"]
]
CASE_IDS = [f"{n}-{d}d-{m}" for n, d, m in CASES]

#: Registry round trips: (name, dim, input_image_size, mode, options), one per kind of model.
ROUND_TRIPS = [
    ("unet", 3, (16, 16, 8, 1), "segmentation", {"filters": (4, 8)}),
    ("vit", 2, (16, 16, 1), "regression", {"patch_size": 4, "embed_dim": 8, "depth": 1, "heads": 2}),
    ("densenet", 2, (32, 32, 2), "sigmoid", {"growth_rate": 4, "block_config": (2, 2), "base_filters": 4}),
    ("conv_autoencoder", 2, (20, 16, 1), "regression", {"filters": (4,), "latent_dim": 3}),
    ("autoencoder", None, (32, 8, 4), "sigmoid", {"activation": "tanh"}),
]
ROUND_TRIP_IDS = [c[0] for c in ROUND_TRIPS]
