"""Checks that an image file is complete and undamaged, so that no dataset serves zeros for lost voxels.

ANTs (ITK) reads a truncated ``.nii.gz`` or ``.nii`` without error and fills the missing voxels with zeros.
These checks catch that:

- ``.nii.gz``: the gzip stream must end properly and each member's CRC32 and length (ISIZE) must match its
  data, and the data must hold as many bytes as the NIfTI header says. After ANTs has read the image,
  ``check_read`` first tries a quick proof: the CRC32 of the decompressed header continued over the image's
  voxels (converted back to the file's data type) must equal the CRC32 in the gzip trailer, and ISIZE must
  equal the header's size. When that does not hold (several gzip members, a scaled or multi-component
  image, or damage) the whole file is decompressed in chunks to decide.
- ``.nii`` (and a ``.nii.gz`` that is not compressed, which ITK reads as it is): the file must be at least
  ``vox_offset + voxels * bitpix / 8`` bytes long (NIfTI-1 or NIfTI-2, either byte order).
- ``.npy``: the file must be at least as long as its header says.

Other formats (``.nrrd``, ``.mha``, ...) are left to ITK, which reports a short file itself.
"""

from __future__ import annotations

import os
import struct
import zlib
from typing import IO, Any

import numpy as np

from nitrain._typing import Image

_IN_CHUNK = 1 << 20  # compressed bytes read at a time
_OUT_CHUNK = 8 << 20  # most decompressed bytes one zlib call returns
_NIFTI_DTYPES = {
    2: "u1", 4: "i2", 8: "i4", 16: "f4", 32: "c8", 64: "f8", 256: "i1", 512: "u2", 768: "u4", 1024: "i8",
    1280: "u8", 1792: "c16",
}  # fmt: skip


class DamagedFileError(OSError):
    """An image file is short, or its compressed data or checksums do not match."""

    #: the message without the file name (set by the readers that know it)
    reason: str = ""


class NiftiLayout:
    """Where the voxels of a NIfTI file are: ``vox_offset``, ``nbytes``, their ``dtype`` (``None`` when the
    data type has no numpy equivalent), and the offset of the header's 24-byte ``aux_file`` field."""

    def __init__(self, vox_offset: int, nbytes: int, dtype: np.dtype[Any] | None, aux_offset: int) -> None:
        self.vox_offset, self.nbytes, self.dtype, self.aux_offset = vox_offset, nbytes, dtype, aux_offset

    @property
    def size(self) -> int:
        """Bytes of header and voxels: the least a complete file holds."""
        return self.vox_offset + self.nbytes


def nifti_layout(head: bytes) -> NiftiLayout:
    """The layout given by a NIfTI-1 or NIfTI-2 header (the first 540 or more bytes of the data)."""
    if len(head) < 348:
        raise DamagedFileError(f"the data ends inside the NIfTI header ({len(head)} bytes)")
    for order in "<>":
        hsize = struct.unpack(order + "i", head[:4])[0]
        if hsize in (348, 540):
            break
    else:
        raise DamagedFileError(f"not a NIfTI header (sizeof_hdr is {struct.unpack('<i', head[:4])[0]})")
    if hsize == 540:
        if len(head) < 540:
            raise DamagedFileError(f"the data ends inside the NIfTI-2 header ({len(head)} bytes)")
        datatype, bitpix = struct.unpack(order + "hh", head[12:16])
        dims = struct.unpack(order + "8q", head[16:80])
        vox_offset = struct.unpack(order + "q", head[168:176])[0]
        aux = 320
    else:
        dims = struct.unpack(order + "8h", head[40:56])
        datatype, bitpix = struct.unpack(order + "hh", head[70:74])
        vox_offset = struct.unpack(order + "f", head[108:112])[0]
        aux = 228
    ndim = dims[0]
    if not 1 <= ndim <= 7:
        raise DamagedFileError(f"the NIfTI header is damaged: dim[0] is {ndim}, not 1 to 7")
    shape = dims[1 : ndim + 1]
    if min(shape) < 1 or bitpix < 1 or not np.isfinite(vox_offset):
        raise DamagedFileError(
            f"the NIfTI header is damaged: dims {list(shape)}, bitpix {bitpix}, vox_offset {vox_offset}"
        )
    nbytes = (int(np.prod(shape, dtype=np.int64)) * bitpix + 7) // 8
    code = _NIFTI_DTYPES.get(datatype)
    dtype = np.dtype(order + code) if code and np.dtype(code).itemsize * 8 == bitpix else None
    return NiftiLayout(max(int(vox_offset), hsize), nbytes, dtype, aux)


