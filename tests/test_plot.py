import numpy as np
import pytest

ants = pytest.importorskip("ants")
pytest.importorskip("matplotlib")

from nitrain import plot  # noqa: E402


def _image(arr, **geometry):
    return ants.from_numpy(np.asfortranarray(arr), **geometry)


def _image_axes(fig):
    return [ax for ax in fig.axes if ax.images]


def _titles(fig):
    """The slice index of each panel, from its title ``slice <index>``."""
    return [int(ax.get_title().split()[-1]) for ax in _image_axes(fig)]


def _is_png(path):
    with open(path, "rb") as f:
        return f.read(8) == b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def vol():
    arr = np.arange(10 * 12 * 14, dtype=np.float32).reshape(10, 12, 14)
    return _image(arr, spacing=(1.0, 2.0, 3.0))


def test_grid_writes_a_png_and_draws_one_axis_per_image(vol, tmp_path):
    path = tmp_path / "grid.png"
    images = [vol, vol * 2, vol + 1, _image(np.ones((5, 6), np.float32))]
    fig = plot.grid(images, path=path, titles=["a", "b", "c", "d"])
    assert path.exists() and path.stat().st_size > 0 and _is_png(path)
    axes = _image_axes(fig)
    assert len(axes) == 4 and len(fig.axes) == 4  # the 2x2 grid has no empty panel left over
    assert [ax.get_title() for ax in axes] == ["a", "b", "c", "d"]
    fig3 = plot.grid([vol] * 3, ncols=3)
    assert len(_image_axes(fig3)) == 3 and len(fig3.axes) == 3  # unused cells are removed
    assert plot.grid(vol, path=str(tmp_path / "one.png")) is not None
    assert _is_png(tmp_path / "one.png")


def test_grid_orientation_and_slice_choice(vol):
    arr = vol.numpy()
    fig = plot.grid([vol], axis=2)
    shown = fig.axes[0].images[0]
    np.testing.assert_array_equal(shown.get_array(), arr[:, :, 7].T)  # middle slice, axis 0 horizontal
    assert shown.origin == "lower"
    assert fig.axes[0].get_aspect() == pytest.approx(2.0)  # spacing 2 (vertical) / 1 (horizontal)
    fig = plot.grid([vol], axis=0, slice_index=3)
    np.testing.assert_array_equal(fig.axes[0].images[0].get_array(), arr[3].T)
    fig = plot.grid([vol], axis=1, slice_index=-1)
    np.testing.assert_array_equal(fig.axes[0].images[0].get_array(), arr[:, -1, :].T)
    flat = np.arange(20, dtype=np.float32).reshape(4, 5)
    fig = plot.grid([flat])  # numpy arrays work too, 2-D shown whole
    np.testing.assert_array_equal(fig.axes[0].images[0].get_array(), flat.T)


def test_grid_errors(vol):
    with pytest.raises(ValueError, match="grid: expected at least one image"):
        plot.grid([])
    with pytest.raises(ValueError, match="grid: got 1 titles for 2 images"):
        plot.grid([vol, vol], titles=["x"])
    with pytest.raises(IndexError, match=r"grid: slice_index 20 is out of range for images\[1\]"):
        plot.grid([_image(np.zeros((4, 4, 30), np.float32)), vol], slice_index=20)
    with pytest.raises(ValueError, match="axis must be 0, 1 or 2"):
        plot.grid([vol], axis=3)
    with pytest.raises(ValueError, match="grid: ncols must be a positive integer"):
        plot.grid([vol], ncols=0)
    with pytest.raises(TypeError, match=r"grid: images\[0\] must be an ants.ANTsImage or a numpy array"):
        plot.grid(["brain.nii.gz"])
    with pytest.raises(ValueError, match=r"grid: images\[0\] must be 2-D or 3-D"):
        plot.grid([np.zeros(5)])


def test_overlay_writes_a_png_with_a_colour_bar(vol, tmp_path):
    saliency = np.zeros(vol.shape, np.float32)
    saliency[3:7, 4:9, 4:10] = np.random.default_rng(0).random((4, 5, 6)) + 0.1
    path = tmp_path / "overlay.png"
    fig = plot.overlay(vol, _image(saliency, spacing=(1.0, 2.0, 3.0)), path=path, n_slices=4)
    assert _is_png(path)
    axes = _image_axes(fig)
    assert len(axes) == 4
    colorbars = [ax for ax in fig.axes if ax not in axes]
    assert len(colorbars) == 1 and len(fig.axes) == 5
    # each panel: the anatomy, then the overlay on top (zeros transparent), slices inside the map's extent
    for ax in axes:
        anat, over = ax.images
        assert np.ma.is_masked(over.get_array())
        assert over.get_alpha() == 0.5
    # the four slices (of 14, so no spacing is enforced) with the largest total |map|, in increasing order
    strongest = sorted(int(k) for k in np.argsort(-saliency.sum(axis=(0, 1)))[:4])
    assert _titles(fig) == strongest and all(4 <= s <= 9 for s in strongest)
    lo, hi = axes[0].images[1].norm.vmin, axes[0].images[1].norm.vmax
    assert lo == pytest.approx(saliency[saliency > 0].min()) and hi == pytest.approx(saliency.max())


