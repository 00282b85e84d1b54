"""Faults in the pretrained registry: concurrent registrations, corrupt cards, interrupted registrations."""

import json
import os
import subprocess
import sys

import pytest

from nitrain import models
from nitrain.models import pretrained

torch = pytest.importorskip("torch")

TRIALS = 6
FILTERS = (8, 16)

# Registers one model (built from ``seed``) as race/net<trial> for each trial, starting together with its
# sibling processes: each announces itself with a file and spins until every process has done so. Turning
# the model into bytes is slowed down by 50 ms, as for a large model, so the registrations overlap.
RACER = r"""
import json, os, sys, time
import torch
from nitrain import models
from nitrain.models import pretrained
seed, sync, trials, racers, filters, s3_conf = (
    int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), json.loads(sys.argv[5]),
    json.loads(sys.argv[6]),
)
if s3_conf:
    import fsspec
    fsspec.config.conf["s3"] = s3_conf
serialize = pretrained._torch_weights
def slow_serialize(model):
    time.sleep(0.05)
    return serialize(model)
pretrained._torch_weights = slow_serialize
torch.manual_seed(seed)
model = models.fetch_architecture("basic", dim=2)((16, 16, 1), 2, filters=filters).eval()
for trial in range(trials):
    open(os.path.join(sync, f"{trial}-{seed}"), "w").close()
    deadline = time.monotonic() + 60
    while sum(name.startswith(f"{trial}-") for name in os.listdir(sync)) < racers:
        if time.monotonic() > deadline:
            sys.exit(f"trial {trial}: the other processes never arrived")
    card = models.register_pretrained(model, f"race/net{trial}", description=f"seed {seed}")
    print(json.dumps({"trial": trial, "seed": seed, "version": card["version"],
                      "sha256": card["weights"]["sha256"]}), flush=True)
"""


def _model(seed):
    torch.manual_seed(seed)
    return models.fetch_architecture("basic", dim=2)((16, 16, 1), 2, filters=FILTERS).eval()


X = torch.randn(3, 1, 16, 16, generator=torch.Generator().manual_seed(1))


def _race(tmp_path, env, s3_conf=None, racers=2):
    """Run ``racers`` processes registering the same names at once; check every model survived."""
    sync = tmp_path / "sync"
    sync.mkdir()
    env = {**os.environ, **env, "OMP_NUM_THREADS": "1"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, str(seed), str(sync), str(TRIALS), str(racers)]
            + [json.dumps(FILTERS), json.dumps(s3_conf or {})],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for seed in range(racers)
    ]
    results, errors = [], []
    try:
        for p in procs:
            out, err = p.communicate(timeout=300)
            if p.returncode:
                errors.append(err)
            results += [json.loads(line) for line in out.splitlines()]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert not errors, "\n".join(errors)
    assert len(results) == TRIALS * racers
    versions = {t: sorted(r["version"] for r in results if r["trial"] == t) for t in range(TRIALS)}
    clashes = {t: v for t, v in versions.items() if v != list(range(1, racers + 1))}
    assert not clashes, f"{len(clashes)} of {TRIALS} trials gave clashing versions: {clashes}"
    for r in results:
        fetched = models.fetch_pretrained(f"race/net{r['trial']}@{r['version']}")
        assert fetched.nitrain_card["weights"]["sha256"] == r["sha256"]
        assert fetched.nitrain_card["description"] == f"seed {r['seed']}"
        with torch.no_grad():
            assert torch.equal(fetched(X), _model(r["seed"])(X))
    ids = [r["id"] for r in models.list_pretrained() if r["owner"] == "race"]
    assert ids == [f"race/net{t}@{v}" for t in range(TRIALS) for v in range(1, racers + 1)]


def test_concurrent_registrations_get_distinct_versions(home, tmp_path):
    _race(tmp_path, {"NITRAIN_HOME": str(home)})


