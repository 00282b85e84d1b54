"""The Rust NIfTI reader gives what ants.image_read gives (pixel type, voxels bit for bit, geometry to 1e-6)
for each header variant, verifies what it reads, and leaves what it does not handle to ANTs."""

import gzip
import shutil
import struct
import threading

import ants
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nitrain import _core
from nitrain._nifti import image_read, read_nifti
from nitrain.datasets._verify import DamagedFileError

nib = pytest.importorskip("nibabel")

SHAPE = (7, 6, 5)


def _oblique(spacing=(2.0, 3.0, 4.0), angles=(10.0, -20.0, 30.0), offset=(10.0, -20.0, 30.0)):
    a, b, c = np.radians(angles)
    rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    rz = np.array([[np.cos(c), -np.sin(c), 0], [np.sin(c), np.cos(c), 0], [0, 0, 1]])
    aff = np.eye(4)
    aff[:3, :3] = rz @ ry @ rx @ np.diag(spacing)
    aff[:3, 3] = offset
    return aff


def _data(dtype, shape=SHAPE, seed=0):
    rng = np.random.default_rng(seed)
    dtype = np.dtype(dtype)
    if dtype.kind == "c":
        return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(dtype)
    if dtype.kind == "f":
        data = (rng.standard_normal(shape) * 100).astype(dtype)
        data.flat[:3] = [np.nan, np.inf, -np.inf]  # ITK reads these as 0
        return data
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dtype)


def _write(
    path,
    dtype=np.float32,
    shape=SHAPE,
    qform=None,
    sform=None,
    slope=None,
    inter=None,
    endian="<",
    pixdim=None,
    units="mm",
    data=None,
):
    """Write a NIfTI-1 file with exactly these header fields (nibabel, then patched where it would
    rewrite them), compressed when ``path`` ends in .gz."""
    hdr = nib.Nifti1Header(endianness=endian)
    hdr.set_data_dtype(np.dtype(dtype))
    hdr.set_qform(*(qform or (None, 0)))
    hdr.set_sform(*(sform or (None, 0)))
    hdr.set_xyzt_units(units, "sec")
    data = _data(dtype, shape) if data is None else data
    img = nib.Nifti1Image(data, None, header=hdr)
    if pixdim is not None:
        img.header["pixdim"][: len(pixdim)] = pixdim
    raw = path.with_name(path.name.removesuffix(".gz"))
    nib.save(img, raw)
    if slope is not None or inter is not None:
        b = bytearray(raw.read_bytes())
        struct.pack_into(endian + "ff", b, 112, 1.0 if slope is None else slope, inter or 0.0)
        raw.write_bytes(bytes(b))
    if path.name.endswith(".gz"):
        path.write_bytes(gzip.compress(raw.read_bytes()))
        raw.unlink()
    return path


def _assert_same(path):
    want = ants.image_read(str(path))
    got = read_nifti(path)
    assert got is not None, _core.read_nifti(str(path)).get("unsupported")
    assert (got.pixeltype, got.components, got.dimension) == (want.pixeltype, 1, want.dimension)
    assert got.pixeltype == "float"
    assert got.shape == want.shape
    assert got.numpy().tobytes() == want.numpy().tobytes()
    np.testing.assert_allclose(got.spacing, want.spacing, rtol=0, atol=1e-6)
    np.testing.assert_allclose(got.origin, want.origin, rtol=0, atol=1e-6)
    np.testing.assert_allclose(got.direction, want.direction, rtol=0, atol=1e-6)
    return got


OBL = _oblique()
OTHER = _oblique(spacing=(2.0, 3.0, 4.0), angles=(-5.0, 15.0, 80.0), offset=(-3.0, 4.0, 50.0))