def test_overlay_without_colour_bar_and_2d(vol):
    fig = plot.overlay(vol, vol, colorbar=False, n_slices=9, axis=0)
    assert len(fig.axes) == 9 == len(_image_axes(fig))
    fig = plot.overlay(vol, vol, n_slices=50)  # more slices than the axis has: every slice once
    assert len(_image_axes(fig)) == 14
    flat = _image(np.random.default_rng(1).random((8, 9)).astype(np.float32))
    fig = plot.overlay(flat, flat)
    assert len(_image_axes(fig)) == 1 and len(fig.axes) == 2


def test_overlay_errors(vol):
    with pytest.raises(
        ValueError, match=r"overlay: image shape \(10, 12, 14\) and overlay shape \(10, 12, 13\)"
    ):
        plot.overlay(vol, _image(np.zeros((10, 12, 13), np.float32)))
    with pytest.raises(ValueError, match="overlay: n_slices must be a positive integer"):
        plot.overlay(vol, vol, n_slices=0)
    with pytest.raises(ValueError, match=r"overlay: alpha must be in \[0, 1\]"):
        plot.overlay(vol, vol, alpha=2)
    with pytest.raises(IndexError, match=r"overlay: slice 12 is out of range \(12 slices along axis 1\)"):
        plot.overlay(vol, vol, axis=1, slices=[0, 12])
    with pytest.raises(ValueError, match="overlay: slices must name at least one slice"):
        plot.overlay(vol, vol, slices=[])
    with pytest.raises(TypeError, match="overlay: slices must be integers, got 1.5"):
        plot.overlay(vol, vol, slices=[1.5])
    with pytest.raises(TypeError, match="overlay: slices must be a list of slice indices"):
        plot.overlay(vol, vol, slices="middle")
    flat = _image(np.ones((8, 9), np.float32))
    with pytest.raises(ValueError, match="overlay: slices= applies to 3-D images"):
        plot.overlay(flat, flat, slices=[0])


def _focal_map(shape=(10, 12, 40), peak=31):
    """A weak map over the whole volume and a strong focal one (a "lesion") around slice ``peak``."""
    ov = np.full(shape, 0.01, np.float32)
    ov[3:6, 4:7, peak - 2 : peak + 3] = 1.0
    ov[3:6, 4:7, peak] = 2.0
    return ov


def test_overlay_shows_the_slices_where_the_map_is_strongest():
    ov = _focal_map()
    anat = _image(np.ones(ov.shape, np.float32))
    fig = plot.overlay(anat, _image(ov), n_slices=4)
    shown = _titles(fig)
    # Evenly spaced panels over the map's extent (0, 13, 26, 39) would all miss the focal region.
    assert len(shown) == 4 and shown == sorted(shown)
    assert 31 in shown  # the strongest slice
    assert min(np.diff(shown)) >= 40 // (2 * 4)  # kept apart: not four neighbours of the peak
    # the map's strongest slices along another axis, too
    fig = plot.overlay(anat, _image(ov), axis=0, n_slices=3)
    assert _titles(fig) == [3, 4, 5]


def test_overlay_strongest_slices_spacing_and_fill():
    ov = _focal_map()
    assert plot._strongest_slices(ov, 2, 1) == [31]
    # 40 slices, 4 panels: at least 5 apart; the peak first, then the strongest slices far enough from it
    picked = plot._strongest_slices(ov, 2, 4)
    assert 31 in picked and all(abs(a - b) >= 5 for a in picked for b in picked if a != b)
    # a map that lives in two slices gives two panels, not empty ones
    two = np.zeros((6, 6, 20), np.float32)
    two[2:4, 2:4, 7] = 1.0
    two[2:4, 2:4, 8] = -3.0  # |map| counts: a strongly negative slice is strong
    assert plot._strongest_slices(two, 2, 9) == [7, 8]
    # more panels than spacing allows: the strongest remaining slices fill in
    ramp = np.broadcast_to(np.arange(1, 11, dtype=np.float32), (4, 4, 10))
    assert plot._strongest_slices(ramp, 2, 6) == [4, 5, 6, 7, 8, 9]
    # NaN and inf count 0; a map zero everywhere gets evenly spaced slices over the whole axis
    bad = np.zeros((4, 4, 9), np.float32)
    bad[..., 2] = np.nan
    bad[..., 3] = np.inf
    assert plot._strongest_slices(bad, 2, 3) == [0, 4, 8]
    assert plot._strongest_slices(bad, 2, 1) == [4]


def test_overlay_chosen_axis_and_slices(vol):
    arr = vol.numpy()
    fig = plot.overlay(vol, vol, axis=1, slices=[2, -1, 5])
    assert _titles(fig) == [2, 11, 5]  # as given, negative indices counted from the end
    np.testing.assert_array_equal(_image_axes(fig)[0].images[0].get_array(), arr[:, 2, :].T)
    np.testing.assert_array_equal(_image_axes(fig)[1].images[0].get_array(), arr[:, 11, :].T)
    fig = plot.overlay(vol, vol, axis=0, slices=np.int64(3))  # one index is one panel
    assert _titles(fig) == [3]
    np.testing.assert_array_equal(_image_axes(fig)[0].images[0].get_array(), arr[3].T)


def test_real_mri_grid(mni_t1, tmp_path):
    path = tmp_path / "mni.png"
    fig = plot.grid([mni_t1], path=path, axis=1)
    assert _is_png(path)
    assert fig.axes[0].images[0].get_array().shape == (189, 197)
