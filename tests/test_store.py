"""nitrain._store: one protocol for local folders and fsspec URLs, exercised on a folder, memory:// and
S3 (moto): whole writes, exclusive creation, exclusive folders, listing, size-checked fetches."""

import os
import uuid

import pytest

from nitrain import _store


@pytest.fixture(params=["local", "memory", "s3"])
def store(request, tmp_path):
    if request.param == "local":
        yield _store.LocalStore(tmp_path / "root")
        return
    fsspec = pytest.importorskip("fsspec")
    if request.param == "memory":
        root = f"memory://store-test-{uuid.uuid4().hex}"
        yield _store.FsspecStore(root)
        fsspec.filesystem("memory").rm(root.removeprefix("memory://"), recursive=True)
        return
    s3 = request.getfixturevalue("moto_s3")
    s3.bucket("store-test")
    yield _store.FsspecStore("s3://store-test/root", s3.options)
    s3.empty("store-test")


def test_write_read_overwrite(store):
    store.write_bytes("a/b/f.bin", b"one")
    assert store.exists("a/b/f.bin") and store.read_bytes("a/b/f.bin") == b"one"
    store.write_bytes("a/b/f.bin", b"two")
    assert store.read_bytes("a/b/f.bin") == b"two"
    store.remove("a/b/f.bin")
    store.remove("a/b/f.bin")  # nothing to remove: no error
    assert not store.exists("a/b/f.bin")


def test_exclusive_write_refuses_an_existing_file(store):
    store.write_bytes("v/1/w.bin", b"mine", exclusive=True)
    with pytest.raises(FileExistsError, match=r"v/1/w\.bin"):
        store.write_bytes("v/1/w.bin", b"theirs", exclusive=True)
    assert store.read_bytes("v/1/w.bin") == b"mine"


def test_listing(store):
    for rel in ("x/1/card.json", "x/2/w.bin", "x/top.txt", "y/3/card.json"):
        store.write_bytes(rel, rel.encode())
    assert store.dirs() == ["x", "y"]
    assert store.dirs("x") == ["1", "2"]
    assert store.dirs("nope") == []
    assert store.glob("*/*/card.json") == ["x/1/card.json", "y/3/card.json"]
    assert store.is_dir("x") and not store.is_dir("nope")
    f, size = store.open("x/top.txt")
    with f:
        assert f.read() == b"x/top.txt" and size == len(b"x/top.txt")


def test_fetch_checks_the_size(store, tmp_path):
    store.write_bytes("d/img.nii", b"0123456789")
    dest = tmp_path / "dl" / "k" / "img.nii"
    assert store.fetch("d/img.nii", dest) == dest and dest.read_bytes() == b"0123456789"
    bad = tmp_path / "dl" / "j" / "img.nii"
    with pytest.raises(OSError, match=r"the download of .*d/img\.nii has 10 bytes, the store reports 11"):
        store.fetch("d/img.nii", bad, size=11)
    assert not bad.exists() and os.listdir(bad.parent) == []  # no partial file, no .part left


def test_exclusive_folder(store):
    store.make_dir("m/n/1", exclusive=True)
    store.write_bytes("m/n/1/w.bin", b"w")
    with pytest.raises(FileExistsError):
        store.make_dir("m/n/1", exclusive=True)
    store.make_dir("m/n/1")  # not exclusive: fine


def test_local_write_is_atomic(tmp_path, monkeypatch):
    """A write that fails before its rename leaves the old file whole and no temporary file behind."""
    store = _store.LocalStore(tmp_path)
    store.write_bytes("card.json", b"old")

    def fail(fd):
        raise OSError("disk full")

    monkeypatch.setattr(_store.os, "fsync", fail)
    with pytest.raises(OSError, match="disk full"):
        store.write_bytes("card.json", b"new")
    with pytest.raises(OSError, match="disk full"):
        store.write_bytes("other.json", b"new", exclusive=True)
    assert store.read_bytes("card.json") == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["card.json"]


def test_local_exclusive_write_without_hard_links(tmp_path, monkeypatch):
    store = _store.LocalStore(tmp_path)

    def no_links(src, dst):
        raise PermissionError("no hard links here")

    monkeypatch.setattr(_store.os, "link", no_links)
    store.write_bytes("w.bin", b"mine", exclusive=True)
    with pytest.raises(FileExistsError):
        store.write_bytes("w.bin", b"theirs", exclusive=True)
    assert store.read_bytes("w.bin") == b"mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.bin"]


def test_s3_exclusive_create_is_the_stores_own(moto_s3, monkeypatch):
    """The check for an existing object is only a shortcut: with it skipped (a rival created the object
    between check and write), S3's conditional PUT still refuses to replace it."""
    moto_s3.bucket("store-race")
    try:
        mine = _store.FsspecStore("s3://store-race/reg", {**moto_s3.options, "skip_instance_cache": True})
        rival = _store.FsspecStore("s3://store-race/reg", {**moto_s3.options, "skip_instance_cache": True})
        rival.write_bytes("o/n/1/weights.safetensors", b"rival", exclusive=True)
        monkeypatch.setattr(mine.fs, "exists", lambda path: False)
        with pytest.raises(FileExistsError):
            mine.write_bytes("o/n/1/weights.safetensors", b"mine", exclusive=True)
        assert rival.read_bytes("o/n/1/weights.safetensors") == b"rival"
    finally:
        moto_s3.empty("store-race")


def test_urls_and_relative_paths(tmp_path):
    pytest.importorskip("fsspec")
    local = _store.LocalStore(tmp_path)
    assert local.url() == str(tmp_path) and local.url("a/b.nii") == str(tmp_path / "a" / "b.nii")
    mem = _store.FsspecStore("memory://rel-test/")
    assert mem.url() == "memory://rel-test" and mem.url("a/b.nii") == "memory://rel-test/a/b.nii"
    assert mem.relative("memory://rel-test/a/b.nii") == "a/b.nii"
    assert mem.relative("memory:///rel-test/a/b.nii") == "a/b.nii"
    with pytest.raises(ValueError, match="not in the store memory://rel-test"):
        mem.relative("memory://other/a.nii")


def test_s3_defaults_reach_the_store():
    pytest.importorskip("s3fs")
    s = _store.FsspecStore("s3://bucket/x", {"anon": True, "skip_instance_cache": True})
    assert s.fs.retries == 1 and s.fs.config_kwargs["read_timeout"] == 10
    assert "read_timeout 10 s" in s.waits()