VARIANTS = {
    "qform-1": dict(qform=(OBL, 1)),
    "qform-2": dict(qform=(OBL, 2)),
    "qform-left-handed": dict(qform=(OBL @ np.diag([1, 1, -1, 1]), 1)),
    "sform-2": dict(sform=(OBL, 2)),
    "sform-4": dict(sform=(OBL, 4)),
    "both-same-1": dict(qform=(OBL, 1), sform=(OBL, 1)),
    "both-same-2": dict(qform=(OBL, 2), sform=(OBL, 2)),
    "both-differ-sform-scanner": dict(qform=(OBL, 2), sform=(OTHER, 1)),
    "both-differ-sform-aligned": dict(qform=(OBL, 1), sform=(OTHER, 2)),
    "neither": dict(pixdim=[1.0, 2.0, 0.0, 3.0]),
    "negative-pixdim": dict(qform=(OBL, 1), pixdim=[1.0, -2.0, 3.0, 4.0]),
    "metres": dict(qform=(_oblique(spacing=(0.002, 0.003, 0.004), offset=(0.1, 0, 0)), 1), units="meter"),
    "int16-scaled": dict(dtype=np.int16, qform=(OBL, 1), slope=0.37, inter=-12.5),
    "uint8-scaled": dict(dtype=np.uint8, sform=(OBL, 4), slope=1 / 255),
    "float32-scaled": dict(dtype=np.float32, qform=(OBL, 1), slope=2.5, inter=1.0),
    "float64-scaled": dict(dtype=np.float64, qform=(OBL, 1), slope=-0.5, inter=3.0),
    "slope-0": dict(dtype=np.int16, qform=(OBL, 1), slope=0.0, inter=0.0),
    "int8": dict(dtype=np.int8, qform=(OBL, 1)),
    "uint8": dict(dtype=np.uint8, qform=(OBL, 1)),
    "int16": dict(dtype=np.int16, qform=(OBL, 1)),
    "uint16": dict(dtype=np.uint16, qform=(OBL, 1)),
    "int32": dict(dtype=np.int32, qform=(OBL, 1)),
    "uint32": dict(dtype=np.uint32, qform=(OBL, 1)),
    "float64": dict(dtype=np.float64, sform=(OBL, 2)),
    "big-endian-int16": dict(dtype=np.int16, endian=">", qform=(OBL, 1), slope=3.0),
    "big-endian-float32": dict(dtype=np.float32, endian=">", sform=(OBL, 1)),
    "2-D": dict(shape=(9, 8), qform=(np.diag([2.0, 3.0, 1.0, 1.0]) + np.eye(4, k=3), 1)),
    "2-D-oblique": dict(shape=(9, 8), sform=(_oblique(angles=(0, 0, 30)), 1)),
    "3-D-one-slice": dict(shape=(9, 8, 1), qform=(OBL, 1)),
    "4-D-one-volume": dict(shape=(7, 6, 5, 1), qform=(OBL, 1)),
}


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
@pytest.mark.parametrize("variant", VARIANTS)
def test_header_variants_read_as_ants_reads_them(tmp_path, variant, suffix):
    _assert_same(_write(tmp_path / f"v{suffix}", **VARIANTS[variant]))


DTYPES = [np.uint8, np.int8, np.int16, np.uint16, np.int32, np.uint32, np.float32, np.float64]
_floats = st.floats(-180, 180, allow_nan=False)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    dtype=st.sampled_from(DTYPES),
    shape=st.lists(st.integers(1, 5), min_size=2, max_size=3).map(tuple),
    spacing=st.tuples(*[st.floats(0.3, 3.0)] * 3),
    angles=st.tuples(_floats, _floats, _floats),
    offset=st.tuples(_floats, _floats, _floats),
    codes=st.tuples(st.integers(0, 4), st.integers(0, 4)),
    other=st.booleans(),
    scaled=st.booleans(),
    endian=st.sampled_from("<>"),
    suffix=st.sampled_from([".nii", ".nii.gz"]),
)
def test_random_headers_read_as_ants_reads_them_or_are_left_to_it(
    tmp_path, dtype, shape, spacing, angles, offset, codes, other, scaled, endian, suffix
):
    aff = _oblique(spacing, angles, offset)
    kw = dict(dtype=dtype, shape=shape, endian=endian)
    if codes[0]:
        kw["qform"] = (aff, codes[0])
    if codes[1]:
        kw["sform"] = (OTHER if other else aff, codes[1])
    if scaled:
        kw.update(slope=0.7, inter=-20.0)
    path = _write(tmp_path / f"r{suffix}", **kw)
    try:
        ants.image_read(str(path))
    except RuntimeError:
        assert read_nifti(path) is None  # ANTs refuses it: so does the reader, and ANTs says why
        return
    if read_nifti(path) is not None:
        _assert_same(path)