def _registered(home, seed=0, name="net"):
    models.register_pretrained(_model(seed), name)
    owner, _, short = name.rpartition("/")
    return home / "models" / (owner or "local") / short


# ---------------------------------------------------------------- corrupt cards


def test_truncated_card_names_model_version_and_file(home):
    folder = _registered(home)
    card = folder / "1" / "card.json"
    card.write_bytes(card.read_bytes()[:40])
    for call in (models.model_card, models.fetch_pretrained):
        with pytest.raises(pretrained.ModelCardError, match="not valid JSON") as e:
            call("net")
        assert "local/net@1" in str(e.value) and str(card) in str(e.value)
        assert isinstance(e.value, ValueError)
    card.write_bytes(b"\xff\xfe not utf-8")
    with pytest.raises(pretrained.ModelCardError, match="local/net@1"):
        models.model_card("net@1")


def test_list_skips_a_corrupt_card_and_reports_it(home):
    bad = _registered(home, name="alice/bad") / "1" / "card.json"
    _registered(home, name="bob/good")
    bad.write_text('{"id": "alice/bad@1", "weights": {')
    with pytest.warns(pretrained.RegistryWarning, match="skipped 1 model version") as caught:
        table = models.list_pretrained()
    assert str(bad) in str(caught[0].message)
    assert [r["id"] for r in table if r["owner"] != "nitrain"] == ["bob/good@1"]
    assert any(r["id"] == "nitrain/phantom-brain-age@1" for r in table)  # the built-in model too
    assert [(s["id"], s["path"]) for s in table.skipped] == [("alice/bad@1", str(bad))]
    assert "not valid JSON" in table.skipped[0]["reason"]
    assert "1 skipped: alice/bad@1" in repr(table)
    assert models.model_card("bob/good")["version"] == 1  # other models still read


@pytest.mark.parametrize(
    "edit,key",
    [
        (lambda c: c.pop("weights"), "'weights'"),
        (lambda c: c.pop("architecture"), "'architecture'"),
        (lambda c: c["weights"].pop("sha256"), "'weights.sha256'"),
        (lambda c: c["weights"].pop("file"), "'weights.file'"),
        (lambda c: c["architecture"].pop("mode"), "'architecture.mode'"),
        (lambda c: c["weights"].update(file="../../other/weights.safetensors"), "not a file name"),
        (lambda c: c.update(architecture=None), "'architecture' is null"),
    ],
    ids=["weights", "architecture", "sha256", "file", "mode", "file-path", "null-architecture"],
)
def test_card_missing_a_required_key(home, edit, key):
    card_path = _registered(home) / "1" / "card.json"
    card = json.loads(card_path.read_text())
    edit(card)
    card_path.write_text(json.dumps(card))
    for call in (models.model_card, models.fetch_pretrained):
        with pytest.raises(pretrained.ModelCardError, match="local/net@1") as e:
            call("net")
        assert key in str(e.value) and str(card_path) in str(e.value)
    with pytest.warns(pretrained.RegistryWarning, match=key.replace("'", ".")):
        assert models.list_pretrained().skipped[0]["id"] == "local/net@1"


def test_card_that_is_not_an_object(home):
    card = _registered(home) / "1" / "card.json"
    card.write_text("[1, 2]")
    with pytest.raises(pretrained.ModelCardError, match=r"local/net@1.*JSON list, not an object"):
        models.model_card("net")


# ---------------------------------------------------------------- interrupted registrations

# Registers a second version of local/net and is killed (SIGKILL) just before ``when``: "card" (after the
# weights are written), or "rename" (the card is written to its temporary file, not yet renamed).
KILLED = r"""
import os, signal, sys
import torch
from nitrain import models
from nitrain.models import pretrained
when = sys.argv[1]
def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)
if when == "card":
    pretrained._LocalStore.publish = die
else:
    replace = os.replace
    def replace_or_die(src, dst):
        if str(dst).endswith("card.json"):
            die()
        replace(src, dst)
    pretrained.os.replace = replace_or_die
torch.manual_seed(1)
model = models.fetch_architecture("basic", dim=2)((16, 16, 1), 2, filters=(8, 16)).eval()
models.register_pretrained(model, "net")
"""


