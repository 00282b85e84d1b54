"""Reading NIfTI files (``.nii``, ``.nii.gz``) in Rust, with the result ``ants.image_read`` gives.

``read_nifti`` returns the float32 ANTs image ``ants.image_read(path)`` returns (voxels bit for bit; spacing,
origin and direction by ITK 5.4's rules, sform or qform), read without the GIL and verified complete: every
gzip member's CRC32 and ISIZE, and the data's size against the header, so a truncated or damaged file is an
error naming it (``DamagedFileError``) where ITK would fill the lost voxels with zeros. On the MNI152 T1
it takes 10 ms for a .nii.gz and 4 ms for a .nii, against 65 and 54 ms for ``ants.image_read``, and
threads reading several files run in parallel (``nitrain bench --only reading``).

The voxels are inflated (or read) straight into the buffer the image then uses: the array comes from
``nitrain._core.read_nifti`` and is wrapped as an ANTs image without a copy, as ``nitrain.transforms._ants``
does. Files the reader leaves to ITK give ``None``: 4-D and higher, vector, complex and RGB data, 64-bit
integers, Analyze and two-file NIfTI, and the rare headers whose sform/qform choice in ITK cannot be
predicted exactly (``_core.read_nifti(path)['unsupported']`` says why). ``image_read`` falls back to
``ants.image_read`` for those.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from nitrain import _core
from nitrain._typing import Image

NIFTI_SUFFIXES = (".nii", ".nii.gz")


def read_nifti(path: str | os.PathLike[str]) -> Image | None:
    """The ANTs image ``ants.image_read(path)`` gives, read and verified in Rust, or ``None`` when ``path``
    is not a ``.nii``/``.nii.gz`` file the reader handles (see the module docstring).

    Raises ``DamagedFileError`` (an ``OSError``, with ``.reason`` the message without the file name) for a
    truncated or damaged file, ``FileNotFoundError`` or ``OSError`` when it cannot be read."""
    path = os.path.expanduser(os.fspath(path))
    if not path.lower().endswith(NIFTI_SUFFIXES):
        return None
    try:
        info = _core.read_nifti(path)
    except _core.NiftiDamagedError as e:
        from nitrain.datasets._verify import DamagedFileError

        msg = str(e)
        err = DamagedFileError(msg)
        err.reason = msg[len(path) + 2 :] if msg.startswith(path + ": ") else msg
        raise err from None
    if "unsupported" in info:
        return None
    return _as_image(info)


def image_read(path: str | os.PathLike[str]) -> Image:
    """``read_nifti(path)``, or ``ants.image_read(path)`` for a file it leaves to ITK."""
    import ants

    image = read_nifti(path)
    return ants.image_read(os.path.expanduser(os.fspath(path))) if image is None else image


def _as_image(info: dict[str, Any]) -> Image:
    """Wrap ``info['array']`` (float32, Fortran-ordered) as an ANTs image sharing its memory."""
    import ants

    arr = info["array"]
    reversed_view = arr.T  # C-contiguous, axes reversed: what ITK's import expects
    make = getattr(ants.lib, f"fromNumpyF{arr.ndim}")
    image = ants.from_pointer(make(reversed_view, reversed_view.shape[::-1]))
    image._ndarr = reversed_view  # the image must keep its buffer alive
    image.set_spacing(tuple(info["spacing"]))
    image.set_origin(tuple(info["origin"]))
    image.set_direction(np.asarray(info["direction"], dtype=np.float64))
    return image
