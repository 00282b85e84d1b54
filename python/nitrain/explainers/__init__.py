"""Explainers: which parts of an image drive a model's prediction, returned as images in the input's space.

Plot them over the anatomy with ``nitrain.plot.overlay``.
"""

from nitrain.explainers.gradients import GradientExplainer
from nitrain.explainers.occlusion import OcclusionExplainer

__all__ = ["GradientExplainer", "OcclusionExplainer"]
