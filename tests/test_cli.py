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


def test_version():
    import nitrain

    res = _nitrain("--version")
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == f"nitrain {nitrain.__version__}"


def test_train_help_shows_a_complete_config():
    from nitrain.config import EXAMPLE

    res = _nitrain("train", "--help")
    assert res.returncode == 0, res.stderr
    assert EXAMPLE in res.stdout
    for option in ("--epochs", "--output", "--framework {torch,keras}"):
        assert option in res.stdout


# -- nitrain train: a problem with the config or its data is one line on stderr and exit status 2 ----------

CONFIG = """
[dataset]
base_dir = "{base_dir}"
x = {{ pattern = "sub-*/anat/*_T1w.nii.gz" }}
y = {{ file = "participants.tsv", column = "{column}" }}

[sampler]
SliceSampler = {{ sub_batch_size = 8, axis = {axis} }}

[model]
architecture = "basic"
dim = 2
framework = "{framework}"
input_image_size = [16, 16, 1]
options = {{ filters = [4] }}

[trainer]
loss = "mse"
"""


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    from nitrain import datasets

    return datasets.make_phantom_cohort(
        tmp_path_factory.mktemp("c") / "ds", n_subjects=4, seed=0, shape=(16, 16, 16)
    )


def _config(tmp_path, name="run.toml", **edits) -> str:
    values = {"base_dir": "", "column": "age", "axis": 2, "framework": "torch", **edits}
    path = tmp_path / name
    path.write_text(CONFIG.format(**values))
    return str(path)


def _one_line_error(res, *phrases):
    assert res.returncode == 2, (res.stdout, res.stderr)
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("nitrain train: ")
    for phrase in phrases:
        assert phrase in lines[0], lines[0]


def test_train_missing_base_dir(tmp_path):
    res = _nitrain("train", _config(tmp_path, base_dir=tmp_path / "nowhere"))
    _one_line_error(res, "dataset: FolderDataset: base_dir", "nowhere", "is not a folder")


def test_train_wrong_column(tmp_path, cohort):
    res = _nitrain("train", _config(tmp_path, base_dir=cohort, column="agee"))
    _one_line_error(res, "dataset: FolderDataset: column 'agee' not in", "participants.tsv", "'age'")


def test_train_bad_axis(tmp_path, cohort):
    res = _nitrain("train", _config(tmp_path, base_dir=cohort, axis=3))
    _one_line_error(res, "sampler: SliceSampler: axis 3 is out of range", "(3-D)")


def test_train_toml_parse_error(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text("[dataset\nbase_dir = 1\n")
    _one_line_error(_nitrain("train", str(path)), f"{path}: not valid TOML")


def test_train_yaml_parse_error(tmp_path):
    pytest.importorskip("yaml")
    path = tmp_path / "run.yaml"
    path.write_text("dataset:\n  base_dir: [unclosed\n  x: 1\n")
    _one_line_error(_nitrain("train", str(path)), f"{path}: not valid YAML")


def test_train_framework_not_installed(tmp_path, cohort):
    """keras hidden from the interpreter (None in sys.modules makes ``import keras`` fail)."""
    script = (
        "import sys; sys.modules['keras'] = None; from nitrain.cli import main; "
        f"raise SystemExit(main(['train', {_config(tmp_path, base_dir=cohort, framework='keras')!r}]))"
    )
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    _one_line_error(res, "model.framework: ", "keras 3, which is not installed", "pip install")


def test_train_overrides(tmp_path, cohort, capsys, monkeypatch):
    import json

    from nitrain.cli import main

    pytest.importorskip("torch")
    monkeypatch.chdir(tmp_path)  # where the default output, nitrain-run, would go
    out = tmp_path / "elsewhere"
    assert main(["train", _config(tmp_path, base_dir=cohort), "--epochs", "2", "--output", str(out)]) == 0
    history = json.loads((out / "history.json").read_text())
    assert len(history["loss"]) == 2
    assert (out / "checkpoints" / "final.pt").is_file()
    assert f"{out / 'checkpoints' / 'final.pt'}: the model after epoch 2" in capsys.readouterr().out
    assert not (tmp_path / "nitrain-run").exists()


def test_train_rejects_a_bad_epochs_option(tmp_path):
    res = _nitrain("train", _config(tmp_path), "--epochs", "0")
    assert res.returncode == 2
    assert "--epochs: must be a positive integer, got '0'" in res.stderr
