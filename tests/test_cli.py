import subprocess
import sys

import pytest


def _nitrain(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "nitrain.cli", *args], capture_output=True, text=True, timeout=600
    )


def test_info_reports_version_and_threads():
    import nitrain

    res = _nitrain("info")
    assert res.returncode == 0, res.stderr
    assert f"nitrain {nitrain.__version__}" in res.stdout
    assert "kernel threads:" in res.stdout


def test_unknown_command_is_rejected():
    res = _nitrain("frobnicate")
    assert res.returncode == 2
    assert "invalid choice" in res.stderr


@pytest.mark.slow
def test_bench_prints_a_ratio_table(tmp_path):
    out = tmp_path / "bench.md"
    res = _nitrain("bench", "--quick", "--no-peers", "--threads", "2", "--out", str(out))
    assert res.returncode == 0, res.stderr
    report = out.read_text()
    assert report.strip() == res.stdout.strip()
    for axis in (0, 1, 2):
        assert f"| slices axis {axis}, shuffled, batch 32 | nitrain |" in report
        assert f"| slices axis {axis}, shuffled, batch 32 | numpy fancy indexing |" in report
    assert "| 64 random 64^3 blocks | numpy slicing + copy |" in report
    assert "memcpy (numpy copyto)" in report
    for name in (
        "RangeNormalize(0, 1)",
        "NormalizeIntensity(0, 1)",
        "RandomNoise(sd=0.2)",
        "RandomSmoothing(sigma=1.5)",
    ):
        assert f"| {name} | nitrain |" in report
    assert "| RandomSmoothing(sigma=1.5) | ants.smooth_image |" in report
