"""No silent corruption: short or damaged image files and cache entries, bad label values, and
on_error='skip' that leaves bad records out without misaligning images and labels."""

import gzip
import shutil
import warnings
import zlib

import ants
import numpy as np
import pytest

from nitrain import datasets
from nitrain import transforms as tx
from nitrain.datasets import _verify
from nitrain.datasets._verify import DamagedFileError
from nitrain.datasets.base import read_image
from nitrain.datasets.cache import DiskCache

X = {"pattern": "sub-*/anat/*_T1w.nii.gz"}
Y = {"file": "participants.tsv", "column": "age"}
SHAPE = (20, 20, 20)


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    return datasets.make_phantom_cohort(
        tmp_path_factory.mktemp("c") / "ds", n_subjects=5, seed=4, shape=SHAPE
    )


@pytest.fixture
def copy(cohort, tmp_path):
    return shutil.copytree(cohort, tmp_path / "ds")


def _t1(root, i):
    return root / f"sub-{i:03d}/anat/sub-{i:03d}_T1w.nii.gz"


def _cut(path, fraction=None, drop=None):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)] if fraction else data[:-drop])


def _flip(path, n, at=None):
    data = bytearray(path.read_bytes())
    start = len(data) // 2 if at is None else at
    for k in range(start, start + n):
        data[k] ^= 0xFF
    path.write_bytes(bytes(data))


def _no_full_check(monkeypatch):
    """Make the whole-file gzip check fail loudly: the quick proof must have been enough."""

    def refuse(*a):
        raise AssertionError("fell back to the whole-file check")

    monkeypatch.setattr(_verify, "check_gzip_file", refuse)


# -- source files ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fraction", [0.9, 0.5])
def test_a_truncated_nii_gz_names_file_and_record(copy, fraction):
    _cut(_t1(copy, 3), fraction)
    ds = datasets.FolderDataset(copy, X, Y)
    ds[0]
    with pytest.raises(
        DamagedFileError,
        match=r"FolderDataset record 2 \(sub-003\): could not read image .*sub-003_T1w\.nii\.gz: "
        r"the gzip stream ends early.*truncated",
    ):
        ds[2]


def test_valid_files_read_bit_identical_to_ants(copy, tmp_path, monkeypatch):
    path = _t1(copy, 1)
    ref = ants.image_read(str(path))
    u8 = tmp_path / "u8.nii.gz"  # read by ANTs as float: proved through a conversion back to uint8
    ants.image_write((ref / ref.max() * 200).clone("unsigned char"), str(u8))
    _no_full_check(monkeypatch)
    for p in (path, u8):
        want, got = ants.image_read(str(p)), read_image(p, "record")
        assert got.pixeltype == want.pixeltype
        assert got.numpy().tobytes() == want.numpy().tobytes()
        assert (got.spacing, got.origin) == (want.spacing, want.origin)
        np.testing.assert_array_equal(got.direction, want.direction)


def test_a_multi_member_gzip_is_checked_whole(copy, tmp_path):
    raw = zlib.decompress(_t1(copy, 1).read_bytes(), 31)
    multi = tmp_path / "multi.nii.gz"
    multi.write_bytes(gzip.compress(raw[:10_000]) + gzip.compress(raw[10_000:]) + bytes(16))
    np.testing.assert_array_equal(read_image(multi, "r").numpy(), ants.image_read(str(_t1(copy, 1))).numpy())
    multi.write_bytes(gzip.compress(raw[:10_000]) + gzip.compress(raw[10_000:])[:-30])
    with pytest.raises(DamagedFileError, match="ends early"):
        read_image(multi, "r")


