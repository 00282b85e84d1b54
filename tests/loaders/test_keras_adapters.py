"""DatasetLoader.to_keras (a keras PyDataset) and to_tensorflow (a tf.data.Dataset) feed real keras fits."""

import subprocess
import sys

import numpy as np
import pytest

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

from nitrain import datasets, loaders  # noqa: E402


def _dataset(n=20, size=8, seed=0):
    rng = np.random.default_rng(seed)
    xs = [rng.normal(size=(size, size)).astype(np.float32) for _ in range(n)]
    return datasets.MemoryDataset(xs, [float(i) for i in range(n)])  # y = record index: order is visible


def _two_inputs(n=12, size=8):
    rng = np.random.default_rng(1)
    xs = [[rng.normal(size=(size, size)).astype(np.float32) for _ in range(2)] for _ in range(n)]
    return datasets.MemoryDataset(xs, [float(i) for i in range(n)])


def _model(size=8, inputs=1):
    keras.utils.set_random_seed(0)
    ins = [keras.Input((size, size, 1)) for _ in range(inputs)]
    h = ins[0] if inputs == 1 else keras.layers.Concatenate()(ins)
    h = keras.layers.Conv2D(2, 3, padding="same")(h)
    out = keras.layers.Dense(1)(keras.layers.GlobalAveragePooling2D()(h))
    model = keras.Model(ins if inputs > 1 else ins[0], out)
    model.compile(keras.optimizers.SGD(0.01), "mse")
    return model


def _weights(model):
    return [np.array(w) for w in model.get_weights()]


def test_to_keras_is_a_pydataset_that_feeds_a_one_step_fit():
    ld = loaders.DatasetLoader(_dataset(4), batch_size=4, shuffle=True, seed=0)
    kd = ld.to_keras()
    assert isinstance(kd, keras.utils.PyDataset) and len(kd) == 1
    model = _model()
    before = _weights(model)
    history = model.fit(kd, epochs=1, verbose=0)
    assert len(history.history["loss"]) == 1
    assert model.optimizer.iterations.numpy() == 1  # exactly one step
    assert any(not np.array_equal(a, b) for a, b in zip(before, _weights(model), strict=True))
    assert ld.epoch == 1  # the shapes keras peeked at did not cost a loader epoch


