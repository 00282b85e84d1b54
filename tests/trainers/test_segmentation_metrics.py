"""Per-class Dice and the 95% Hausdorff distance (hd95): the math against hand counts and scipy, Dice summed
over a whole pass, empty classes, and the history / evaluate keys of both backends."""

import math

import numpy as np
import pytest

ndi = pytest.importorskip("scipy.ndimage")

from nitrain import datasets, loaders, samplers, trainers, utils  # noqa: E402
from nitrain.trainers._objectives import HD95, Dice, make_metrics  # noqa: E402
from nitrain.trainers._surface import distance_to, hd95, surface  # noqa: E402

# Two 4x4 items, classes 0..2. Hand counts per class (|P ∩ Y|, |P|, |Y|):
#   item 0: class 1 (4, 6, 4), class 2 (2, 2, 4);  item 1: class 1 (0, 1, 0), class 2 (1, 2, 1)
# over both: dice_1 = 2*4 / (6+4+1+0) = 8/11, dice_2 = 2*3 / (2+4+2+1) = 2/3
TRUTH = np.array(
    [
        [[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 2, 2], [0, 0, 2, 2]],
        [[2, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]],
    ],
    dtype=np.float32,
)
PRED = np.array(
    [
        [[1, 1, 1, 0], [1, 1, 1, 0], [0, 0, 0, 0], [0, 0, 2, 2]],
        [[2, 2, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 1]],
    ],
    dtype=np.float32,
)
DICE = {"dice_1": 8 / 11, "dice_2": 2 / 3}


def reference_hd95(p, t, spacing=None):
    """HD95 straight from scipy: surfaces by erosion, the larger directed 95th percentile."""
    sp, st = p & ~ndi.binary_erosion(p), t & ~ndi.binary_erosion(t)
    a = ndi.distance_transform_edt(~st, sampling=spacing)[sp]
    b = ndi.distance_transform_edt(~sp, sampling=spacing)[st]
    return max(np.percentile(a, 95), np.percentile(b, 95))


def reference_means(pred, truth, classes, spacing=None):
    """Per class: the mean HD95 over the items where both masks have the class (NaN if none)."""
    out = []
    for k in range(1, classes):
        pairs = [(p == k, t == k) for p, t in zip(pred, truth, strict=True)]
        found = [reference_hd95(p, t, spacing) for p, t in pairs if p.any() and t.any()]
        out.append(np.mean(found) if found else np.nan)
    return out


def loader_of(pred, truth, batch_size, **kw):
    ds = datasets.MemoryDataset(list(pred), list(truth))
    return loaders.DatasetLoader(ds, batch_size=batch_size, shuffle=False, prefetch=0, **kw)


# -- the math ------------------------------------------------------------------------------------------
def test_surface_and_distances_match_scipy():
    rng = np.random.default_rng(0)
    for shape, spacing in (((12, 15), (0.5, 2.0)), ((9, 11, 10), (1.0, 1.5, 0.7))):
        mask = ndi.binary_dilation(rng.random(shape) > 0.95)
        np.testing.assert_array_equal(surface(mask), mask & ~ndi.binary_erosion(mask))
        for sp in (None, spacing):
            want = ndi.distance_transform_edt(~mask, sampling=sp)
            np.testing.assert_allclose(distance_to(mask, sp), want, rtol=1e-6, atol=1e-6)
        other = ndi.binary_dilation(rng.random(shape) > 0.9)
        for sp in (None, spacing):
            assert hd95(mask, other, sp) == pytest.approx(reference_hd95(mask, other, sp), rel=1e-6)


@pytest.mark.parametrize("k", [1, 2, 3])
def test_hd95_of_two_offset_cubes_is_the_offset(k):
    a, b = np.zeros((20, 20, 20), bool), np.zeros((20, 20, 20), bool)
    a[4:12, 5:13, 6:14] = True
    b[4 + k : 12 + k, 5:13, 6:14] = True
    assert hd95(a, b) == pytest.approx(k) == reference_hd95(a, b)
    assert hd95(b, a) == pytest.approx(k)
    assert hd95(a, b, spacing=(2.0, 1.0, 1.0)) == pytest.approx(2 * k)  # in the spacing's units (mm)
    assert hd95(a, a) == 0.0


def test_hd95_is_nan_when_a_mask_is_empty():
    empty, square = np.zeros((6, 6), bool), np.zeros((6, 6), bool)
    square[1:3, 1:3] = True
    assert math.isnan(hd95(empty, square)) and math.isnan(hd95(square, empty))
    assert math.isnan(hd95(empty, empty))
    with pytest.raises(ValueError, match="differ in shape"):
        hd95(square, square[:5])
    with pytest.raises(ValueError, match="2-D, 3-D or 4-D"):
        hd95(np.ones(5, bool), np.ones(5, bool))