def test_the_transforms_chosen_are_itks(tmp_path):
    def transform(**kw):
        return _core.read_nifti(str(_write(tmp_path / "t.nii", **kw)))["transform"]

    assert transform(**VARIANTS["neither"]) == "none"
    assert transform(**VARIANTS["qform-1"]) == "qform"
    assert transform(**VARIANTS["sform-2"]) == "sform"
    assert transform(**VARIANTS["both-differ-sform-scanner"]) == "sform"
    assert transform(**VARIANTS["both-differ-sform-aligned"]) == "qform"


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
def test_the_mni_template_written_by_ants(mni_t1, tmp_path, suffix):
    path = tmp_path / f"mni{suffix}"
    ants.image_write(mni_t1, str(path))
    got = _assert_same(path)
    assert np.shares_memory(got.view(), got._ndarr)  # wrapped without a copy (antspyx internals)
    assert got.numpy().tobytes() == mni_t1.numpy().tobytes()


def test_the_mni_template_written_by_nilearn(tmp_path):
    nilearn_datasets = pytest.importorskip("nilearn.datasets")
    nii = nilearn_datasets.load_mni152_template(resolution=2)
    path = tmp_path / "mni_nilearn.nii.gz"
    nii.to_filename(path)  # uint8 with scl_slope 1/255, sform only
    _assert_same(path)
    assert _core.read_nifti(str(path))["datatype"] == 2


def test_threads_read_in_parallel_with_the_same_result(mni_t1, tmp_path):
    paths = []
    for i in range(4):
        paths.append(tmp_path / f"m{i}.nii.gz")
        ants.image_write(mni_t1 * (i + 1), str(paths[-1]))
    got = [None] * 4

    def work(i):
        got[i] = read_nifti(paths[i]).numpy()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(4):
        assert got[i].tobytes() == ants.image_read(str(paths[i])).numpy().tobytes()


# -- damaged files -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
@pytest.mark.parametrize("fraction", [0.9, 0.5])
def test_truncated_files_raise_naming_the_file(tmp_path, suffix, fraction):
    path = _write(tmp_path / f"cut{suffix}", shape=(40, 40, 40), qform=(OBL, 1))
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(DamagedFileError, match=rf"{path.name}: .*truncated") as e:
        read_nifti(path)
    assert str(path) in str(e.value) and "truncated" in e.value.reason


