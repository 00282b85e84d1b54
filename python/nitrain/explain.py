"""Alias of ``nitrain.explainers`` (the original nitrain README writes ``from nitrain import explain``)."""

from nitrain.explainers import *  # noqa: F403
from nitrain.explainers import __all__  # noqa: F401