@pytest.mark.parametrize("when", ["card", "rename"])
def test_killed_registration_is_incomplete_not_a_model(home, when):
    folder = _registered(home, seed=0)
    run = subprocess.run(
        [sys.executable, "-c", KILLED, when], env={**os.environ, "NITRAIN_HOME": str(home)}, check=False
    )
    assert run.returncode == -9
    half = folder / "2"
    assert (half / "weights.safetensors").is_file() and not (half / "card.json").exists()

    with pytest.warns(pretrained.RegistryWarning, match="skipped 1 model version") as caught:
        table = models.list_pretrained()
    assert str(half) in str(caught[0].message)
    assert [r["id"] for r in table if r["owner"] != "nitrain"] == ["local/net@1"]
    assert table.skipped == [
        {
            "id": "local/net@2",
            "path": str(half),
            "reason": "no card.json: an interrupted registration, or one still being written",
        }
    ]
    # the latest version is the latest complete one; the newer folder is reported
    with pytest.warns(pretrained.RegistryWarning, match=r"using version 1.*version 2 of local/net"):
        assert models.model_card("net")["version"] == 1
    with pytest.warns(pretrained.RegistryWarning):
        fetched = models.fetch_pretrained("net")
    with torch.no_grad():
        assert torch.equal(fetched(X), _model(0)(X))
    with pytest.raises(models.PretrainedNotFoundError, match=r"local/net@2 is not a complete registration"):
        models.fetch_pretrained("net@2")
    # new registrations go after it, and do not take it over unless told to
    assert models.register_pretrained(_model(2), "net")["version"] == 3
    with pytest.raises(FileExistsError, match=r"net@2 cannot be registered.*no card.json"):
        models.register_pretrained(_model(2), "net@2")
    assert models.register_pretrained(_model(2), "net@2", overwrite=True)["version"] == 2
    assert [r["id"] for r in models.list_pretrained() if r["owner"] != "nitrain"] == [
        "local/net@1",
        "local/net@2",
        "local/net@3",
    ]
    # only the killed process's temporary card is left behind (and it does not look like a card)
    leftovers = [str(p.relative_to(folder)) for p in folder.rglob("*.tmp")]
    assert leftovers == ([] if when == "card" else [leftovers[0]])
    assert when == "card" or leftovers[0].startswith("2/.card.json.")


def test_no_cards_at_all_says_so(home):
    (home / "models" / "local" / "net" / "1").mkdir(parents=True)
    with pytest.raises(models.PretrainedNotFoundError, match=r"available: none.*version 1 of local/net"):
        models.model_card("net")


def test_registry_folder_is_claimed_like_home(home, tmp_path, monkeypatch):
    """A folder (or file:// URL) in NITRAIN_REGISTRY is a local store: versions claimed with os.mkdir."""
    for url in (str(tmp_path / "reg"), f"file://{tmp_path / 'reg2'}"):
        monkeypatch.setenv("NITRAIN_REGISTRY", url)
        root = tmp_path / url.removeprefix("file://").rsplit("/", 1)[-1]
        (root / "team" / "net" / "1").mkdir(parents=True)  # an interrupted registration
        assert models.register_pretrained(_model(0), "team/net")["version"] == 2
        assert (root / "team" / "net" / "2" / "card.json").is_file()
        with pytest.raises(FileExistsError, match=str(root)):
            models.register_pretrained(_model(0), "team/net@2")
    assert not (home / "models").exists()