def _short(size: int, layout: NiftiLayout, what: str) -> DamagedFileError:
    return DamagedFileError(
        f"{what} has {size} bytes but its NIfTI header needs {layout.size} ({layout.vox_offset} of header "
        f"and {layout.nbytes} of voxels): the file is truncated"
    )


# -- gzip ----------------------------------------------------------------------------------------------------


def gunzip_all(f: IO[bytes], keep: int = 0) -> tuple[int, bytes]:
    """Decompress the whole gzip stream in ``f`` (a binary file) in chunks, checking every member's CRC32
    and ISIZE; ``(decompressed size, its first `keep` bytes)``. Zero bytes after the last member are
    padding; anything else there, an unfinished member or a checksum mismatch raises ``DamagedFileError``."""
    d = zlib.decompressobj(31)
    total, head, pending, started, members = 0, bytearray(), b"", False, 0
    while True:
        if not pending:
            pending = f.read(_IN_CHUNK)
            if not pending:
                break
        if not started:
            if members and not pending.strip(b"\0"):
                pending = b""  # zero padding after the last member
                continue
            if members and not pending.startswith(b"\x1f\x8b"):
                raise DamagedFileError(f"unexpected data after gzip member {members} (not zero padding)")
            started = True
        try:
            out = d.decompress(pending, _OUT_CHUNK)
        except zlib.error as e:
            what = {"incorrect data check": "CRC32 mismatch", "incorrect length check": "ISIZE mismatch"}
            reason = next((v for k, v in what.items() if k in str(e)), "damaged compressed data")
            raise DamagedFileError(f"{reason} in gzip member {members + 1} ({e})") from e
        if len(head) < keep:
            head += out[: keep - len(head)]
        total += len(out)
        pending = d.unconsumed_tail
        if d.eof:
            pending = d.unused_data + pending
            d, started, members = zlib.decompressobj(31), False, members + 1
    if started:
        raise DamagedFileError(
            f"the gzip stream ends early, after {total} decompressed bytes: the file is truncated"
        )
    if not members:
        raise DamagedFileError("the file is empty")
    return total, bytes(head)


def _gunzip_head(f: IO[bytes]) -> tuple[bytes, NiftiLayout] | None:
    """The decompressed NIfTI header and extensions (``vox_offset`` bytes) from the start of ``f``, and their
    layout; ``None`` when the first gzip member ends before them."""
    d, head = zlib.decompressobj(31), b""
    need = 540
    while len(head) < need:
        chunk = d.unconsumed_tail or f.read(1 << 16)
        if not chunk or d.eof:
            break
        try:
            head += d.decompress(chunk, need - len(head))
        except zlib.error as e:
            raise DamagedFileError(f"damaged compressed data at the start of the file ({e})") from e
        if len(head) >= 348 and need == 540:
            layout = nifti_layout(head)
            need = layout.vox_offset
    if len(head) < 348:
        return None
    layout = nifti_layout(head)
    return (head[: layout.vox_offset], layout) if len(head) >= layout.vox_offset else None


def _trailer(f: IO[bytes], size: int) -> tuple[int, int]:
    f.seek(size - 8)
    crc, isize = struct.unpack("<II", f.read(8))
    f.seek(0)
    return crc, isize


def check_gzip_file(f: IO[bytes], size: int) -> NiftiLayout:
    """Decompress all of ``f`` (a ``.nii.gz``) and check it holds as many bytes as its NIfTI header says."""
    f.seek(0)
    total, head = gunzip_all(f, keep=540)
    layout = nifti_layout(head)
    if total < layout.size:
        raise _short(total, layout, "the decompressed data")
    return layout


# Any: an ndarray or None (numpy's stubs give ndarray the buffer protocol zlib.crc32 takes on 3.12+ only)
def voxel_bytes(img: Image, layout: NiftiLayout) -> Any:
    """The image's voxels as the file stores them (``layout.dtype``, x fastest), or ``None`` when ANTs holds
    them in another order (multi-component images)."""
    a = img.view()
    if layout.dtype is None or getattr(img, "components", 1) != 1 or not a.flags.f_contiguous:
        return None
    if a.dtype != layout.dtype:
        a = a.astype(layout.dtype, order="F")
    return a.T if a.nbytes == layout.nbytes else None


