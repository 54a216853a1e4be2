"""Damaged image files (truncated, undecodable), images of different sizes and mean/std of
the wrong length: errors naming the file or parameter, or (on_damaged='skip') a warning
and a record, never silent pixels."""
import logging
import pickle

import numpy as np
import pytest

from repurpose.data import ON_DAMAGED, ImageFiles, ImageFolder, as_batch_stream
from repurpose.exceptions import DataError, InvalidParameterError


def _image(path, size=(10, 12), seed=0):
    from PIL import Image

    pixels = np.random.RandomState(seed).randint(0, 255, size=size + (3,), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def _cut(path, fraction=1 / 3):
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * fraction)])
    return path


def _folder(root, ext="jpg", per_class=3):
    for c, cls in enumerate(("a", "b")):
        (root / cls).mkdir(parents=True)
        for i in range(per_class):
            _image(root / cls / f"{i}.{ext}", seed=10 * c + i)
    return root


@pytest.mark.parametrize("ext", ["jpg", "png"])
def test_truncated_image_in_folder_is_an_error_naming_it(tmp_path, ext):
    root = _folder(tmp_path / "images", ext)
    _cut(root / "b" / f"1.{ext}")
    with pytest.raises(DataError, match=rf"damaged.*b[/\\]1\.{ext}.*truncated.*on_damaged="
                                        rf"'skip'"):
        ImageFolder(root)
    with pytest.raises(DataError, match=rf"1\.{ext}"):
        ImageFiles([root / "a" / f"0.{ext}", root / "b" / f"1.{ext}"])


@pytest.mark.parametrize("ext", ["jpg", "png", "bmp"])
def test_truncation_is_found_when_pillow_is_told_to_fill_it(tmp_path, monkeypatch, ext):
    # gluoncv sets this Pillow flag when imported; Pillow then decodes truncated files
    # without a word.
    from PIL import ImageFile

    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    whole = _image(tmp_path / f"whole.{ext}")
    cut = _cut(_image(tmp_path / f"cut.{ext}", seed=1), 0.9)
    files = ImageFiles([whole, cut], on_damaged="skip")
    assert files.paths == [str(whole)] and "truncated" in files.skipped[str(cut)]


def test_file_that_is_no_image_is_an_error_naming_it(tmp_path):
    root = _folder(tmp_path / "images")
    (root / "a" / "junk.jpg").write_bytes(b"not an image at all")
    (root / "a" / "empty.png").write_bytes(b"")
    with pytest.raises(DataError, match=r"2 of the 8 image files.*empty\.png.*junk\.jpg"):
        ImageFolder(root)


def test_whole_images_with_trailing_bytes_are_not_damaged(tmp_path):
    root = _folder(tmp_path / "images")
    path = root / "a" / "0.jpg"
    path.write_bytes(path.read_bytes() + b"\x00" * 7 + b"trailing metadata")
    folder = ImageFolder(root)
    assert len(folder) == 6 and folder.skipped == {}
    assert folder.to_arrays()[0].shape == (6, 3, 10, 12)


@pytest.mark.parametrize("ext", ["jpg", "png"])
def test_large_files_checked_by_their_end_first(tmp_path, ext):
    from repurpose.data._integrity import WALK_LIMIT

    whole = _image(tmp_path / f"whole.{ext}", size=(400, 400))
    assert whole.stat().st_size > WALK_LIMIT
    video = tmp_path / f"motion_photo.{ext}"  # a phone's JPEG with a video after its end
    video.write_bytes(whole.read_bytes() + np.random.RandomState(0).bytes(WALK_LIMIT))
    cut = tmp_path / f"cut.{ext}"
    cut.write_bytes(whole.read_bytes()[:int(whole.stat().st_size * 0.9)])
    files = ImageFiles([whole, video, cut], on_damaged="skip")
    assert files.paths == [str(whole), str(video)] and list(files.skipped) == [str(cut)]
    assert files.to_array().shape == (2, 3, 400, 400)


def test_skip_leaves_damaged_files_out_with_a_warning_and_a_record(tmp_path, caplog):
    root = _folder(tmp_path / "images")
    bad = str(_cut(root / "b" / "1.jpg"))
    junk = root / "a" / "junk.png"
    junk.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with caplog.at_level(logging.WARNING, logger="repurpose.data"):
        folder = ImageFolder(root, on_damaged="skip")
    assert len(folder) == 6 - 1 and bad not in folder.paths
    assert sorted(folder.skipped) == sorted([bad, str(junk)])
    assert "truncated" in folder.skipped[bad]
    warned = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert bad in warned and str(junk) in warned
    X, y = folder.to_arrays()
    assert X.shape == (5, 3, 10, 12) and list(y) == ["a", "a", "a", "b", "b"]
    np.testing.assert_array_equal(folder.targets, [0, 0, 0, 1, 1])
    # The record travels with copies (shards, worker processes).
    assert pickle.loads(pickle.dumps(folder)).skipped == folder.skipped
    files = ImageFiles([root / "a" / "0.jpg", bad], labels=[0, 1], on_damaged="skip")
    assert files.paths == [str(root / "a" / "0.jpg")] and list(files.skipped) == [bad]


