"""The channel-layout helpers of ``nitrain._layout``."""

import numpy as np
import pytest

from nitrain._layout import (
    add_channel,
    check_channels,
    drop_channel,
    first_batch,
    from_data_format,
    layout_of,
    move_axis,
    move_channels,
)


def test_move_channels_between_layouts():
    x = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)  # (N, H, W, C)
    first, y = move_channels(x, np.ones(2), "last", "first")
    assert first.shape == (2, 5, 3, 4) and first.flags.c_contiguous and y.shape == (2,)
    np.testing.assert_array_equal(first[1, 2], x[1, ..., 2])
    back, _ = move_channels(first, None, "first", "last")
    np.testing.assert_array_equal(back, x)
    same, _ = move_channels(x, None, "last", None)
    assert same is x


def test_move_channels_adds_an_axis_and_moves_image_targets():
    x, y = np.zeros((2, 3, 4)), np.zeros((2, 3, 4))
    (a, b), y2 = move_channels([x, x], y, None, "first")
    assert a.shape == b.shape == y2.shape == (2, 1, 3, 4)
    t, _ = move_channels((x,), None, None, "last")
    assert isinstance(t, tuple) and t[0].shape == (2, 3, 4, 1)


def test_move_axis_unbatched():
    img = np.zeros((3, 4, 5))  # (C, *spatial)
    assert move_axis(img, "first", "last", batched=False).shape == (4, 5, 3)


def test_add_and_drop_channel():
    batch = np.zeros((2, 3, 4), dtype=np.float64)
    a = add_channel(batch, "first", np.float32)
    assert a.shape == (2, 1, 3, 4) and a.dtype == np.float32
    assert add_channel(batch, "last").shape == (2, 3, 4, 1)
    assert add_channel(batch, None).shape == (2, 3, 4)
    assert drop_channel(a, "first").shape == (2, 3, 4)
    assert drop_channel(add_channel(batch, "last"), "last").shape == (2, 3, 4)


def test_bad_layouts_are_named():
    with pytest.raises(ValueError, match="owner: channels must be 'first', 'last' or None, got 'middle'"):
        check_channels("owner", "middle")
    with pytest.raises(ValueError, match="move_channels"):
        move_channels(np.zeros((1, 2, 3)), None, "last", "centre")
    with pytest.raises(ValueError, match="add_channel"):
        add_channel(np.zeros((1, 2)), "centre")


class _Holder:
    def __init__(self, channel):
        self.channel = channel


class _DataLoader:
    def __init__(self, dataset):
        self.dataset = dataset


def test_layout_of_and_from_data_format():
    assert layout_of(_Holder("first")) == "first"
    assert layout_of(_Holder(None)) is None
    assert layout_of(_DataLoader(_Holder("first"))) == "first"  # a torch DataLoader over to_torch()
    assert layout_of(_DataLoader([1, 2])) == "last"
    assert layout_of([(np.zeros(1), 0)]) == "last"
    assert from_data_format("channels_first") == "first"
    assert from_data_format("channels_last") == "last"
    assert from_data_format(None, "first") == "first"


def test_first_batch():
    assert first_batch([("x", "y"), ("x2", "y2")]) == ("x", "y")
    assert first_batch([]) is None