def test_a_gzip_crc_mismatch_raises(copy, tmp_path):
    raw = zlib.decompress(_t1(copy, 2).read_bytes(), 31)
    stored = (
        tmp_path / "stored.nii.gz"
    )  # level 0: a flipped data byte leaves the stream valid but the CRC off
    stored.write_bytes(gzip.compress(raw, compresslevel=0))
    read_image(stored, "r")
    _flip(stored, 1)
    with pytest.raises(
        DamagedFileError, match=r"record 7: could not read image .*stored.nii.gz: CRC32 mismatch"
    ):
        read_image(stored, "record 7")
    _flip(_t1(copy, 2), 400)  # compressed data: a CRC mismatch or undecodable data, an error either way
    with pytest.raises(OSError, match=r"record 1 \(sub-002\): could not read image .*sub-002_T1w.nii.gz"):
        datasets.FolderDataset(copy, X, Y)[1]


def test_a_short_raw_nii_and_npy_raise(copy, tmp_path):
    img = ants.image_read(str(_t1(copy, 1)))
    raw, arr = tmp_path / "a.nii", tmp_path / "b.npy"
    ants.image_write(img, str(raw))
    np.save(arr, img.numpy())
    (tmp_path / "t.csv").write_text("path,age\na.nii,30\nb.npy,40\n")
    ds = datasets.CSVDataset(tmp_path / "t.csv", {"column": "path"}, {"column": "age"})
    np.testing.assert_array_equal(ds[0][0].numpy(), img.numpy())
    _cut(raw, drop=100)
    _cut(arr, drop=100)
    with pytest.raises(
        DamagedFileError,
        match=r"CSVDataset record 0 \(0\): could not read image .*a\.nii: the file has \d+ bytes but its "
        r"NIfTI header needs \d+ .*truncated",
    ):
        ds[0]
    with pytest.raises(DamagedFileError, match=r"record 1 \(1\): could not read image .*b\.npy: .*truncated"):
        ds[1]


def test_an_uncompressed_file_named_nii_gz_is_checked_as_raw(copy, tmp_path):
    raw = zlib.decompress(_t1(copy, 1).read_bytes(), 31)
    plain = tmp_path / "plain.nii.gz"
    plain.write_bytes(raw)
    np.testing.assert_array_equal(read_image(plain, "r").numpy(), ants.image_read(str(_t1(copy, 1))).numpy())
    plain.write_bytes(raw[:-100])
    with pytest.raises(DamagedFileError, match="plain.nii.gz: the file has .* truncated"):
        read_image(plain, "r")


def test_the_nifti2_and_big_endian_headers_are_read():
    import struct

    head = bytearray(540)
    head[:4] = struct.pack(">i", 348)
    head[40:56] = struct.pack(">8h", 3, 4, 5, 6, 1, 1, 1, 1)
    head[70:74] = struct.pack(">hh", 4, 16)
    head[108:112] = struct.pack(">f", 352.0)
    layout = _verify.nifti_layout(bytes(head))
    assert (layout.vox_offset, layout.nbytes, layout.dtype) == (352, 240, np.dtype(">i2"))
    head2 = bytearray(544)
    head2[:4] = struct.pack("<i", 540)
    head2[12:16] = struct.pack("<hh", 16, 32)
    head2[16:80] = struct.pack("<8q", 2, 7, 9, 1, 1, 1, 1, 1)
    head2[168:176] = struct.pack("<q", 544)
    layout = _verify.nifti_layout(bytes(head2))
    assert (layout.vox_offset, layout.nbytes, layout.dtype, layout.aux_offset) == (
        544,
        252,
        np.dtype("<f4"),
        320,
    )
    with pytest.raises(DamagedFileError, match="not a NIfTI header"):
        _verify.nifti_layout(bytes(540))


