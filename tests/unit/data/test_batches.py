import mxnet as mx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from repurpose.data import (ImageFolder, as_batch_stream, load_digits_images,
                            load_shifted_digits_images)
from repurpose.exceptions import DataError, InvalidParameterError


def _collect(stream):
    return np.concatenate([b for _, b in stream])


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 40), st.integers(1, 16))
def test_array_batches_cover_input_in_order(n, batch_size):
    X = np.arange(n * 4, dtype=np.float64).reshape(n, 1, 2, 2)
    stream = as_batch_stream(X, batch_size)
    starts = [s for s, _ in stream]
    assert starts == list(range(0, n, batch_size))
    out = _collect(stream)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, X.astype(np.float32))
    assert stream.n_samples == n


def test_dataiter_padding_removed():
    X = np.random.RandomState(0).rand(23, 1, 2, 2).astype(np.float32)
    it = mx.io.NDArrayIter(X, batch_size=10, last_batch_handle="pad")
    np.testing.assert_array_equal(_collect(as_batch_stream(it)), X)
    # A second pass resets the iterator.
    np.testing.assert_array_equal(_collect(as_batch_stream(it)), X)


def test_dataset_and_loader_give_data_not_labels():
    X = np.random.RandomState(1).rand(11, 3).astype(np.float32)
    ds = mx.gluon.data.ArrayDataset(X, np.arange(11))
    np.testing.assert_array_equal(_collect(as_batch_stream(ds, 4)), X)
    loader = mx.gluon.data.DataLoader(ds, batch_size=5)
    stream = as_batch_stream(loader)
    np.testing.assert_array_equal(_collect(stream), X)
    assert stream.n_samples == 11 and stream.n_batches == 3


@pytest.mark.parametrize("data, error, match", [
    (np.zeros((0, 1, 8, 8)), DataError, "empty"),
    (np.array(["a", "b"]).reshape(2, 1), DataError, "dtype <U1"),
    (np.zeros(5), DataError, "sample axis first"),
    ({"x": 1}, TypeError, "type dict; expected a numpy array"),
    (mx.gluon.data.ArrayDataset(np.zeros((0, 2))), DataError, "empty dataset"),
])
def test_bad_data_error(data, error, match):
    with pytest.raises(error, match=match):
        stream = as_batch_stream(data, 4)
        stream.peek()


def test_nan_in_array_caught_before_iteration():
    X = np.zeros((6, 2), dtype=np.float32)
    X[4, 0] = np.nan
    with pytest.raises(DataError, match="NaN values in 1 sample"):
        as_batch_stream(X, 2)


def test_inf_in_stream_names_the_batch():
    X = np.zeros((6, 2), dtype=np.float32)
    X[5, 1] = np.inf
    it = mx.io.NDArrayIter(X, batch_size=2)
    with pytest.raises(DataError, match=r"data\[4:6\] contains inf"):
        _collect(as_batch_stream(it))


def test_varying_sample_shapes_error():
    samples = [np.zeros(3, np.float32), np.zeros(4, np.float32)]
    dataset = mx.gluon.data.SimpleDataset(samples)
    with pytest.raises(DataError, match="samples of shape \\(4,\\), but earlier samples had "
                                        "\\(3,\\)"):
        _collect(as_batch_stream(dataset, batch_size=1))


def test_batch_size_checked():
    with pytest.raises(InvalidParameterError, match="batch_size must be an integer >= 1"):
        as_batch_stream(np.zeros((2, 2)), 0)


def _write_images(root, classes=("a", "b"), size=(10, 12), per_class=3):
    from PIL import Image

    rng = np.random.RandomState(0)
    for cls in classes:
        (root / cls).mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.randint(0, 255, size=size + (3,), dtype=np.uint8)
            Image.fromarray(pixels).save(root / cls / f"{i}.png")
    (root / "a" / "notes.txt").write_text("not an image")


def test_image_folder_transforms(tmp_path):
    _write_images(tmp_path)
    folder = ImageFolder(tmp_path, resize=9, crop=8, mean=(0.5, 0.5, 0.5),
                         std=(0.25, 0.25, 0.25))
    assert folder.classes == ["a", "b"] and len(folder) == 6
    np.testing.assert_array_equal(folder.targets, [0, 0, 0, 1, 1, 1])
    image, label = folder[4]
    assert image.shape == (3, 8, 8) and image.dtype == np.float32 and label == 1
    assert image.min() >= -2.0 - 1e-6 and image.max() <= 2.0 + 1e-6
    batches = _collect(as_batch_stream(folder, 4))
    assert batches.shape == (6, 3, 8, 8)
    gray = ImageFolder(tmp_path, grayscale=True)
    assert gray[0][0].shape == (1, 10, 12)


@pytest.mark.parametrize("setup, match", [
    (lambda root: None, "does not exist"),
    (lambda root: root.mkdir(), "has no class sub-folders"),
    (lambda root: (root / "cls").mkdir(parents=True), "no image files"),
    (lambda root: root.write_text("x"), "is a file"),
])
def test_image_folder_error(tmp_path, setup, match):
    root = tmp_path / "images"
    setup(root)
    with pytest.raises(DataError, match=match):
        ImageFolder(root)


def test_image_folder_transform_params_error(tmp_path):
    _write_images(tmp_path)
    with pytest.raises(InvalidParameterError, match="both mean and std"):
        ImageFolder(tmp_path, mean=(0.5,))
    with pytest.raises(InvalidParameterError, match="resize must be an int"):
        ImageFolder(tmp_path, resize="big")


def test_digits_images():
    X, y = load_digits_images(classes=range(5, 10))
    assert X.shape[1:] == (1, 8, 8) and X.dtype == np.float32
    assert set(y) == {5, 6, 7, 8, 9} and 0 <= X.min() and X.max() <= 1
    with pytest.raises(InvalidParameterError, match="digits 0-9"):
        load_digits_images(classes=[11])


def test_shifted_digits_move_each_image_by_its_offset():
    X, y = load_digits_images(classes=[5, 6])
    S, y2 = load_shifted_digits_images(classes=[5, 6], max_shift=1, random_state=3)
    np.testing.assert_array_equal(y, y2)
    assert S.shape == X.shape and S.dtype == np.float32
    rng = np.random.RandomState(3)
    offsets = rng.randint(-1, 2, size=(len(X), 2))
    for i in range(0, len(X), 37):
        dy, dx = offsets[i]
        expected = np.zeros((8, 8), np.float32)
        src = X[i, 0, max(0, -dy):8 - max(0, dy), max(0, -dx):8 - max(0, dx)]
        expected[max(0, dy):max(0, dy) + src.shape[0], max(0, dx):max(0, dx) + src.shape[1]] = src
        np.testing.assert_array_equal(S[i, 0], expected)
    same, _ = load_shifted_digits_images(classes=[5, 6], max_shift=1, random_state=3)
    np.testing.assert_array_equal(same, S)
    noisy, _ = load_shifted_digits_images(classes=[5, 6], noise=0.1, random_state=3)
    assert noisy.min() >= 0 and noisy.max() <= 1 and not np.array_equal(noisy, S)


@pytest.mark.parametrize("kwargs, match", [({"max_shift": 4}, "max_shift must be"),
                                           ({"max_shift": 1.5}, "max_shift must be"),
                                           ({"noise": -1.0}, "noise must be"),
                                           ({"noise": float("inf")}, "noise must be")])
def test_shifted_digits_bad_parameters_error(kwargs, match):
    with pytest.raises(InvalidParameterError, match=match):
        load_shifted_digits_images(**kwargs)
