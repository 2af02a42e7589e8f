import gzip
import shutil

import numpy as np
import pytest

from nprnn_jax import datasets


def test_idx_reader_on_real_mnist(data_dir):
    images, labels = datasets.load_mnist_idx(data_dir / "mnist", "train")
    assert images.shape == (60000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (60000,) and labels.dtype == np.uint8
    counts = np.bincount(labels, minlength=10)
    assert counts[0] == 5923 and counts[9] == 5949 and counts.sum() == 60000
    np.testing.assert_array_equal(counts, [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949])
    test_images, test_labels = datasets.load_mnist_idx(data_dir / "mnist", "test")
    assert test_images.shape == (10000, 28, 28) and np.bincount(test_labels).sum() == 10000
    assert images.max() == 255 and images.min() == 0


@pytest.fixture
def mnist_copy(tmp_path, data_dir):
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                 "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        with gzip.open(data_dir / "mnist" / (name + ".gz")) as src, open(tmp_path / name, "wb") as dst:
            shutil.copyfileobj(src, dst)
    return tmp_path


def test_idx_truncated(mnist_copy):
    path = mnist_copy / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(datasets.DataError, match=r"t10k-images-idx3-ubyte: truncated IDX payload"):
        datasets.load_mnist_idx(mnist_copy, "test")


def test_idx_wrong_magic(mnist_copy):
    path = mnist_copy / "t10k-labels-idx1-ubyte"
    raw = bytearray(path.read_bytes())
    raw[0:4] = b"\x12\x34\x08\x01"
    path.write_bytes(bytes(raw))
    with pytest.raises(datasets.DataError, match=r"t10k-labels-idx1-ubyte: wrong magic number 0x12340801"):
        datasets.load_mnist_idx(mnist_copy, "test")


def test_idx_images_and_labels_swapped(mnist_copy):
    (mnist_copy / "t10k-labels-idx1-ubyte").write_bytes((mnist_copy / "t10k-images-idx3-ubyte").read_bytes())
    with pytest.raises(datasets.DataError, match="3 dimensions; expected 1"):
        datasets.load_mnist_idx(mnist_copy, "test")


def test_idx_corrupt_gzip(tmp_path, data_dir):
    raw = (data_dir / "mnist" / "t10k-labels-idx1-ubyte.gz").read_bytes()
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(raw[:200])
    with pytest.raises(datasets.DataError, match="corrupt gzip"):
        datasets.read_idx(tmp_path / "t10k-labels-idx1-ubyte.gz")


def test_missing_mnist_dir(tmp_path):
    with pytest.raises(datasets.DataError, match="not found"):
        datasets.load_mnist_idx(tmp_path / "nope", "train")


def test_mnist_through_tfds_mock_data(data_dir):
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=12, policy=tfds.testing.MockPolicy.USE_CODE):
        images, labels = datasets.load_mnist("/nonexistent", "test")
    assert images.shape == (12, 28, 28) and images.dtype == np.uint8 and labels.shape == (12,)
    # Without a prepared TFDS MNIST it falls back to the IDX files.
    images, _ = datasets.load_mnist(data_dir, "test", tfds_data_dir="/nonexistent-tfds")
    assert images.shape == (10000, 28, 28)


@pytest.mark.parametrize("name,shape_train,shape_test,classes", [
    ("BasicMotions", (40, 100, 6), (40, 100, 6), ["Standing", "Running", "Walking", "Badminton"]),
    ("GunPoint", (50, 150, 1), (150, 150, 1), ["1", "2"]),
    ("PickupGestureWiimoteZ", (50, 361, 1), (50, 324, 1), [str(i) for i in range(1, 11)]),
])
def test_ts_reader_on_real_uea(data_dir, name, shape_train, shape_test, classes):
    train, test = datasets.load_uea(data_dir / "uea", name)
    assert train.features.shape == shape_train and test.features.shape == shape_test
    assert train.class_names == classes and train.num_classes == len(classes)
    assert np.isfinite(train.features).all() and np.isfinite(test.features).all()
    assert np.bincount(train.labels).sum() == shape_train[0]
    if name == "PickupGestureWiimoteZ":
        assert train.lengths.min() == 29 and train.lengths.max() == 361
        assert len(set(train.lengths.tolist())) > 10
        # Zero padding after each length.
        for i in range(len(train.lengths)):
            assert not train.features[i, train.lengths[i]:].any()
    else:
        assert (train.lengths == shape_train[1]).all()