def test_corrupt_gzip_data_and_checksums_raise_naming_the_file(tmp_path):
    path = _write(tmp_path / "bad.nii.gz", shape=(40, 40, 40), qform=(OBL, 1))
    good = path.read_bytes()
    bad = bytearray(good)
    for k in range(len(bad) // 2, len(bad) // 2 + 200):
        bad[k] ^= 0xFF
    path.write_bytes(bytes(bad))
    with pytest.raises(DamagedFileError, match=rf"{path}: .*gzip member 1"):
        read_nifti(path)
    stored = bytearray(gzip.compress(gzip.decompress(good), compresslevel=0))
    stored[len(stored) // 2] ^= 0xFF  # valid DEFLATE, wrong CRC32
    path.write_bytes(bytes(stored))
    with pytest.raises(DamagedFileError, match=rf"{path}: CRC32 mismatch in gzip member 1"):
        read_nifti(path)
    path.write_bytes(good + b"trailing junk")
    with pytest.raises(DamagedFileError, match="unexpected data after gzip member 1"):
        read_nifti(path)
    raw = gzip.decompress(good)
    path.write_bytes(gzip.compress(raw[:1000]) + gzip.compress(raw[1000:]) + bytes(8))
    _assert_same(path)  # several members and zero padding are fine


def test_a_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.nii.gz"):
        read_nifti(tmp_path / "nope.nii.gz")


# -- left to ANTs --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kw, why",
    [
        (dict(shape=(5, 4, 3, 2), qform=(OBL, 1)), "4-D"),
        (dict(dtype=np.int64, qform=(OBL, 1)), "datatype 1024"),
        (dict(dtype=np.complex64, qform=(OBL, 1)), "datatype 32"),
    ],
    ids=["4-D", "int64", "complex"],
)
def test_files_left_to_ants_fall_back(tmp_path, kw, why):
    path = _write(tmp_path / "f.nii.gz", **kw)
    assert why in _core.read_nifti(str(path))["unsupported"]
    assert read_nifti(path) is None
    try:
        want = ants.image_read(str(path))
    except Exception as e:  # ANTs cannot read it either: the same error through image_read
        with pytest.raises(type(e)):
            image_read(path)
        return
    got = image_read(path)
    assert got.shape == want.shape and got.numpy().tobytes() == want.numpy().tobytes()
    assert got.spacing == want.spacing and got.origin == want.origin


def test_a_skewed_sform_is_left_to_ants(tmp_path):
    skew = np.array([[2, 0.5, 0, 10], [0, 3, 0, 20], [0, 0, 4, 30], [0, 0, 0, 1.0]])
    path = _write(tmp_path / "skew.nii", sform=(skew, 2))
    assert "ITK refuses" in _core.read_nifti(str(path))["unsupported"]
    with pytest.raises(RuntimeError, match="orthonormal"):
        image_read(path)  # what ants.image_read says about it


def test_other_formats_are_left_to_ants(tmp_path, mni_t1):
    small = ants.resample_image(mni_t1, (8, 8, 8), use_voxels=True)
    for name in ("x.nrrd", "x.mha"):
        ants.image_write(small, str(tmp_path / name))
        assert read_nifti(tmp_path / name) is None
        want = ants.image_read(str(tmp_path / name))
        assert image_read(tmp_path / name).numpy().tobytes() == want.numpy().tobytes()
    ants.image_write(small, str(tmp_path / "x.nii"))
    shutil.copy(tmp_path / "x.nii", tmp_path / "x.NII")  # ANTs reads it as NIfTI; so does the reader
    _assert_same(tmp_path / "x.NII")


def test_nifti2_is_read_like_the_same_image_in_nifti1(tmp_path):
    data = _data(np.int16)
    one = nib.Nifti1Image(data, None, header=nib.Nifti1Header())
    one.header.set_qform(OBL, 1)
    one.header.set_sform(OTHER, 2)
    nib.save(one, tmp_path / "one.nii")
    two = nib.Nifti2Image(data, None, header=nib.Nifti2Header())
    two.header.set_qform(OBL, 1)
    two.header.set_sform(OTHER, 2)
    nib.save(two, tmp_path / "two.nii")
    with gzip.open(tmp_path / "two.nii.gz", "wb") as f, open(tmp_path / "two.nii", "rb") as g:
        shutil.copyfileobj(g, f)
    want = ants.image_read(str(tmp_path / "one.nii"))  # ANTs (ITK 5.4) cannot read NIfTI-2 itself
    for name in ("two.nii", "two.nii.gz"):
        got = read_nifti(tmp_path / name)
        assert got.numpy().tobytes() == want.numpy().tobytes()
        np.testing.assert_allclose(got.spacing, want.spacing, rtol=0, atol=1e-6)
        np.testing.assert_allclose(got.origin, want.origin, rtol=0, atol=1e-5)
        np.testing.assert_allclose(got.direction, want.direction, rtol=0, atol=1e-6)