def test_fsspec_version_taken_by_another_weights_file(home, monkeypatch):
    """On an fsspec store the weights object is the claim; if a registration whose weights file has
    another name (a keras model) publishes its card for the same version first, this one gives way."""
    fsspec = pytest.importorskip("fsspec")
    root = "memory://nitrain-faults"
    monkeypatch.setenv("NITRAIN_REGISTRY", root)
    fs = fsspec.filesystem("memory")
    claim = pretrained._FsspecStore.claim
    theirs = b'{"id": "cloud/net@1", "weights": {"file": "model.keras"}}'

    def claim_after_a_rival(self, data, *parts):
        if parts[2] == "1":
            self.write(b"keras bytes", *parts[:3], "model.keras")
            self.write(theirs, *parts[:3], "card.json")
        return claim(self, data, *parts)

    monkeypatch.setattr(pretrained._FsspecStore, "claim", claim_after_a_rival)
    try:
        card = models.register_pretrained(_model(0), "cloud/net")
        assert card["version"] == 2
        assert fs.cat("/nitrain-faults/cloud/net/1/card.json") == theirs  # never overwritten
        assert sorted(p.rsplit("/", 1)[-1] for p in fs.ls("/nitrain-faults/cloud/net/1", detail=False)) == [
            "card.json",
            "model.keras",
        ]  # this registration's weights were taken back out of version 1
        with torch.no_grad():
            assert torch.equal(models.fetch_pretrained("cloud/net@2")(X), _model(0)(X))
        with pytest.raises(FileExistsError, match="cloud/net@1 is already registered"):
            models.register_pretrained(_model(0), "cloud/net@1")
    finally:
        fs.rm("/nitrain-faults", recursive=True)


# ---------------------------------------------------------------- S3 (a moto server on 127.0.0.1)


@pytest.fixture(scope="module")
def s3(moto_s3):
    moto_s3.bucket("faults")
    return moto_s3.client, moto_s3.endpoint


@pytest.fixture
def s3_registry(s3, monkeypatch, tmp_path):
    fsspec = pytest.importorskip("fsspec")
    client, endpoint = s3
    conf = {
        "key": "test",
        "secret": "test",
        "client_kwargs": {"endpoint_url": endpoint, "region_name": "us-east-1"},
    }
    monkeypatch.setitem(fsspec.config.conf, "s3", conf)
    monkeypatch.setenv("NITRAIN_REGISTRY", "s3://faults/reg")
    monkeypatch.setenv("NITRAIN_HOME", str(tmp_path / "unused"))
    fsspec.filesystem("s3").invalidate_cache()
    yield client, conf
    for obj in client.list_objects_v2(Bucket="faults").get("Contents", []):
        client.delete_object(Bucket="faults", Key=obj["Key"])


def test_s3_store_supports_exclusive_create(s3_registry):
    """The primitive the S3 version claims rely on: a conditional put (``If-None-Match: *``)."""
    import fsspec

    client, _ = s3_registry
    fs = fsspec.filesystem("s3")
    with fs.open("faults/reg/x", "xb") as f:
        f.write(b"first")
    with pytest.raises(FileExistsError):
        with fs.open("faults/reg/x", "xb") as f:
            f.write(b"second")
    assert client.get_object(Bucket="faults", Key="reg/x")["Body"].read() == b"first"


def test_concurrent_registrations_on_s3(s3_registry, tmp_path):
    _, conf = s3_registry
    _race(tmp_path, {"NITRAIN_REGISTRY": "s3://faults/reg"}, s3_conf=conf)


def test_corrupt_card_on_s3(s3_registry):
    client, _ = s3_registry
    models.register_pretrained(_model(0), "lab/net")
    models.register_pretrained(_model(1), "lab/other")
    client.put_object(Bucket="faults", Key="reg/lab/net/1/card.json", Body=b'{"id": "lab/n')
    url = "s3://faults/reg/lab/net/1/card.json"
    with pytest.raises(pretrained.ModelCardError, match=f"lab/net@1.*{url}"):
        models.model_card("lab/net")
    with pytest.warns(pretrained.RegistryWarning, match=url):
        table = models.list_pretrained()
    assert [r["id"] for r in table if r["owner"] == "lab"] == ["lab/other@1"]
    assert [s["path"] for s in table.skipped] == [url]