def test_per_class_values_from_sums_with_empty_classes():
    # Dice: a class absent from prediction and target over the whole pass counts as 1
    assert Dice().values(np.array([4.0, 11.0, 0.0, 0.0])) == {
        "dice": (8 / 11 + 1) / 2,
        "dice_1": 8 / 11,
        "dice_2": 1.0,
    }
    # hd95: (sum over items, items) per class; a class with no item is NaN and left out of the mean
    v = HD95().values(np.array([6.0, 3.0, 0.0, 0.0, 1.0, 1.0]))
    assert v["hd95_1"] == 2.0 and math.isnan(v["hd95_2"]) and v["hd95_3"] == 1.0
    assert v["hd95"] == 1.5
    assert math.isnan(HD95().values(np.zeros(2))["hd95"])


def test_metric_names_and_their_checks():
    assert trainers.METRICS == ("mae", "mse", "r2", "accuracy", "dice", "hd95")
    assert trainers.HD95 is HD95 and trainers.Dice is Dice

    def dice_1(out, y):
        return 0.0

    with pytest.raises(ValueError, match=r"per-class values dice_1, dice_2.*\['dice_1'\]"):
        make_metrics(["dice", dice_1])
    assert [m.name for m in make_metrics([dice_1, "hd95"])] == ["dice_1", "hd95"]  # no 'dice': no clash
    with pytest.raises(ValueError, match="spacing must be positive"):
        HD95(spacing=(1.0, 0.0))
    with pytest.raises(ValueError, match="spacing must be a sequence"):
        HD95(spacing="mm")
    # callbacks watch a class's dice upwards, hd95 downwards
    assert utils.EarlyStopping(monitor="val_dice_2")._m.mode == "max"
    assert utils.EarlyStopping(monitor="val_hd95_1")._m.mode == "min"


# -- torch ---------------------------------------------------------------------------------------------
torch = pytest.importorskip("torch")


class OneHot(torch.nn.Module):
    """Logits whose argmax (or, with one class, whose sign) is the input label map."""

    def __init__(self, classes):
        super().__init__()
        self.classes = classes
        self.w = torch.nn.Parameter(torch.zeros(()))

    def forward(self, x):
        labels = x[:, 0]
        if self.classes == 1:
            return 10 * x - 5 + 0 * self.w
        return 10 * torch.nn.functional.one_hot(labels.round().long(), self.classes).movedim(-1, 1) - 5.0


def torch_trainer(classes, metrics=("dice", "hd95")):
    loss = "bce" if classes == 1 else "cross_entropy"
    return trainers.ModelTrainer(OneHot(classes), loss, metrics=list(metrics), channels="first", verbose=0)


def test_torch_per_class_dice_matches_hand_counts_in_any_batching():
    trainer = torch_trainer(3)
    for batch_size in (1, 2):  # per-batch means would differ: item 1's class-1 Dice alone is 0
        ev = trainer.evaluate(loader_of(PRED, TRUTH, batch_size))
        assert ev["dice_1"] == pytest.approx(DICE["dice_1"]) and ev["dice_2"] == pytest.approx(DICE["dice_2"])
        assert ev["dice"] == pytest.approx(np.mean(list(DICE.values())))
        want = reference_means(PRED, TRUTH, 3)
        assert [ev["hd95_1"], ev["hd95_2"]] == pytest.approx(want)
        assert ev["hd95"] == pytest.approx(np.mean(want))
    # item 1's class 1 is predicted but not true: only item 0 counts for hd95_1
    assert ev["hd95_1"] == pytest.approx(reference_hd95(PRED[0] == 1, TRUTH[0] == 1))


def _volumes(n=3, size=8, seed=1):
    """Label maps with classes 0..2 and a prediction that differs in a few places; the last volume has no
    class 2 in its prediction."""
    rng = np.random.default_rng(seed)
    truth, pred = [], []
    for i in range(n):
        t = np.zeros((size,) * 3, np.float32)
        t[1:6, 2:7, 1:5] = 1
        t[5:8, 0:3, 4:8] = 2
        p = np.where(rng.random(t.shape) < 0.08, rng.integers(0, 3, t.shape), t).astype(np.float32)
        if i == n - 1:
            p[p == 2] = 0
        truth.append(t)
        pred.append(p)
    return np.stack(pred), np.stack(truth)


def test_torch_dice_over_blocks_equals_whole_volume_dice():
    pred, truth = _volumes()
    trainer = torch_trainer(3)
    whole = trainer.evaluate(loader_of(pred, truth, 1))
    blocks = trainer.evaluate(loader_of(pred, truth, 2, sampler=samplers.BlockSampler(4, sub_batch_size=3)))
    for k in (1, 2):
        p, t = pred == k, truth == k
        want = 2 * (p & t).sum() / (p.sum() + t.sum())
        assert whole[f"dice_{k}"] == pytest.approx(want) and blocks[f"dice_{k}"] == pytest.approx(want)
    assert blocks["dice"] == pytest.approx(whole["dice"])
    # hd95 is per item: per volume here, the last volume left out of class 2
    assert [whole["hd95_1"], whole["hd95_2"]] == pytest.approx(reference_means(pred, truth, 3))