HEADER = "@problemName Toy\n@timeStamps false\n@univariate true\n@equalLength false\n@classLabel true a b\n@data\n"


def write(tmp_path, text):
    path = tmp_path / "toy.ts"
    path.write_text(text)
    return path


def test_ts_missing_values(tmp_path):
    path = write(tmp_path, HEADER + "1,2,NaN,4,NaN,NaN:a\n?,5,6:b\n")
    data = datasets.read_ts(path)
    np.testing.assert_array_equal(data.lengths, [4, 3])
    np.testing.assert_array_equal(data.features[0, :, 0], [1, 2, 2, 4])
    np.testing.assert_array_equal(data.features[1, :, 0], [5, 5, 6, 0])


@pytest.mark.parametrize("text,message", [
    ("@timeStamps false\n@classLabel true a b\n@data\n1,2:a\n", "lacks @problemName"),
    ("@problemName T\n@classLabel false\n@data\n1,2:a\n", "@classLabel true"),
    ("@problemName T\n@classLabel true a b\n@seriesLength x\n@data\n1,2:a\n", "@serieslength must be a positive integer"),
    ("@problemName T\n@classLabel true a b\n1,2:a\n", "expected a header line"),
    ("@problemName T\n@classLabel true a b\n", "no @data line"),
    (HEADER + "1,2:c\n", "class label 'c' not in"),
    ("@problemName T\n@classLabel true a b\n@data\n1,2:3,4:a\n", None),
    ("@problemName T\n@dimensions 2\n@classLabel true a b\n@data\n1,2:3,4:a\n1,2:a\n", "1 dimensions; @dimensions says 2"),
    ("@problemName T\n@dimensions 2\n@classLabel true a b\n@data\n1,2:3:a\n", "inconsistent lengths across dimensions"),
    ("@problemName T\n@seriesLength 3\n@classLabel true a b\n@data\n1,2,3:a\n1,2:b\n", "length 2; @seriesLength says 3"),
    ("@problemName T\n@equalLength true\n@classLabel true a b\n@data\n1,2,3:a\n1,2:b\n", "@equalLength true but lengths"),
    (HEADER + "1,x:a\n", "not a number"),
    # files that only look like data: a phantom class, numbers float() reads but a .ts file never holds
    ("@problemName T\n@classLabel true a b a\n@data\n1,2:a\n1,2:b\n", "@classLabel lists 'a' twice"),
    (HEADER + "1_000,2:a\n", "value '1_000' is not a number .a plain decimal"),
    (HEADER + "\uff11,2:a\n", "value '\uff11' is not a number .a plain decimal"),
    ("@problemName T\n@classLabel true a b\n@seriesLength \uff13\n@data\n1,2:a\n", "@serieslength must be a positive"),
])
def test_ts_malformed(tmp_path, text, message):
    path = write(tmp_path, text)
    if message is None:  # a valid 2-dimensional case
        assert datasets.read_ts(path).features.shape == (1, 2, 2)
        return
    with pytest.raises(datasets.DataError, match=message):
        datasets.read_ts(path)


