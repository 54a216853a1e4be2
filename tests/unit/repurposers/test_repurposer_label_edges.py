"""Repurposers on the label and input edge cases of issue 13: zero samples, y=None, labels
that mix str and int, and object-dtype string labels (a pandas column) through save/load,
for the feature repurposers and the fine-tuning ones."""
import numpy as np
import pytest

import repurpose
from repurpose import (BnnRepurposer, FineTuneRepurposer, GpRepurposer, LogisticRepurposer,
                       RandomFreezeRepurposer, SourceModel, SvmRepurposer)
from repurpose.data import load_digits_images
from repurpose.exceptions import DataError

LAYERS = ("fc1_relu_fwd",)


@pytest.fixture(scope="module")
def source():
    return SourceModel.from_zoo("digits_cnn")


@pytest.fixture(scope="module")
def data():
    X, y = load_digits_images(classes=range(5, 10))
    return X[:60], y[:60]


def _makers(source):
    return {
        "logistic": lambda: LogisticRepurposer(source, layers=LAYERS),
        "svm": lambda: SvmRepurposer(source, layers=LAYERS, random_state=0),
        "gp": lambda: GpRepurposer(source, layers=LAYERS, n_inducing=10, max_iter=100,
                                   random_state=0),
        "bnn": lambda: BnnRepurposer(source, layers=LAYERS, n_epochs=2, random_state=0),
        "finetune": lambda: FineTuneRepurposer(source, n_epochs=1, validation_fraction=0.0,
                                               early_stopping=False, random_state=0),
        "random_freeze": lambda: RandomFreezeRepurposer(source, n_epochs=1,
                                                        validation_fraction=0.0,
                                                        early_stopping=False, random_state=0),
    }


KINDS = ["logistic", "svm", "gp", "bnn", "finetune", "random_freeze"]


@pytest.fixture(scope="module")
def fitted(source, data):
    X, y = data
    names = np.array(["cat", "dog", "eel", "fox", "gnu"], dtype=object)[y - 5]  # pandas-like
    return {kind: make().fit(X, names) for kind, make in _makers(source).items()}


@pytest.mark.parametrize("kind", KINDS)
def test_predict_on_zero_samples_gives_empty_results(kind, fitted, data):
    X, _ = data
    model = fitted[kind]
    assert model.predict_proba(X[:0]).shape == (0, 5)
    labels = model.predict(X[:0])
    assert labels.shape == (0,) and labels.dtype == model.classes_.dtype
    with pytest.raises(DataError, match=r"\(1, 4, 4\)"):
        model.predict(np.zeros((0, 1, 4, 4), dtype=np.float32))  # the shape still counts


@pytest.mark.parametrize("kind", KINDS)
def test_fit_on_zero_samples_is_a_clear_error(kind, source, data):
    X, y = data
    with pytest.raises(DataError, match="empty|0 samples"):
        _makers(source)[kind]().fit(X[:0], y[:0])


@pytest.mark.parametrize("kind", KINDS)
def test_fit_without_y_is_a_clear_error(kind, source, data):
    X, _ = data
    with pytest.raises(DataError, match=r"^y is required: \w+Repurposer\.fit learns from "
                                        r"labels"):
        _makers(source)[kind]().fit(X, None)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("as_objects", [False, True], ids=["list", "object-array"])
def test_labels_mixing_str_and_int_are_an_error(kind, as_objects, source, data):
    X, _ = data
    labels = [1, "a", 2] * 20
    if as_objects:
        labels = np.array(labels, dtype=object)
    with pytest.raises(DataError, match=r"y mixes label types int \(40 labels, e\.g\. 1\) "
                                        r"and str \(20 labels, e\.g\. 'a'\).*one type"):
        _makers(source)[kind]().fit(X, labels)


@pytest.mark.parametrize("kind", KINDS)
def test_object_string_labels_save_load_round_trip(kind, fitted, data, tmp_path):
    X, y = data
    model = fitted[kind]
    assert model.classes_.dtype.kind == "U"
    model.save(str(tmp_path / kind))  # raised "needs pickle" for the feature repurposers
    loaded = repurpose.load(str(tmp_path / kind))
    predicted = loaded.predict(X)
    assert predicted.dtype.kind == "U"
    np.testing.assert_array_equal(predicted, model.predict(X))
    np.testing.assert_allclose(loaded.predict_proba(X), model.predict_proba(X), rtol=1e-6)


@pytest.mark.parametrize("kind", ["logistic", "finetune"])
def test_score_with_labels_of_another_type_is_a_clear_error(kind, fitted, data):
    X, y = data
    with pytest.raises(DataError, match="never saw in fit"):
        fitted[kind].score(X, y)  # int labels for a model fitted on str labels


def test_validation_labels_of_another_type_are_a_clear_error(source, data):
    X, y = data
    with pytest.raises(DataError, match="y_val holds label"):
        FineTuneRepurposer(source, n_epochs=1, random_state=0).fit(
            X[:40], y[:40].astype(str), X_val=X[40:], y_val=y[40:])
    with pytest.raises(DataError, match=r"y_val mixes label types"):
        FineTuneRepurposer(source, n_epochs=1, random_state=0).fit(
            X[:40], y[:40], X_val=X[40:43], y_val=[5, "6", 7])
