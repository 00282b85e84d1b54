import os

import numpy as np
import pytest

from nitrain._frameworks import load_triton_first

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Test modules import keras at collection; torch's triton must be loaded before tensorflow (see
# load_triton_first) or the first torch optimiser step aborts the run.
load_triton_first()


@pytest.fixture(scope="session")
def mni_t1():
    """The MNI152 T1 template (197x233x189, 1 mm) shipped inside nilearn's wheel, as an ANTs image."""
    ants = pytest.importorskip("ants")
    nilearn_datasets = pytest.importorskip("nilearn.datasets")
    nii = nilearn_datasets.load_mni152_template(resolution=1)
    data = np.asanyarray(nii.dataobj, dtype=np.float32)
    img = ants.from_numpy(np.asfortranarray(data), spacing=tuple(float(z) for z in nii.header.get_zooms()))
    return img
