"""The synthetic explainer task shared by the torch and keras tests: a bright blob in one known region
decides the label, so a good explanation peaks there."""

import numpy as np

SHAPE = (16, 16, 16)
CENTRE = np.array([5, 6, 5])


def _blob(centre, radius=3.0):
    g = np.stack(np.meshgrid(*[np.arange(n) for n in SHAPE], indexing="ij"), -1)
    return (np.linalg.norm(g - centre, axis=-1) <= radius).astype(np.float32)


def _sample(rng, positive):
    # Background texture everywhere; the label is whether a bright blob sits in one known quadrant.
    x = rng.normal(0, 0.3, SHAPE).astype(np.float32)
    if positive:
        x += 2 * _blob(CENTRE)
    return x


def _inside_outside(arr):
    inside = _blob(CENTRE) > 0
    return arr[inside].mean(), arr[~inside].mean()
