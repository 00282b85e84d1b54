"""The training-pipeline benchmark runs end to end in quick mode (no peers) and reports its tables; no
timing is asserted."""

import re

from nitrain.benchmarks import run_pipeline
from nitrain.benchmarks.pipeline import worker_options


def test_quick_pipeline_reports_its_tables():
    report = run_pipeline(quick=True, peers=False)
    assert report.startswith("## Training-pipeline benchmark")
    assert "| loader | blocks/s | blocks | seconds | batch shape | nitrain speed-up |" in report
    assert "| loader | slices/s | slices | seconds | batch shape | nitrain speed-up |" in report
    assert "1.0x (reference)" in report
    for w in worker_options():
        label = "nitrain" if w is None else f"nitrain, num_workers={w}"
        # 4 subjects x 8 blocks of 32^3 in batches of 4, channels last
        assert re.search(rf"\| {re.escape(label)} \| [\d,.]+ \| 32 \| [\d.]+ \| 4x32x32x32x1 \|", report)
        # every axis-2 slice of 4 subjects at 2 mm (99x117x95)
        assert re.search(rf"\| {re.escape(label)} \| [\d,.]+ \| 380 \| [\d.]+ \| 32x99x117x1 \|", report)
    for n in (16, 64):
        assert re.search(rf"^\| {n} \| \d+ \| \d+ \| \d+ \| -?\d+ \|$", report, re.MULTILINE)
    assert "| TorchIO |" not in report and "| MONAI |" not in report
