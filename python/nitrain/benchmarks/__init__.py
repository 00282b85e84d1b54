"""Peer comparisons behind `nitrain bench` (and the scripts in the repository's benches/ folder).

Each benchmark measures nitrain and its peers in the same process on the same data and reports ratios;
nothing here is asserted by the test suite.
"""

from nitrain.benchmarks.loader import run_loader
from nitrain.benchmarks.pipeline import run_pipeline
from nitrain.benchmarks.reading import run_reading
from nitrain.benchmarks.sampling import run_sampling
from nitrain.benchmarks.transforms import run_transforms

__all__ = ["run_loader", "run_pipeline", "run_reading", "run_sampling", "run_transforms"]