# -- disk cache entries --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "damage",
    [
        lambda p: _cut(p, 0.5),
        lambda p: _cut(p, drop=100),
        lambda p: _flip(p, 400),
        lambda p: _flip(p, 4, at=80),  # the header's x spacing
        lambda p: p.write_bytes(b""),
    ],
    ids=["half", "tail-100", "flip-400", "header", "empty"],
)
def test_damaged_cache_entries_are_recomputed_and_counted(cohort, tmp_path, damage):
    ts = [tx.RangeNormalize(0, 1)]
    cache = DiskCache(tmp_path / "c")
    ds = datasets.FolderDataset(cohort, X, Y, x_transforms=ts, cache=cache)
    want = datasets.FolderDataset(cohort, X, Y, x_transforms=ts)[1][0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a sound entry warns of nothing
        ds[1]
        np.testing.assert_array_equal(ds[1][0].numpy(), want.numpy())
    assert (cache.hits, cache.misses, cache.damaged) == (1, 1, 0)
    (entry,) = (tmp_path / "c").rglob("*.nii")
    damage(entry)
    with pytest.warns(UserWarning, match=rf"DiskCache: damaged entry .*{entry.name} .*recomputed"):
        got = ds[1][0]
    np.testing.assert_array_equal(got.numpy(), want.numpy())
    assert got.spacing == want.spacing and got.origin == want.origin
    assert (cache.hits, cache.misses, cache.damaged) == (1, 2, 1)
    assert entry.exists()  # written again, and sound
    np.testing.assert_array_equal(ds[1][0].numpy(), want.numpy())
    assert (cache.hits, cache.damaged) == (2, 1)


def test_an_entry_without_a_checksum_is_not_trusted(cohort, tmp_path):
    cache = DiskCache(tmp_path / "c")
    ds = datasets.FolderDataset(cohort, X, Y, cache=cache)
    want = ds[0][0].numpy()
    (entry,) = (tmp_path / "c").rglob("*.nii")
    ants.image_write(ants.image_read(str(entry)) * 0, str(entry))  # a plausible image, no checksum
    with pytest.warns(UserWarning, match="no nitrain checksum"):
        np.testing.assert_array_equal(ds[0][0].numpy(), want)
    assert cache.damaged == 1


def test_a_multi_component_entry_is_verified_on_its_bytes(tmp_path):
    cache = DiskCache(tmp_path / "c")
    img = ants.from_numpy(
        np.random.default_rng(0).random((6, 7, 8, 3), dtype=np.float32), has_components=True
    )
    cache.put("ab-1", img)
    np.testing.assert_array_equal(cache.get("ab-1").numpy(), img.numpy())
    labels = ants.from_numpy(np.arange(6 * 7 * 8, dtype=np.uint8).reshape(6, 7, 8)).clone("unsigned char")
    cache.put("cd-1", labels)  # read back by ANTs as float: proved through a conversion back to uint8
    np.testing.assert_array_equal(cache.get("cd-1").numpy(), labels.numpy())
    assert (cache.hits, cache.damaged) == (2, 0)
    _flip(tmp_path / "c" / "ab" / "ab-1.nii", 8)
    with pytest.warns(UserWarning, match="CRC32 does not match"):
        assert cache.get("ab-1") is None
    assert cache.damaged == 1


# -- label values ----------------------------------------------------------------------------------------


def _set_age(root, sub, value):
    table = root / "participants.tsv"
    rows = [line.split("\t") for line in table.read_text().splitlines()]
    rows = [[r[0], value, *r[2:]] if r[0] == sub else r for r in rows]
    table.write_text("".join("\t".join(r) + "\n" for r in rows))


def test_a_stray_text_value_in_a_number_column_is_an_error(copy):
    _set_age(copy, "sub-002", "unknown")
    with pytest.raises(
        ValueError,
        match=r"FolderDataset: column 'age' of .*participants.tsv holds numbers and also text that is not a "
        r"number \(sub-002: 'unknown'\)",
    ):
        datasets.FolderDataset(copy, X, Y)
    sexes = datasets.FolderDataset(copy, X, {"file": "participants.tsv", "column": "sex"})
    assert set(sexes.decode([sexes[i][1] for i in range(len(sexes))])) <= {"F", "M"}  # all text: class names


@pytest.mark.parametrize("value", ["inf", "-inf", "Infinity"])
def test_infinite_values_are_rejected(copy, value):
    _set_age(copy, "sub-004", value)
    with pytest.raises(
        ValueError, match=r"participants.tsv has an infinite 'age' value for ids \['sub-004'\]"
    ):
        datasets.FolderDataset(copy, X, Y)
    _set_age(copy, "sub-004", "nan")  # missing values were already rejected the same way
    with pytest.raises(ValueError, match=r"participants.tsv has no 'age' value for ids \['sub-004'\]"):
        datasets.FolderDataset(copy, X, Y)


def test_csv_label_columns(copy):
    rows = [f"sub-{i:03d}/anat/sub-{i:03d}_T1w.nii.gz" for i in range(1, 4)]

    def table(values):
        text = "path,label\n" + "".join(f"{r},{v}\n" for r, v in zip(rows, values, strict=True))
        (copy / "t.csv").write_text(text)
        return copy / "t.csv"

    with pytest.raises(
        ValueError,
        match=r"CSVDataset: column 'label' of .*t.csv holds numbers and also text .*\(row 1: 'n/d'\)",
    ):
        datasets.CSVDataset(table(["58.2", "n/d", "31"]), {"column": "path"}, {"column": "label"})
    with pytest.raises(ValueError, match=r"CSVDataset: infinite 'label' in rows \[2\]"):
        datasets.CSVDataset(table(["58.2", "40", "-inf"]), {"column": "path"}, {"column": "label"})
    ds = datasets.CSVDataset(table(["58.2", "40", "31"]), {"column": "path"}, {"column": "label"})
    assert [ds[i][1] for i in range(3)] == [58.2, 40.0, 31.0]
    ds = datasets.CSVDataset(table(["cat", "dog", "cat"]), {"column": "path"}, {"column": "label"})
    assert [ds[i][1] for i in range(3)] == [0, 1, 0] and ds.classes == ("cat", "dog")  # class indices


# -- on_error ------------------------------------------------------------------------------------------------


@pytest.fixture
def encoded(tmp_path):
    """A cohort whose every image is filled with its subject's age: the image says which label it has."""
    root = datasets.make_phantom_cohort(tmp_path / "enc", n_subjects=7, seed=5, shape=(16, 16, 16))
    for line in (root / "participants.tsv").read_text().splitlines()[1:]:
        sub, age, _ = line.split("\t")
        path = root / sub / "anat" / f"{sub}_T1w.nii.gz"
        img = ants.image_read(str(path))
        ants.image_write(img.new_image_like(np.full(img.shape, float(age), np.float32)), str(path))
    return root


def _assert_aligned(ds):
    for i in range(len(ds)):
        x, y = ds[i]
        assert float(x.numpy().mean()) == pytest.approx(y, abs=1e-4), f"record {i} ({ds.ids[i]})"


def test_skip_leaves_bad_records_out_and_keeps_images_and_labels_aligned(encoded):
    from nitrain.loaders import DatasetLoader

    _cut(_t1(encoded, 2), 0.9)
    _cut(_t1(encoded, 5), 0.5)
    _t1(encoded, 6).write_bytes(b"")
    with pytest.warns(UserWarning) as record:
        ds = datasets.FolderDataset(encoded, X, Y, on_error="skip")
    (w,) = [str(r.message) for r in record]
    assert "on_error='skip': left out 3 of 7 records" in w and "4 records remain" in w
    for sub in ("sub-002", "sub-005", "sub-006"):
        assert f"{sub}: {_t1(encoded, int(sub[-3:]))}" in w
    assert len(ds) == 4 and ds.ids == ["sub-001", "sub-003", "sub-004", "sub-007"]
    assert [s[0] for s in ds.skipped] == ["sub-002", "sub-005", "sub-006"]
    assert all(s[1] == str(_t1(encoded, int(s[0][-3:]))) for s in ds.skipped)
    _assert_aligned(ds)
    for part in ds.split(0.5, random=True, seed=1):
        _assert_aligned(part)
    loader = DatasetLoader(ds, batch_size=3, shuffle=True, seed=0)
    batches = list(loader)
    assert len(batches) == len(loader) == 2 and sum(len(y) for _, y in batches) == 4
    for x, y in batches:
        np.testing.assert_allclose(x.reshape(len(x), -1).mean(axis=1), y, atol=1e-4)
    # The default raises, and only for the bad record, when it is read.
    ds = datasets.FolderDataset(encoded, X, Y)
    assert len(ds) == 7
    ds[0]
    with pytest.raises(DamagedFileError, match=r"record 1 \(sub-002\): could not read image .*truncated"):
        ds[1]


def test_skip_in_csv_and_bids_datasets(encoded):
    rows = "".join(
        f"sub-{i:03d}/anat/sub-{i:03d}_T1w.nii.gz,{age}\n" for i, age in [(1, 30), (2, 40), (3, 50)]
    )
    (encoded / "t.csv").write_text("path,age\n" + rows + "missing.nii.gz,60\n")
    with pytest.warns(UserWarning, match=r"left out 1 of 4 records .*3: .*missing.nii.gz: file not found"):
        ds = datasets.CSVDataset(encoded / "t.csv", {"column": "path"}, {"column": "age"}, on_error="skip")
    assert len(ds) == 3 and ds.ids == ["0", "1", "2"]
    pytest.importorskip("bids")
    _cut(_t1(encoded, 3), 0.5)
    with pytest.warns(UserWarning, match=r"BIDSDataset: on_error='skip': left out 1 of 7 .*sub-003"):
        bids = datasets.BIDSDataset(encoded, {"suffix": "T1w"}, {"column": "age"}, on_error="skip")
    assert "sub-003" not in bids.ids and len(bids) == 6
    _assert_aligned(bids)


def test_a_file_found_bad_only_when_read_is_an_error_that_says_so(encoded):
    path = _t1(encoded, 4)
    raw = zlib.decompress(path.read_bytes(), 31)
    path.write_bytes(gzip.compress(raw, compresslevel=0))
    _flip(path, 1)  # length and header intact: passes the check at construction, fails its CRC32 when read
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = datasets.FolderDataset(encoded, X, Y, on_error="skip")
    assert len(ds) == 7
    with pytest.raises(
        DamagedFileError,
        match=r"record 3 \(sub-004\): .*CRC32 mismatch.* found bad only now; it is not skipped",
    ):
        ds[3]


def test_bad_on_error_values_name_the_parameter(encoded):
    for bad in ("ignore", None, True):
        with pytest.raises(ValueError, match=r"FolderDataset: on_error must be 'raise' or 'skip', got"):
            datasets.FolderDataset(encoded, X, Y, on_error=bad)
    with pytest.raises(ValueError, match=r"CSVDataset: on_error must be 'raise' or 'skip'"):
        datasets.CSVDataset(encoded / "participants.tsv", {"column": "x"}, {"column": "age"}, on_error="drop")


def test_skip_leaving_nothing_is_an_error(encoded):
    for i in range(1, 8):
        _cut(_t1(encoded, i), 0.5)
    with pytest.raises(ValueError, match="on_error='skip' left no records: all 7 have unreadable images"):
        datasets.FolderDataset(encoded, X, Y, on_error="skip")


def test_remote_files_are_checked_and_named(encoded, tmp_path):
    fsspec = pytest.importorskip("fsspec")
    fs = fsspec.filesystem("memory")
    for p in encoded.rglob("*"):
        if p.is_file():
            fs.pipe(f"/integrity/{p.relative_to(encoded).as_posix()}", p.read_bytes())
    try:
        data = fs.cat("/integrity/sub-002/anat/sub-002_T1w.nii.gz")
        fs.pipe("/integrity/sub-002/anat/sub-002_T1w.nii.gz", data[: len(data) // 2])
        with pytest.warns(UserWarning, match=r"left out 1 of 7 records .*sub-002: memory://.*sub-002_T1w"):
            ds = datasets.FolderDataset(
                "memory://integrity", X, Y, download_dir=tmp_path / "dl", on_error="skip"
            )
        _assert_aligned(ds)
        ds = datasets.FolderDataset("memory://integrity", X, Y, download_dir=tmp_path / "dl")
        with pytest.raises(
            DamagedFileError, match=r"record 1 \(sub-002\) \(local copy of memory://.*sub-002_T1w.nii.gz\)"
        ):
            ds[1]
    finally:
        fs.rm("/integrity", recursive=True)