def test_a_gzip_idx_file_with_trailing_garbage_is_refused(tmp_path, data_dir):
    raw = (data_dir / "mnist" / "t10k-labels-idx1-ubyte.gz").read_bytes()
    (tmp_path / "labels.gz").write_bytes(raw + b"garbage")
    with pytest.raises(datasets.DataError, match=r"labels.gz: 7 bytes of trailing data after the gzip stream"):
        datasets.read_idx(tmp_path / "labels.gz", expected_ndim=1)
    (tmp_path / "whole.gz").write_bytes(raw)
    assert datasets.read_idx(tmp_path / "whole.gz", expected_ndim=1).shape == (10_000,)


def test_npz_loader(tmp_path):
    features = np.random.default_rng(0).normal(size=(6, 5, 3)).astype(np.float32)
    np.savez(tmp_path / "f.npz", features=features, labels=np.array([0, 1, 2, 0, 1, 2]),
             lengths=np.array([5, 4, 3, 2, 1, 5]))
    data = datasets.load_npz(tmp_path / "f.npz")
    assert data.num_classes == 3 and data.features.shape == (6, 5, 3)
    np.savez(tmp_path / "bad.npz", features=features, labels=np.zeros(6), lengths=np.full(6, 9))
    with pytest.raises(datasets.DataError, match=r"lengths must be \[N\] in 1..5"):
        datasets.load_npz(tmp_path / "bad.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(datasets.DataError, match="not a readable .npz"):
        datasets.load_npz(tmp_path / "junk.npz")


def test_ts_leading_gap_in_one_channel_keeps_the_other_channels_values(tmp_path):
    # step 0 misses channel 0 only: channel 0 takes its first value (1), channel 1 keeps its 5
    # (it used to be overwritten by step 1's 6); an interior gap repeats its own channel's value.
    header = HEADER.replace("@univariate true", "@univariate false\n@dimensions 2")
    path = write(tmp_path, header + "?,1,2,3:5,6,?,8:a\n1,2:3,4:b\n")
    data = datasets.read_ts(path)
    np.testing.assert_array_equal(data.lengths, [4, 2])
    np.testing.assert_array_equal(data.features[0], [[1, 5], [1, 6], [2, 6], [3, 8]])


def test_looking_for_a_tfds_mnist_logs_no_warnings(data_dir, tmp_path):
    import logging

    messages = []

    class Collect(logging.Handler):
        def emit(self, record):
            if record.levelno >= logging.WARNING:
                messages.append(record.getMessage())

    handler = Collect()
    logging.getLogger().addHandler(handler)
    try:
        images, _ = datasets.load_mnist(data_dir, "test", tfds_data_dir=str(tmp_path))
    finally:
        logging.getLogger().removeHandler(handler)
    assert images.shape == (10000, 28, 28)
    assert messages == []  # TFDS used to warn "Variant folder .../mnist/3.0.1 has no dataset_info.json"


@pytest.mark.parametrize("value", ["1e300", "inf", "-inf", "3e38"])
def test_ts_values_beyond_the_range_are_errors_not_missing(tmp_path, value):
    path = write(tmp_path, HEADER + f"1,2,{value},4:a\n1,2:b\n")
    with pytest.raises(datasets.DataError, match=f"value '{value}' is not a finite number of magnitude <= 1e\\+30"):
        datasets.read_ts(path)


def _idx(path, type_code, dims, payload: bytes):
    import struct
    path.write_bytes(bytes([0, 0, type_code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims) + payload)


def test_idx_labels_must_be_0_to_9_and_pixels_uint8(tmp_path, data_dir):
    import gzip
    import shutil
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        shutil.copy(data_dir / "mnist" / name, tmp_path / name)
    labels = np.frombuffer(gzip.decompress((tmp_path / "t10k-labels-idx1-ubyte.gz").read_bytes())[8:], np.uint8)
    signed = labels.astype(np.int8).copy()
    signed[5] = -1
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    _idx(tmp_path / "t10k-labels-idx1-ubyte", 0x09, (10000,), signed.tobytes())
    with pytest.raises(datasets.DataError, match="label -1 outside 0..9"):
        datasets.load_mnist_idx(tmp_path, "test")
    _idx(tmp_path / "t10k-labels-idx1-ubyte", 0x08, (10000,), labels.tobytes())
    (tmp_path / "t10k-images-idx3-ubyte.gz").unlink()
    _idx(tmp_path / "t10k-images-idx3-ubyte", 0x0D, (10000, 28, 28), np.full(10000 * 784, 1e30, ">f4").tobytes())
    with pytest.raises(datasets.DataError, match="MNIST pixels are uint8 .IDX type 0x08.; got float32"):
        datasets.load_mnist_idx(tmp_path, "test")


@pytest.mark.parametrize("change,message", [
    (lambda a: dict(a, labels=a["labels"] + 0.5), "labels must be integers; got dtype float64"),
    (lambda a: dict(a, lengths=np.full(6, 2.5)), "lengths must be integers"),
    (lambda a: dict(a, features=a["features"] * 1j), "features must be real numbers; got dtype complex128"),
    (lambda a: dict(a, labels=np.zeros(6, int)), "one class only"),
    (lambda a: dict(a, features=np.where(a["features"] > 0, 1e31, a["features"])), "magnitude <= 1e\\+30"),
])
def test_npz_values_are_checked(tmp_path, change, message):
    arrays = {"features": np.random.default_rng(0).normal(size=(6, 4, 2)), "labels": np.array([0, 1, 0, 1, 1, 0])}
    np.savez(tmp_path / "x.npz", **change(arrays))
    with pytest.raises(datasets.DataError, match=message):
        datasets.load_npz(tmp_path / "x.npz")


def test_npz_integral_float_labels_are_read_and_corrupt_files_refused(tmp_path):
    np.savez(tmp_path / "x.npz", features=np.zeros((2, 3, 1)), labels=np.array([0.0, 1.0]))
    assert datasets.load_npz(tmp_path / "x.npz").labels.tolist() == [0, 1]
    raw = (tmp_path / "x.npz").read_bytes()
    (tmp_path / "x.npz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(datasets.DataError, match="not a readable .npz"):
        datasets.load_npz(tmp_path / "x.npz")
    (tmp_path / "x.npz").write_bytes(b"")
    with pytest.raises(datasets.DataError, match="not a readable .npz"):
        datasets.load_npz(tmp_path / "x.npz")


def test_hold_out_is_stratified_disjoint_and_keeps_every_class():
    from nprnn_jax import tasks

    labels = np.array([0] * 6 + [1] * 3 + [2] * 3)  # shares 1/2, 1/4, 1/4
    train = {"xs": np.arange(12)[:, None, None].astype(np.float32), "ys": labels}
    kept, held = tasks.hold_out(train, 4, stratified=True)
    assert np.bincount(held["ys"]).tolist() == [2, 1, 1]  # 4 x (1/2, 1/4, 1/4)
    assert np.bincount(kept["ys"]).tolist() == [4, 2, 2]
    assert sorted(kept["xs"].ravel().tolist() + held["xs"].ravel().tolist()) == list(range(12))  # disjoint, complete
    last, tail = tasks.hold_out(train, 2, stratified=False)  # MNIST's rule: the last examples
    assert tail["xs"].ravel().tolist() == [10, 11] and len(last["ys"]) == 10
    assert tasks.hold_out(train, 0, stratified=True) == (train, None)
    with pytest.raises(ValueError, match="validation_size=12: must be below the 12 training examples"):
        tasks.hold_out(train, 12, stratified=True)
    with pytest.raises(ValueError, match=r"class\(es\) \[2\] would have no training example left"):
        tasks.hold_out({"xs": train["xs"], "ys": np.array([0] * 9 + [2] * 3)}, 3, stratified=False)


def test_the_validation_sets_are_apart_from_training_and_test():
    from nprnn_jax import tasks

    task = tasks.AdditionTask(seq_len=10, test_size=64)
    test, validation = task.test_set(), task.validation_set()
    assert validation["xs"].shape == test["xs"].shape
    assert not np.allclose(np.asarray(validation["xs"]), np.asarray(test["xs"]))
    np.testing.assert_array_equal(np.asarray(task.validation_set()["xs"]), np.asarray(validation["xs"]))  # fixed
    images = np.arange(20 * 784, dtype=np.int64).reshape(20, 28, 28) % 251
    labels = np.arange(20) % 10
    mnist = tasks.mnist_task(images.astype(np.uint8), labels, images[:5].astype(np.uint8), labels[:5],
                             validation_size=10)
    assert mnist.num_train == 10 and mnist.describe()["num_validation"] == 10
    held = mnist.validation_set()
    assert held["ys"].tolist() == labels[10:].tolist()  # the last ones
    assert tasks.mnist_task(images.astype(np.uint8), labels, images[:5].astype(np.uint8), labels[:5]) \
        .validation_set() is None


def test_first10_marker_placement_is_hochreiter_and_schmidhubers():
    from nprnn_jax import tasks

    task = tasks.AdditionTask(seq_len=40, marker_placement="first10", test_size=4000)
    batch = task.test_set()
    markers = np.asarray(batch["xs"][..., 1])
    positions = np.array([np.nonzero(row)[0] for row in markers])  # two marks per sequence, sorted
    assert positions.shape == (4000, 2)
    first_draw = np.where(positions[:, 0] < 10, positions[:, 0], -1)
    assert (first_draw >= 0).all() and positions.max() < 20  # one in the first 10 steps, both in the first half
    counts = np.bincount(positions.ravel(), minlength=20)
    assert counts[:10].min() > counts[10:].max()  # steps 0-9 carry both draws, 10-19 only the second
    values = np.asarray(batch["xs"][..., 0])
    np.testing.assert_allclose(np.asarray(batch["ys"][:, 0]), values[np.arange(4000), positions[:, 0]]
                               + values[np.arange(4000), positions[:, 1]], rtol=1e-6)
    with pytest.raises(ValueError, match="first10' needs seq_len >= 4"):
        tasks.AdditionTask(seq_len=3, marker_placement="first10")


def test_standardized_pixels_have_the_training_pools_mean_0_and_std_1():
    from nprnn_jax import tasks

    rng = np.random.default_rng(0)
    images = np.where(rng.random((30, 28, 28)) < 0.2, rng.integers(1, 256, (30, 28, 28)), 0).astype(np.uint8)
    labels = np.arange(30) % 10
    task = tasks.mnist_task(images, labels, images[:6], labels[:6], validation_size=10, pixels="standardized")
    pool = images[:20].astype(np.float64) / 255.0  # the 20 training images (the last 10 are validation)
    mean, std = pool.mean(), pool.std()
    assert task.describe()["pixel_mean"] == pytest.approx(mean) and task.describe()["pixel_std"] == pytest.approx(std)
    test = np.asarray(task.test_set()["xs"])[..., 0]
    np.testing.assert_allclose(test, (images[:6].reshape(6, 784) / 255.0 - mean) / std, rtol=1e-5, atol=1e-5)
    assert test.min() == pytest.approx(-mean / std, rel=1e-5)  # the background
    batch = task.take(task.train_data(), np.arange(20))
    assert float(np.mean(batch["xs"])) == pytest.approx(0.0, abs=1e-5)
    assert float(np.std(batch["xs"])) == pytest.approx(1.0, abs=1e-4)
    # the default is untouched: x / 255, the background exactly 0
    unit = tasks.mnist_task(images, labels, images[:6], labels[:6])
    np.testing.assert_array_equal(np.asarray(unit.test_set()["xs"])[..., 0],
                                  (images[:6].reshape(6, 784).astype(np.float32) * np.float32(1 / 255)))
    assert "pixels" not in unit.describe()
    with pytest.raises(ValueError, match="pixels='raw': one of unit, standardized"):
        tasks.mnist_task(images, labels, images[:6], labels[:6], pixels="raw")
