"""Shared helpers for the trainer tests (a tiny regression task and a tiny conv model)."""

import numpy as np
import torch

from nitrain import datasets, loaders


def regression_arrays(n=48, size=8, seed=0):
    """Small random images; the target is a linear function of the image mean (learnable)."""
    rng = np.random.default_rng(seed)
    xs = [rng.normal(size=(size, size)).astype(np.float32) for _ in range(n)]
    ys = [float(3.0 * x.mean() + 1.0) for x in xs]
    return xs, ys


def regression_dataset(n=48, seed=0):
    xs, ys = regression_arrays(n, seed=seed)
    return datasets.MemoryDataset(xs, ys)


def make_loader(dataset, batch_size=8, shuffle=True, seed=0, **kw):
    return loaders.DatasetLoader(dataset, batch_size=batch_size, shuffle=shuffle, seed=seed, **kw)


class SmallConv(torch.nn.Module):
    """A tiny channels-first regressor: (N, 1, H, W) -> (N, outputs)."""

    def __init__(self, outputs=1, dropout=0.0):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 4, 3, padding=1)
        self.drop = torch.nn.Dropout(dropout)
        self.head = torch.nn.Linear(4, outputs)

    def forward(self, x):
        h = torch.relu(self.conv(x)).mean(dim=(2, 3))
        return self.head(self.drop(h))


def small_conv(seed=0, **kw):
    torch.manual_seed(seed)
    return SmallConv(**kw)


def weights(model):
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def same_weights(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
