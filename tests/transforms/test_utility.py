import ants
import numpy as np
import pytest

from nitrain.transforms.utility import AddChannel, Astype, CustomFunction, LabelsToChannels, NumpyFunction

GEOMETRY = {"spacing": (2.0, 1.5, 3.0), "origin": (10.0, -5.0, 2.0), "direction": np.eye(3)[[1, 0, 2]]}


def _image(arr, **geometry):
    return ants.from_numpy(np.asfortranarray(arr), **geometry)


def _same_geometry(a, b):
    assert a.shape == b.shape
    assert a.spacing == b.spacing and a.origin == b.origin
    np.testing.assert_array_equal(a.direction, b.direction)


@pytest.fixture
def img3d():
    arr = (np.random.default_rng(0).random((6, 7, 8)) * 200).astype(np.float32)
    return _image(arr, **GEOMETRY)


@pytest.fixture
def seg3d():
    arr = np.zeros((6, 7, 8), np.float32)
    arr[1:3] = 1
    arr[3:5, :3] = 4
    arr[5] = 2
    return _image(arr, **GEOMETRY)


@pytest.mark.parametrize(
    "dtype, pixeltype, np_dtype",
    [
        ("float32", "float", np.float32),
        ("float64", "double", np.float64),
        ("uint8", "unsigned char", np.uint8),
        ("uint32", "unsigned int", np.uint32),
        ("double", "double", np.float64),
        (np.uint8, "unsigned char", np.uint8),
    ],
)
def test_astype_pixel_types_and_geometry(img3d, dtype, pixeltype, np_dtype):
    out = Astype(dtype)(img3d)
    assert out.pixeltype == pixeltype and out.numpy().dtype == np_dtype
    _same_geometry(out, img3d)
    np.testing.assert_allclose(
        out.numpy(), img3d.numpy(), atol=0.5 if np_dtype in (np.uint8, np.uint32) else 0
    )


def test_astype_integer_targets_round_and_clip_instead_of_wrapping():
    img = _image(np.array([[-5.0, 300.5], [1.7, np.nan]], np.float32))
    np.testing.assert_array_equal(Astype("uint8")(img).numpy(), [[0, 255], [2, 0]])
    big = Astype("uint32")(_image(np.array([[70000.0, 3.0]], np.float32)))
    np.testing.assert_array_equal(Astype("uint8")(big).numpy(), [[255, 3]])
    assert Astype("uint32")(big) is not big  # a new image even when the type already matches


def test_astype_rejects_unknown_types():
    for bad in ("int16", "complex64", 3, None):
        with pytest.raises(ValueError, match=r"Astype: dtype must be one of .*got"):
            Astype(bad)


def test_astype_applies_to_label_maps_too(img3d, seg3d):
    out, lab = Astype("uint8")(img3d, seg3d)
    assert out.pixeltype == lab.pixeltype == "unsigned char"
    np.testing.assert_array_equal(lab.numpy(), seg3d.numpy())


def test_add_channel(img3d, seg3d):
    last = AddChannel()(img3d)
    assert isinstance(last, np.ndarray) and last.shape == (6, 7, 8, 1) and last.dtype == np.float32
    np.testing.assert_array_equal(last[..., 0], img3d.numpy())
    first, lab = AddChannel(axis=0)(img3d, seg3d)
    assert first.shape == lab.shape == (1, 6, 7, 8)
    np.testing.assert_array_equal(lab[0], seg3d.numpy())
    assert AddChannel()(_image(np.ones((4, 5), np.float32))).shape == (4, 5, 1)


def test_add_channel_bad_axis(img3d):
    with pytest.raises(TypeError, match="AddChannel: axis must be an integer"):
        AddChannel(axis=1.5)
    with pytest.raises(ValueError, match="AddChannel: axis=5 is out of range for a 3-D image"):
        AddChannel(axis=5)(img3d)