def test_torch_one_channel_and_spacing_and_missing_classes():
    pred, truth = (PRED == 2).astype(np.float32), (TRUTH == 2).astype(np.float32)
    ev = torch_trainer(1).evaluate(loader_of(pred, truth, 2))
    assert ev.keys() == {"loss", "dice", "dice_1", "hd95", "hd95_1"}
    assert ev["dice"] == ev["dice_1"] == pytest.approx(DICE["dice_2"])
    assert ev["hd95"] == pytest.approx(reference_means(pred, truth, 2)[0])
    # mm instead of voxels; a class no item has in both prediction and target is NaN
    metric = trainers.HD95(spacing=(2.0, 0.5))
    trainer = trainers.ModelTrainer(OneHot(4), "cross_entropy", metrics=[metric], channels="first", verbose=0)
    ev = trainer.evaluate(loader_of(PRED, TRUTH, 2))
    assert math.isnan(ev["hd95_3"])
    want = reference_means(PRED, TRUTH, 3, spacing=(2.0, 0.5))
    assert [ev["hd95_1"], ev["hd95_2"]] == pytest.approx(want) and ev["hd95"] == pytest.approx(np.mean(want))
    bad = trainers.ModelTrainer(
        OneHot(3), "cross_entropy", metrics=[trainers.HD95(spacing=(1, 1, 1))], channels="first", verbose=0
    )
    with pytest.raises(ValueError, match="3 values but the label maps have 2 spatial axes"):
        bad.evaluate(loader_of(PRED, TRUTH, 2))


def test_torch_history_keys():
    rng = np.random.default_rng(0)
    xs = [rng.normal(size=(8, 8)).astype(np.float32) for _ in range(6)]
    ys = [(x > 0.3).astype(np.float32) + (x > 1.0) for x in xs]
    torch.manual_seed(0)
    net = torch.nn.Conv2d(1, 3, 3, padding=1)
    trainer = trainers.ModelTrainer(net, "cross_entropy", metrics=["dice", "hd95"], verbose=0)
    h = trainer.fit(loader_of(xs, ys, 3), epochs=2, validation=loader_of(xs, ys, 3))
    names = ["dice", "dice_1", "dice_2", "hd95", "hd95_1", "hd95_2"]
    assert list(h) == ["loss", *names, "val_loss", *[f"val_{n}" for n in names], "lr"]
    assert trainer.metric_names == ["dice", "hd95"]
    ev = trainer.evaluate(loader_of(xs, ys, 3))
    assert list(ev) == ["loss", *names]
    assert [ev[n] for n in names] == pytest.approx([h[f"val_{n}"][-1] for n in names])


# -- keras ---------------------------------------------------------------------------------------------
def _keras():
    return pytest.importorskip("keras")


def keras_one_hot(classes, shape=(4, 4)):
    keras = _keras()
    return keras.Sequential(
        [
            keras.Input((*shape, 1)),
            keras.layers.Lambda(
                lambda t: 10.0 * keras.ops.one_hot(keras.ops.cast(t[..., 0], "int32"), classes) - 5.0
            ),
        ]
    )


def test_keras_per_class_dice_and_hd95_match_torch_and_hand_counts():
    trainer = trainers.ModelTrainer(keras_one_hot(3), "cross_entropy", metrics=["dice", "hd95"], verbose=0)
    assert trainer.framework == "keras"
    for batch_size in (1, 2):
        ev = trainer.evaluate(loader_of(PRED, TRUTH, batch_size))
        assert ev["dice_1"] == pytest.approx(DICE["dice_1"]) and ev["dice_2"] == pytest.approx(DICE["dice_2"])
        assert [ev["hd95_1"], ev["hd95_2"]] == pytest.approx(reference_means(PRED, TRUTH, 3))
    assert trainer.model.run_eagerly  # hd95 runs on the host: eager steps
    assert ev == pytest.approx(torch_trainer(3).evaluate(loader_of(PRED, TRUTH, 2)), rel=1e-6)


def test_keras_history_keys_and_config():
    keras = _keras()
    from nitrain.trainers._keras_objects import EpochHD95

    rng = np.random.default_rng(0)
    xs = [rng.normal(size=(8, 8)).astype(np.float32) for _ in range(6)]
    ys = [(x > 0.3).astype(np.float32) + (x > 1.0) for x in xs]
    keras.utils.set_random_seed(0)
    net = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(3, 3, padding="same")])
    trainer = trainers.ModelTrainer(net, "cross_entropy", metrics=["dice", "hd95"], verbose=0)
    h = trainer.fit(loader_of(xs, ys, 3), epochs=2, validation=loader_of(xs, ys, 3))
    names = ["dice", "dice_1", "dice_2", "hd95", "hd95_1", "hd95_2"]
    assert list(h) == ["loss", *names, "val_loss", *[f"val_{n}" for n in names], "lr"]
    ev = trainer.evaluate(loader_of(xs, ys, 3))
    assert list(ev) == ["loss", *names]
    assert [ev[n] for n in names] == pytest.approx([h[f"val_{n}"][-1] for n in names])
    metric = EpochHD95("hd95", 3, spacing=(1, 2))
    again = EpochHD95.from_config(metric.get_config())
    assert again.spec.spacing == (1.0, 2.0) and again.size == 4 and again._direction == "down"