def test_skip_with_every_file_damaged_is_an_error(tmp_path):
    paths = [_cut(_image(tmp_path / "x.jpg")), tmp_path / "y.png"]
    paths[1].write_bytes(b"")
    with pytest.raises(DataError, match=r"All 2 image files are damaged: .*x\.jpg' \(it is "
                                        r"truncated.*y\.png' \(the file is empty\)"):
        ImageFiles(paths, on_damaged="skip")
    with pytest.raises(DataError, match=r"The one image file is damaged"):
        ImageFiles(paths[:1], on_damaged="skip")


@pytest.mark.parametrize("value", ["ignore", None, True])
def test_on_damaged_checked(tmp_path, value):
    _folder(tmp_path / "images")
    with pytest.raises(InvalidParameterError, match="on_damaged must be one of"):
        ImageFolder(tmp_path / "images", on_damaged=value)
    assert ON_DAMAGED == ("error", "skip")


def test_image_damaged_after_listing_is_an_error_when_read(tmp_path):
    root = _folder(tmp_path / "images", "png")
    folder = ImageFolder(root)
    _cut(root / "b" / "2.png")
    with pytest.raises(DataError, match=r"b[/\\]2\.png.*\(item 5\).*truncated"):
        folder.to_arrays()
    with pytest.raises(DataError, match=r"b[/\\]2\.png"):
        list(as_batch_stream(folder, batch_size=4))


def test_pixels_are_those_of_the_decoder(tmp_path):
    import mxnet as mx

    path = _image(tmp_path / "x.jpg")
    image = ImageFiles([path])[0][0]
    expected = mx.image.imread(str(path)).asnumpy().transpose(2, 0, 1) / 255.0
    np.testing.assert_allclose(image, expected, atol=1e-6)


# ---------------------------------------------------------------- images of different sizes
def test_images_of_different_sizes_name_both_files_in_a_stream(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    _image(tmp_path / "a" / "small.png", size=(10, 12))
    _image(tmp_path / "b" / "large.png", size=(16, 16))
    folder = ImageFolder(tmp_path)
    for read in (lambda: list(as_batch_stream(folder, batch_size=4)),
                 lambda: list(as_batch_stream(folder, batch_size=1)),
                 folder.to_arrays):
        with pytest.raises(DataError, match=r"large\.png' has shape \(3, 16, 16\).*small\.png' "
                                            r"has \(3, 10, 12\).*resize.*crop"):
            read()
    stream = as_batch_stream(ImageFolder(tmp_path, resize=(8, 8)), batch_size=1)
    assert [b.shape for _, b in stream] == [(1, 3, 8, 8)] * 2
    assert stream.n_samples == 2 and stream.n_batches == 2


# ---------------------------------------------------------------- mean / std length
@pytest.mark.parametrize("grayscale, values, match", [
    (True, 3, r"mean has 3 values, but grayscale images have 1 channel.*1 value"),
    (False, 2, r"mean has 2 values, but RGB images \(grayscale=False\) have 3 channels.*3 "
               r"values"),
    (False, 4, r"mean has 4 values"),
])
def test_mean_std_of_the_wrong_length_error_at_construction(tmp_path, grayscale, values,
                                                             match):
    root = _folder(tmp_path / "images", "png")
    with pytest.raises(InvalidParameterError, match=match):
        ImageFolder(root, grayscale=grayscale, mean=(0.5,) * values, std=(0.2,) * values)
    with pytest.raises(InvalidParameterError, match=r"std has 2 values"):
        ImageFiles([root / "a" / "0.png"], grayscale=grayscale, mean=(0.5,) * (1 + 2 * (
            not grayscale)), std=(0.2, 0.2))


@pytest.mark.parametrize("grayscale, values", [(True, 1), (False, 1), (False, 3)])
def test_mean_std_of_one_value_or_one_per_channel(tmp_path, grayscale, values):
    root = _folder(tmp_path / "images", "png")
    folder = ImageFolder(root, grayscale=grayscale, mean=(0.5,) * values, std=(0.25,) * values)
    image = folder[0][0]
    assert image.shape == ((1,) if grayscale else (3,)) + (10, 12)
    assert image.min() >= -2.0 - 1e-6 and image.max() <= 2.0 + 1e-6
    scalar = ImageFolder(root, grayscale=grayscale, mean=0.5, std=0.25)
    np.testing.assert_array_equal(scalar[0][0], image)


# ---------------------------------------------------------------- a job's data section
def _job_data(root, **data):
    from repurpose.jobs import config_from_dict

    return config_from_dict({"source": {"model": "digits_cnn"},
                             "data": dict({"train": str(root), "resize": [8, 8]}, **data),
                             "run": {"output_dir": str(root.parent / "out")}}).data


def test_job_with_a_truncated_image_stops_naming_it(tmp_path):
    from repurpose.jobs import load_job_data

    root = _folder(tmp_path / "images")
    _cut(root / "a" / "2.jpg")
    with pytest.raises(DataError, match=r"a[/\\]2\.jpg.*data\.on_damaged: skip"):
        load_job_data(_job_data(root))


def test_job_data_records_what_was_skipped(tmp_path):
    from repurpose.jobs import check_splits, load_job_data

    root = _folder(tmp_path / "images")
    bad = str(_cut(root / "a" / "2.jpg"))
    data = _job_data(root)
    data.on_damaged = "skip"  # what the job file's data.on_damaged gives
    loaded = load_job_data(data)
    check_splits(loaded)
    assert sorted(loaded) == ["test", "train", "validation"]
    assert loaded["train"][0].shape == (5, 3, 8, 8) and list(loaded.skipped) == [bad]
