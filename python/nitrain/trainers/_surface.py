"""Surface distances between two binary masks on the host (numpy), for the ``hd95`` metric.

The distance transform is ANTs' exact Euclidean one (``iMath(..., 'MaurerDistance')``, ITK's signed Maurer
distance map): antspyx is a core dependency, so the metric needs nothing beyond it (scipy is a test-only
dependency; the tests check these distances against ``scipy.ndimage``). No framework is imported here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def surface(mask: np.ndarray) -> np.ndarray:
    """The voxels of ``mask`` with a face neighbour outside it (outside the array counts as outside):
    ``mask`` minus its erosion by the face-connected cross, as ``scipy.ndimage.binary_erosion`` does it."""
    mask = np.asarray(mask, dtype=bool)
    padded = np.pad(mask, 1, constant_values=False)
    interior = mask.copy()
    for axis in range(mask.ndim):
        for start in (0, 2):
            window = [slice(1, -1)] * mask.ndim
            window[axis] = slice(start, start + mask.shape[axis])
            interior &= padded[tuple(window)]
    return mask & ~interior


def distance_to(mask: np.ndarray, spacing: Sequence[float] | None = None) -> np.ndarray:
    """For every voxel, the Euclidean distance to the nearest voxel of ``mask`` (0 on it), in voxels or,
    with ``spacing`` (one value per axis), in its units."""
    import ants

    if not 2 <= mask.ndim <= 4:
        raise ValueError(f"hd95: each item must be a 2-D, 3-D or 4-D label map, got shape {mask.shape}")
    image = ants.from_numpy(
        np.ascontiguousarray(mask, dtype=np.float32),
        spacing=tuple(float(s) for s in spacing) if spacing is not None else None,
    )
    # signed: negative inside the mask, 0 on its border, the distance to it outside
    return np.maximum(ants.iMath(image, "MaurerDistance").numpy().astype(np.float64), 0.0)


def hd95(pred: np.ndarray, truth: np.ndarray, spacing: Sequence[float] | None = None) -> float:
    """The 95% Hausdorff distance between two non-empty binary masks: the larger of the two directed 95th
    percentiles of the distances from each surface voxel of one mask to the nearest surface voxel of the
    other (MONAI's ``compute_hausdorff_distance(percentile=95)``). Exact, in voxels or ``spacing``'s units.
    NaN when either mask is empty."""
    pred, truth = np.asarray(pred, dtype=bool), np.asarray(truth, dtype=bool)
    if pred.shape != truth.shape:
        raise ValueError(f"hd95: the masks differ in shape: {pred.shape} and {truth.shape}")
    if not pred.any() or not truth.any():
        return float("nan")
    # every distance is between voxels of the two masks: the joint bounding box is all that matters
    where = np.nonzero(pred | truth)
    box = tuple(slice(int(w.min()), int(w.max()) + 1) for w in where)
    sp, st = surface(pred[box]), surface(truth[box])
    from_pred = distance_to(st, spacing)[sp]
    from_truth = distance_to(sp, spacing)[st]
    return float(max(np.percentile(from_pred, 95), np.percentile(from_truth, 95)))