def test_to_keras_serves_the_loaders_epochs_in_order_with_the_same_seed():
    ref = loaders.DatasetLoader(_dataset(), batch_size=6, shuffle=True, seed=3)
    expected = [[y.tolist() for _, y in ref] for _ in range(3)]
    ld = loaders.DatasetLoader(_dataset(), batch_size=6, shuffle=True, seed=3)
    kd = ld.to_keras()
    assert len(kd) == 4
    served = []

    class Record(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            served.append([])

    original = type(kd).__getitem__

    def getitem(self, i):
        batch = original(self, i)
        if served:  # items read inside an epoch (not the shape peek before it)
            served[-1].append(batch[1].tolist())
        return batch

    type(kd).__getitem__ = getitem
    try:
        _model().fit(kd, epochs=3, verbose=0, shuffle=False, callbacks=[Record()])
    finally:
        type(kd).__getitem__ = original
    assert served == expected  # keras epoch k == loader epoch k, batch for batch
    assert ld.epoch == 3 and kd.epochs_started == 3
    assert expected[0] != expected[1]  # each epoch its own order

    # keras' default shuffle=True only re-orders the batches: each is still served once per epoch
    ld2 = loaders.DatasetLoader(_dataset(), batch_size=6, shuffle=True, seed=3)
    h = _model().fit(ld2.to_keras(), epochs=2, verbose=0)
    assert len(h.history["loss"]) == 2 and ld2.epoch == 2


def test_to_keras_indexing_by_hand_and_channels():
    ld = loaders.DatasetLoader(_dataset(10), batch_size=4, shuffle=False, seed=0)
    kd = ld.to_keras(channels="first")
    assert kd.channel == "first"
    x, y = kd[0]
    assert x.shape == (4, 1, 8, 8) and x.flags["C_CONTIGUOUS"] and y.tolist() == [0, 1, 2, 3]
    assert kd[0][1].tolist() == [0, 1, 2, 3]  # asked again before the epoch begins: the same batch
    assert [kd[i][1].tolist() for i in (1, 2)] == [[4, 5, 6, 7], [8, 9]]
    with pytest.raises(IndexError, match="out of range for 3 batches"):
        kd[3]
    with pytest.raises(ValueError, match="channels must be 'first', 'last' or None"):
        ld.to_keras(channels="middle")
    from nitrain.loaders.keras import KerasLoader

    with pytest.raises(TypeError, match="needs a length"):
        KerasLoader(iter([]))


def test_to_keras_and_to_tensorflow_give_several_inputs_as_a_tuple():
    ld = loaders.DatasetLoader(_two_inputs(), batch_size=4, shuffle=True, seed=0)
    x, y = ld.to_keras()[0]
    assert isinstance(x, tuple) and len(x) == 2 and x[0].shape == (4, 8, 8, 1)
    model = _model(inputs=2)
    model.fit(ld.to_keras(), epochs=1, verbose=0)
    ds = ld.to_tensorflow()
    spec = tf.TensorSpec((None, 8, 8, 1), tf.float32)
    assert ds.element_spec == ((spec, spec), tf.TensorSpec((None,), tf.float32))
    model.fit(ds, epochs=1, verbose=0, shuffle=False)


def test_to_tensorflow_has_an_exact_signature_and_feeds_a_fit():
    ld = loaders.DatasetLoader(_dataset(10), batch_size=4, shuffle=True, seed=0)
    ds = ld.to_tensorflow()
    assert isinstance(ds, tf.data.Dataset)
    assert ds.element_spec == (
        tf.TensorSpec((None, 8, 8, 1), tf.float32),
        tf.TensorSpec((None,), tf.float32),
    )
    assert int(ds.cardinality()) == 3 and ld.epoch == 0  # the signature came from a peek
    ys = [y.numpy().tolist() for _, y in ds]
    assert [len(v) for v in ys] == [4, 4, 2]  # the short last batch fits the None batch axis
    ref = loaders.DatasetLoader(_dataset(10), batch_size=4, shuffle=True, seed=0)
    assert ys == [y.tolist() for _, y in ref]  # same seed, same batches
    model = _model()
    h = model.fit(ds, epochs=2, verbose=0, shuffle=False)
    assert len(h.history["loss"]) == 2 and model.optimizer.iterations.numpy() == 6
    chf = loaders.DatasetLoader(_dataset(10), batch_size=4).to_tensorflow(prefetch=2, channels="first")
    assert chf.element_spec[0] == tf.TensorSpec((None, 1, 8, 8), tf.float32)
    unprefetched = loaders.DatasetLoader(_dataset(10), batch_size=4).to_tensorflow(prefetch=None)
    assert len(list(unprefetched)) == 3
    with pytest.raises(ValueError, match="prefetch must be 'auto', an integer >= 0 or None"):
        ld.to_tensorflow(prefetch=-1)


def test_import_nitrain_imports_neither_tensorflow_nor_keras():
    code = (
        "import sys, nitrain, nitrain.loaders, nitrain.trainers, nitrain.utils\n"
        "for name in ('tensorflow', 'keras', 'torch'):\n"
        "    assert name not in sys.modules, name + ' was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_framework_modules_say_how_to_install_without_tensorflow():
    code = (
        "import sys\n"
        "sys.modules['keras'] = None\n"
        "sys.modules['tensorflow'] = None\n"
        "for mod in ('nitrain.keras', 'nitrain.tensorflow'):\n"
        "    try:\n"
        "        __import__(mod)\n"
        "    except ImportError as e:\n"
        "        assert \"pip install 'nitrain[tensorflow]'\" in str(e), str(e)\n"
        "    else:\n"
        "        raise SystemExit(mod + ': no ImportError')\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
