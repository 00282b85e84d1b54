"""Datasets: where images and labels come from. (So far: the built-in phantom cohort.)"""

from nitrain.datasets.phantom import LABELS, make_phantom, make_phantom_cohort, phantom_arrays

__all__ = ["LABELS", "make_phantom", "make_phantom_cohort", "phantom_arrays"]
