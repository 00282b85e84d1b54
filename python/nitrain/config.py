"""`nitrain train CONFIG`: the quickstart pipeline described by a TOML or YAML file.

```toml
output = "runs/brain-age"
epochs = 20
seed = 0

[dataset]
base_dir = "ds004711"
x = { pattern = "sub-*/anat/*_T1w.nii.gz" }
y = { file = "participants.tsv", column = "age" }
x_transforms = [ { NormalizeIntensity = [0, 1] } ]
split = 0.8

[loader]
batch_size = 4
x_transforms = [ { RandomNoise = { sd = 0.1 } } ]

[sampler]
SliceSampler = { sub_batch_size = 32, axis = 2 }

[model]
architecture = "basic"
dim = 2
framework = "torch"          # or "keras"; default: $NITRAIN_FRAMEWORK, else torch when installed
input_image_size = [64, 64, 1]
mode = "regression"

[trainer]
loss = "mse"
optimizer = "adam"
lr = 0.001
```
Transforms and samplers are written as ``{Name = [positional args]}`` or ``{Name = {keyword args}}``.
"""

from __future__ import annotations

import json
from pathlib import Path

SECTIONS = {
    "output": str,
    "epochs": int,
    "seed": int,
    "dataset": dict,
    "loader": dict,
    "sampler": dict,
    "model": dict,
    "trainer": dict,
}
DATASET_KEYS = {"base_dir", "x", "y", "x_transforms", "y_transforms", "split", "cache"}
LOADER_KEYS = {"batch_size", "shuffle", "x_transforms", "expand_dims"}
MODEL_KEYS = {"architecture", "dim", "framework", "input_image_size", "number_of_outcomes", "mode", "options"}
TRAINER_KEYS = {"loss", "optimizer", "lr", "metrics", "early_stopping", "checkpoint_freq"}


class ConfigError(ValueError):
    pass


def load(path) -> dict:
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"config file not found: {path}")
    text = path.read_text()
    if path.suffix.lower() == ".toml":
        import tomllib

        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{path}: not valid TOML: {e}") from e
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError as e:
            raise ConfigError("YAML configs need pyyaml (pip install pyyaml); or use TOML") from e
        data = yaml.safe_load(text)
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: expected a mapping at the top level")
        return data
    raise ConfigError(f"{path}: expected a .toml, .yaml or .yml file")


def _check_keys(where: str, table: dict, allowed: set[str], required: set[str] = frozenset()) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}; allowed: {sorted(allowed)}")
    missing = sorted(required - set(table))
    if missing:
        raise ConfigError(f"{where}: missing key {missing[0]!r}")


def _named(where: str, spec, namespace, kind: str):
    """``{Name: args}`` -> ``namespace.Name(*args)`` / ``(**args)``."""
    if not isinstance(spec, dict) or len(spec) != 1:
        raise ConfigError(f"{where}: expected {{Name = arguments}}, got {spec!r}")
    ((name, args),) = spec.items()
    cls = getattr(namespace, name, None)
    if cls is None or not callable(cls):
        valid = sorted(n for n in getattr(namespace, "__all__", []) if n[0].isupper())
        raise ConfigError(f"{where}: unknown {kind} {name!r}; allowed: {valid}")
    try:
        if isinstance(args, dict):
            return cls(**args)
        if isinstance(args, list):
            return cls(*args)
        return cls(args)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{where}: {name}: {e}") from e


def build(cfg: dict):
    """Check the whole config and build the pipeline objects (nothing is trained yet)."""
    from nitrain import datasets, loaders, models, samplers, trainers, utils
    from nitrain import transforms as tx

    _check_keys("config", cfg, set(SECTIONS), {"dataset", "model", "trainer"})
    for key, kind in SECTIONS.items():
        if key in cfg and not isinstance(cfg[key], kind):
            raise ConfigError(f"config: {key!r} must be a {kind.__name__}, got {cfg[key]!r}")
    d = cfg["dataset"]
    _check_keys("dataset", d, DATASET_KEYS, {"base_dir", "x", "y"})
    xt = [
        _named(f"dataset.x_transforms[{i}]", t, tx, "transform")
        for i, t in enumerate(d.get("x_transforms", []))
    ]
    dataset = datasets.FolderDataset(
        d["base_dir"], d["x"], d["y"], x_transforms=xt, cache=d.get("cache", "memory")
    )
    seed = cfg.get("seed", 0)
    split = d.get("split", 0.8)
    train, val = dataset.split(split, random=True, seed=seed)
    sampler = None
    if "sampler" in cfg:
        sampler = _named("sampler", cfg["sampler"], samplers, "sampler")
    ld = cfg.get("loader", {})
    _check_keys("loader", ld, LOADER_KEYS)
    lxt = [
        _named(f"loader.x_transforms[{i}]", t, tx, "transform")
        for i, t in enumerate(ld.get("x_transforms", []))
    ]
    train_loader = loaders.DatasetLoader(
        train,
        batch_size=ld.get("batch_size", 4),
        shuffle=ld.get("shuffle", True),
        sampler=sampler,
        x_transforms=lxt,
        seed=seed,
    )
    val_loader = loaders.DatasetLoader(val, batch_size=ld.get("batch_size", 4), sampler=sampler, seed=seed)
    m = cfg["model"]
    _check_keys("model", m, MODEL_KEYS, {"architecture", "input_image_size"})
    try:
        arch = models.fetch_architecture(m["architecture"], dim=m.get("dim"), framework=m.get("framework"))
    except ValueError as e:
        what = "model.framework" if "framework" in str(e) else "model.architecture"
        raise ConfigError(f"{what}: {e}") from e
    model = arch(
        tuple(m["input_image_size"]),
        m.get("number_of_outcomes", 1),
        m.get("mode", "regression"),
        **m.get("options", {}),
    )
    t = cfg["trainer"]
    _check_keys("trainer", t, TRAINER_KEYS, {"loss"})
    out = Path(cfg.get("output", "nitrain-run"))
    callbacks = [
        utils.ModelCheckpoints(freq=t.get("checkpoint_freq", 10), directory=str(out / "checkpoints"))
    ]
    if t.get("early_stopping"):
        callbacks.append(utils.EarlyStopping(patience=int(t["early_stopping"])))
    try:
        trainer = trainers.ModelTrainer(
            model,
            loss=t["loss"],
            optimizer=t.get("optimizer", "adam"),
            lr=t.get("lr", 1e-3),
            metrics=t.get("metrics"),
            callbacks=callbacks,
            seed=seed,
        )
    except ValueError as e:
        raise ConfigError(f"trainer: {e}") from e
    return {
        "trainer": trainer,
        "train": train_loader,
        "val": val_loader,
        "output": out,
        "epochs": cfg.get("epochs", 10),
    }


def run(path, verbose: int = 1) -> dict:
    parts = build(load(path))
    out = parts["output"]
    out.mkdir(parents=True, exist_ok=True)
    history = parts["trainer"].fit(parts["train"], epochs=parts["epochs"], validation=parts["val"])
    (out / "history.json").write_text(
        json.dumps({k: list(map(float, v)) for k, v in history.items()}, indent=2)
    )
    if verbose:
        print(f"trained {len(history['loss'])} epochs; history and checkpoints in {out}")
    return history