def test_labels_to_channels_from_the_image(seg3d):
    arr = seg3d.numpy()
    onehot = LabelsToChannels()(seg3d)
    assert onehot.shape == (6, 7, 8, 3) and onehot.dtype == np.float32  # labels 1, 2, 4
    for k, v in enumerate((1, 2, 4)):
        np.testing.assert_array_equal(onehot[..., k], arr == v)
    np.testing.assert_array_equal(onehot.sum(-1), arr != 0)
    full = LabelsToChannels(keep_background=True)(seg3d)
    assert full.shape[-1] == 4
    np.testing.assert_array_equal(full.sum(-1), 1)
    np.testing.assert_array_equal(full[..., 0], arr == 0)


def test_labels_to_channels_explicit_labels_are_sorted(seg3d):
    arr = seg3d.numpy()
    t = LabelsToChannels(labels=[4, 1, 7], keep_background=True)
    assert t.labels == [0, 1, 4, 7]
    onehot = t(seg3d)
    assert onehot.shape[-1] == 4
    np.testing.assert_array_equal(onehot[..., 2], arr == 4)
    np.testing.assert_array_equal(onehot[..., 3], 0)  # 7 is absent
    np.testing.assert_array_equal(onehot.sum(-1), arr != 2)  # 2 is not encoded
    assert LabelsToChannels(labels=[0, 3]).labels == [3]


def test_labels_to_channels_errors(img3d):
    with pytest.raises(ValueError, match="LabelsToChannels: labels contains duplicates"):
        LabelsToChannels(labels=[1, 2, 1])
    with pytest.raises(ValueError, match="no label to encode"):
        LabelsToChannels(labels=[0])
    with pytest.raises(TypeError, match="LabelsToChannels: labels must be a sequence of numbers"):
        LabelsToChannels(labels=["a"])
    with pytest.raises(ValueError, match="non-integer values"):
        LabelsToChannels()(img3d)


def _add(image, amount):
    return image + amount


def test_custom_function(img3d, seg3d):
    out = CustomFunction(_add, amount=3)(img3d)
    np.testing.assert_allclose(out.numpy(), img3d.numpy() + 3)
    a, b = CustomFunction(_add, amount=1)(img3d, seg3d)
    np.testing.assert_allclose(b.numpy(), seg3d.numpy() + 1)


def test_custom_function_errors(img3d):
    with pytest.raises(TypeError, match="CustomFunction: fn must be callable"):
        CustomFunction(3)

    def to_numpy(image):
        return image.numpy()

    with pytest.raises(
        TypeError, match=r"CustomFunction: .*to_numpy must return an ants.ANTsImage, got ndarray"
    ):
        CustomFunction(to_numpy)(img3d)


def test_numpy_function_keeps_geometry_and_dtype(img3d):
    out = NumpyFunction(lambda a, k: a * k, k=2.0)(img3d)
    _same_geometry(out, img3d)
    np.testing.assert_allclose(out.numpy(), img3d.numpy() * 2)
    assert out.pixeltype == "float"
    mask = NumpyFunction(lambda a: a > 100)(img3d)
    assert mask.pixeltype == "unsigned char"
    np.testing.assert_array_equal(mask.numpy(), img3d.numpy() > 100)
    _same_geometry(mask, img3d)
    assert NumpyFunction(lambda a: a.astype(np.float64))(img3d).pixeltype == "double"
    assert NumpyFunction(lambda a: a.astype(np.int16))(img3d).pixeltype == "float"


def test_numpy_function_does_not_modify_the_input(img3d):
    before = img3d.numpy().copy()

    def in_place(a):
        a += 1
        return a

    NumpyFunction(in_place)(img3d)
    np.testing.assert_array_equal(img3d.numpy(), before)


def test_numpy_function_errors(img3d):
    def flatten(a):
        return a.ravel()

    with pytest.raises(ValueError, match=r"NumpyFunction: .*flatten changed the shape from \(6, 7, 8\)"):
        NumpyFunction(flatten)(img3d)
    with pytest.raises(TypeError, match="must return a numpy array, got list"):
        NumpyFunction(lambda a: a.tolist())(img3d)
    with pytest.raises(TypeError, match="NumpyFunction: fn must be callable"):
        NumpyFunction("abs")