def _is_gzip(f: IO[bytes]) -> bool:
    f.seek(0)
    magic = f.read(2)
    f.seek(0)
    return magic == b"\x1f\x8b"


def _check_nii_gz(path: str, img: Image) -> None:
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if not _is_gzip(f):  # a NIfTI file named .nii.gz but not compressed: ITK reads it as it is
            check_nii(f, size)
            return
        if size >= 18:
            crc, isize = _trailer(f, size)
            got = _gunzip_head(f)
            if got is not None:
                head, layout = got
                if isize == layout.size & 0xFFFFFFFF:
                    voxels = voxel_bytes(img, layout)
                    if voxels is not None and zlib.crc32(voxels, zlib.crc32(head)) == crc:
                        return  # what ANTs read is what was compressed
        check_gzip_file(f, size)  # a multi-member, scaled or multi-component file, or damage: decide


def check_nii(f: IO[bytes], size: int) -> NiftiLayout:
    """Check that ``f`` (a raw ``.nii`` of ``size`` bytes) is as long as its header says."""
    f.seek(0)
    layout = nifti_layout(f.read(540))
    if size < layout.size:
        raise _short(size, layout, "the file")
    return layout


def check_npy(f: IO[bytes], size: int) -> None:
    """Check that ``f`` (a ``.npy``) is as long as its header says."""
    fmt = np.lib.format
    f.seek(0)
    try:
        version = fmt.read_magic(f)
        shape, _, dtype = fmt.read_array_header_2_0(f) if version >= (2, 0) else fmt.read_array_header_1_0(f)
    except ValueError as e:
        raise DamagedFileError(f"not a readable .npy file: {e}") from e
    if not dtype.hasobject:
        need = f.tell() + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if size < need:
            raise DamagedFileError(f"the file has {size} bytes but its .npy header needs {need}: truncated")


# -- entry points ---------------------------------------------------------------------------------------


def check_before_read(path: str) -> None:
    """The cheap checks that can run before ANTs reads ``path``: size against the header for ``.nii`` and
    ``.npy``."""
    lower = path.lower()
    if lower.endswith((".nii", ".npy")):
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            (check_nii if lower.endswith(".nii") else check_npy)(f, size)


def check_read(path: str, img: Image) -> None:
    """After ANTs has read ``path`` as ``img``: for ``.nii.gz``, prove that ``img`` holds the compressed data
    (see the module docstring); raises ``DamagedFileError`` when the file is damaged."""
    if path.lower().endswith(".nii.gz"):
        _check_nii_gz(path, img)


def check_file(f: IO[bytes], size: int, name: str) -> None:
    """Cheap checks of an image file opened as ``f`` (``size`` bytes; ``name`` gives the format), for
    datasets that leave bad records out when built: header and size for ``.nii`` and ``.npy``; for
    ``.nii.gz`` the header and the gzip trailer's ISIZE (when ISIZE disagrees, the whole file is
    decompressed to decide, since a valid file with several gzip members has that too). A ``.nii.gz`` that
    passes may still fail its CRC32 check when read. Other formats: not empty."""
    lower = name.lower()
    if size == 0:
        raise DamagedFileError("the file is empty")
    if lower.endswith(".nii.gz") and not _is_gzip(f):
        check_nii(f, size)  # named .nii.gz but not compressed: ITK reads it as it is
    elif lower.endswith(".nii.gz"):
        if size >= 18:
            _, isize = _trailer(f, size)
            got = _gunzip_head(f)
            if got is not None and isize == got[1].size & 0xFFFFFFFF:
                return
        check_gzip_file(f, size)
    elif lower.endswith(".nii"):
        check_nii(f, size)
    elif lower.endswith(".npy"):
        check_npy(f, size)


def explain(path: str) -> str | None:
    """Why ``path`` is damaged, when ANTs failed to read it and a full check finds why; else ``None``."""
    lower = path.lower()
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if lower.endswith(".nii.gz") and _is_gzip(f):
                check_gzip_file(f, size)
            elif lower.endswith((".nii", ".nii.gz", ".npy")):
                check_file(f, size, lower)
    except DamagedFileError as e:
        return str(e)
    except OSError:
        return None
    return None
