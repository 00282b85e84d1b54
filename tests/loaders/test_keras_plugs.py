"""to_keras serves batch i when asked for batch i (or says why it cannot); to_tensorflow tells keras its
exact number of steps, so multi-epoch fits never run out of data."""

import warnings

import numpy as np
import pytest

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

from nitrain import datasets, loaders, samplers  # noqa: E402
from nitrain.loaders.keras import KerasLoader  # noqa: E402


def _dataset(n=20, size=8, seed=0):
    rng = np.random.default_rng(seed)
    xs = [rng.normal(size=(size, size)).astype(np.float32) for _ in range(n)]
    return datasets.MemoryDataset(xs, [float(i) for i in range(n)])  # y = record index: order is visible


def _volumes(shapes, seed=0):
    rng = np.random.default_rng(seed)
    xs = [rng.normal(size=s).astype(np.float32) for s in shapes]
    return datasets.MemoryDataset(xs, [float(i) for i in range(len(xs))])


def _model(shape=(8, 8, 1)):
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input(shape),
            keras.layers.Conv2D(2, 3, padding="same"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(1),
        ]
    )
    model.compile(keras.optimizers.SGD(0.01), "mse")
    return model


def _epochs(make_loader, k):
    """The batches of k epochs of a fresh loader, as lists of (x, y)."""
    ld = make_loader()
    return [[(x.copy(), y.copy()) for x, y in ld] for _ in range(k)]


def _same(a, b):
    return np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])


def _recording(kd):
    """Wrap ``kd.__getitem__`` (on this instance's class copy) to log (index, batch) pairs."""
    log = []

    class Recorded(type(kd)):
        def __getitem__(self, i):
            batch = super().__getitem__(i)
            log.append((int(i), batch))
            return batch

    kd.__class__ = Recorded
    return log


# -- to_keras --------------------------------------------------------------------------------------------
def test_to_keras_serves_batch_i_in_any_order_without_a_sampler():
    def make():
        return loaders.DatasetLoader(_dataset(), batch_size=6, shuffle=True, seed=3)

    ref = _epochs(make, 3)
    ld = make()
    kd = ld.to_keras()
    assert len(kd) == 4
    for i in (2, 0, 2, 3, 0, 1):  # epoch 0, shuffled, with items asked for again: the same batches
        assert _same(kd[i], ref[0][i]), i
    for i in (3, 1, 0, 2):  # every item served: asking again begins epoch 1
        assert _same(kd[i], ref[1][i]), i
    for i in (0, 1, 2, 3):  # epoch 2 in order (from the loader's producer)
        assert _same(kd[i], ref[2][i]), i
    assert ld.epoch == 3 and kd.epochs_started == 3


def test_keras_fit_with_its_default_shuffle_gets_exactly_the_batches_it_asks_for():
    def make():
        return loaders.DatasetLoader(_dataset(), batch_size=6, shuffle=True, seed=5)

    ref = _epochs(make, 3)
    ld = make()
    kd = ld.to_keras()
    log = _recording(kd)
    epochs = []

    class Mark(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            epochs.append(len(log))

    model = _model()
    model.fit(kd, epochs=3, verbose=0, callbacks=[Mark()])  # shuffle=True: keras permutes the indices
    assert ld.epoch == 3 and int(model.optimizer.iterations.numpy()) == 12
    orders = []
    for e, start in enumerate(epochs):
        served = log[start : start + 4]
        orders.append([i for i, _ in served])
        assert sorted(orders[-1]) == [0, 1, 2, 3]
        assert all(_same(batch, ref[e][i]) for i, batch in served), e
    assert any(o != [0, 1, 2, 3] for o in orders)  # keras did shuffle (seeded above: it does)


def test_with_a_sampler_in_order_works_and_out_of_order_says_what_to_do():
    def make():
        sampler = samplers.SliceSampler(sub_batch_size=4, axis=2)
        return loaders.DatasetLoader(
            _volumes([(8, 8, 6)] * 4), batch_size=2, shuffle=True, seed=1, sampler=sampler
        )

    ref = _epochs(make, 2)
    ld = make()
    kd = ld.to_keras()
    assert len(kd) == len(ref[0]) == 6  # 2 image-batches of 12 slices, 4 at a time
    assert _same(kd[0], ref[0][0]) and _same(kd[1], ref[0][1])
    assert _same(kd[1], ref[0][1])  # the last item again
    assert _same(kd[0], ref[0][0])  # a shape peek before keras began the epoch
    with pytest.raises(
        RuntimeError, match=r"asked for batch 4 .*sampler.* next one is batch 2.*shuffle=False"
    ):
        kd[4]
    assert all(_same(kd[i], ref[0][i]) for i in (2, 3, 4, 5))
    assert _same(kd[0], ref[1][0])  # epoch done: item 0 begins the next one
    with pytest.raises((RuntimeError, tf.errors.OpError), match="pass shuffle=False to model.fit"):
        _model().fit(make().to_keras(), epochs=1, verbose=0)  # keras' default shuffle=True
    h = _model().fit(make().to_keras(), epochs=2, verbose=0, shuffle=False)
    assert len(h.history["loss"]) == 2


def test_a_plain_iterable_is_served_in_order_and_begins_again_after_an_epoch():
    rng = np.random.default_rng(0)
    batches = [
        (rng.normal(size=(2, 8, 8, 1)).astype(np.float32), np.full(2, float(i), np.float32)) for i in range(5)
    ]
    kd = KerasLoader(batches)
    assert [kd[i][1][0] for i in (0, 1, 2)] == [0, 1, 2]
    assert kd[2][1][0] == 2  # the last item again
    with pytest.raises(RuntimeError, match=r"batch 4 .*list is not a DatasetLoader.*next one is batch 3"):
        kd[4]
    assert [kd[i][1][0] for i in (3, 4)] == [3, 4]
    assert kd[0][1][0] == 0 and kd.epochs_started == 2  # a new pass over the iterable
    fresh = KerasLoader(batches)
    with pytest.raises(RuntimeError, match="asked for batch 3"):
        fresh[3]
    assert fresh[0][1][0] == 0  # a refused request leaves the adapter usable


class _WrongLength(loaders.DatasetLoader):
    """A loader whose ``len`` is off by ``off`` batches (a broken custom loader)."""

    def __init__(self, *args, off: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.off = off

    def __len__(self):
        return super().__len__() + self.off


def test_a_wrong_length_is_an_error_not_a_lost_or_extra_batch():
    sampler = samplers.SliceSampler(sub_batch_size=2, axis=2)
    exact = loaders.DatasetLoader(_volumes([(8, 8, 4), (8, 8, 6)] * 2), batch_size=2, sampler=sampler)
    assert len(exact) == sum(1 for _ in exact) == 10
    # 8 predicted, 10 real
    ld = _WrongLength(_volumes([(8, 8, 4), (8, 8, 6)] * 2), batch_size=2, sampler=sampler, off=-2)
    kd = ld.to_keras()
    with pytest.raises(IndexError, match="more batches than its length 8"):
        for i in range(8):
            kd[i]
    # 12 predicted, 8 real
    short = _WrongLength(_volumes([(8, 8, 6), (8, 8, 2)] * 2), batch_size=2, sampler=sampler, off=4)
    assert len(short) == 12 and sum(1 for _ in short) == 8
    kd = short.to_keras()
    with pytest.raises(IndexError, match="ended after 8 batches but its length is 12"):
        for i in range(12):
            kd[i]


# -- to_tensorflow ---------------------------------------------------------------------------------------
def test_to_tensorflow_with_a_sampler_fits_every_epoch_with_the_exact_steps():
    sampler = samplers.SliceSampler(sub_batch_size=4, axis=2, shuffle=True)
    ld = loaders.DatasetLoader(_volumes([(8, 8, 6)] * 5), batch_size=2, shuffle=True, seed=0, sampler=sampler)
    n = len(ld)
    assert n == 8  # image-batches of 2, 2, 1 volumes: 12, 12 and 6 slices, 4 at a time: 3 + 3 + 2
    ds = ld.to_tensorflow()
    assert int(ds.cardinality()) == n
    model = _model()
    steps = []

    class Steps(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            steps.append(0)

        def on_train_batch_end(self, batch, logs=None):
            steps[-1] += 1

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        h = model.fit(ds, epochs=3, verbose=0, callbacks=[Steps()])
    assert not [w for w in caught if "ran out of data" in str(w.message)]
    assert len(h.history["loss"]) == 3 and steps == [n, n, n]
    assert int(model.optimizer.iterations.numpy()) == 3 * n and ld.epoch == 3


def test_to_tensorflow_refuses_an_epoch_that_does_not_match_its_cardinality():
    sampler = samplers.SliceSampler(sub_batch_size=2, axis=2)
    long = _WrongLength(_volumes([(8, 8, 4), (8, 8, 6)] * 2), batch_size=2, sampler=sampler, off=-2)
    with pytest.raises(tf.errors.OpError, match="has more batches but len\\(loader\\) is 8"):
        list(long.to_tensorflow())
    short = _WrongLength(_volumes([(8, 8, 6), (8, 8, 2)] * 2), batch_size=2, sampler=sampler, off=4)
    with pytest.raises(tf.errors.OpError, match="ended after 8 batches but len\\(loader\\) is 12"):
        list(short.to_tensorflow())


def test_to_tensorflow_of_an_iterable_without_a_length_has_unknown_cardinality():
    class Gen:
        def __iter__(self):
            for i in range(3):
                yield np.zeros((2, 8, 8, 1), np.float32), np.full(2, float(i), np.float32)

    from nitrain.loaders.tensorflow import to_tf_dataset

    ds = to_tf_dataset(Gen())
    assert int(ds.cardinality()) == tf.data.UNKNOWN_CARDINALITY
    assert [float(y[0]) for _, y in ds] == [0.0, 1.0, 2.0]
