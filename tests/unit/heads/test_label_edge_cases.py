"""Heads on the label and input edge cases of issue 13: zero samples, y=None, labels that mix
str and int, object-dtype string labels (a pandas column) through save/load, the clamped
calibration folds of SvmHead, and SvmHead's few-shot labels (the decision argmax)."""
import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import make_blobs

import repurpose
from repurpose.exceptions import DataError
from repurpose.heads import BnnHead, GpHead, LogisticHead, SvmHead

HEADS = [LogisticHead(), SvmHead(random_state=0), SvmHead(kernel="linear", random_state=0),
         GpHead(n_inducing=10, max_iter=20, random_state=0),
         BnnHead(n_epochs=3, random_state=0)]
IDS = ["logistic", "svm", "svm-linear", "gp", "bnn"]


@pytest.fixture(scope="module")
def blobs():
    X, y = make_blobs(60, n_features=4, centers=3, cluster_std=1.0, random_state=0)
    return X, y


@pytest.mark.parametrize("head", HEADS, ids=IDS)
def test_predict_on_zero_samples_gives_empty_results(head, blobs):
    X, y = blobs
    fitted = clone(head).fit(X, np.array(["a", "b", "c"])[y])
    empty = np.zeros((0, X.shape[1]))
    proba = fitted.predict_proba(empty)
    assert proba.shape == (0, 3)
    labels = fitted.predict(empty)
    assert labels.shape == (0,) and labels.dtype == fitted.classes_.dtype
    with pytest.raises(ValueError, match="X has 5 features"):
        fitted.predict(np.zeros((0, 5)))  # the width is still checked


@pytest.mark.parametrize("head", HEADS[1:3], ids=IDS[1:3])
def test_svm_decision_functions_on_zero_samples(head, blobs):
    X, y = blobs
    fitted = clone(head).fit(X, y)
    assert fitted.decision_function(np.zeros((0, X.shape[1]))).shape == (0, 3)
    assert fitted.svm_decision_function(np.zeros((0, X.shape[1]))).shape == (0, 3)


@pytest.mark.parametrize("head", HEADS, ids=IDS)
def test_fit_on_zero_samples_is_a_clear_error(head):
    with pytest.raises(DataError, match=r"0 labels .*at least 2 classes"):
        clone(head).fit(np.zeros((0, 4)), [])


@pytest.mark.parametrize("head", HEADS, ids=IDS)
def test_fit_without_y_is_a_clear_error(head, blobs):
    X, _ = blobs
    with pytest.raises(DataError, match=r"^y is required: .*\.fit learns from labels"):
        clone(head).fit(X, None)


@pytest.mark.parametrize("head", HEADS, ids=IDS)
@pytest.mark.parametrize("labels", [
    [1, "a", 2] * 20,                                  # a list: numpy would make it all str
    np.array([1, "a", 2] * 20, dtype=object),          # a pandas column of mixed values
])
def test_labels_mixing_str_and_int_are_an_error(head, blobs, labels):
    X, _ = blobs
    with pytest.raises(DataError, match=r"y mixes label types int \(40 labels, e\.g\. 1\) "
                                        r"and str \(20 labels, e\.g\. 'a'\).*one type"):
        clone(head).fit(X, labels)


def test_missing_labels_are_an_error(blobs):
    X, _ = blobs
    labels = np.array(["a", None, "b"] * 20, dtype=object)
    with pytest.raises(DataError, match="mixes label types str .* and NoneType"):
        LogisticHead().fit(X, labels)


def test_score_with_labels_of_the_other_type_names_them(blobs):
    X, y = blobs
    head = LogisticHead().fit(X, np.array(["a", "b", "c"])[y])
    with pytest.raises(DataError, match=r"never saw in fit"):
        head.score(X, y)  # int labels, str classes_: no numpy comparison warning


@pytest.mark.parametrize("head", HEADS, ids=IDS)
def test_object_string_labels_save_and_load(head, blobs, tmp_path):
    X, y = blobs
    labels = np.array(["cat", "dog", "eel"], dtype=object)[y]  # what a pandas column gives
    fitted = clone(head).fit(X, labels)
    assert fitted.classes_.dtype.kind == "U"
    path = tmp_path / "head"
    fitted.save(str(path))  # raised "needs pickle" before
    loaded = repurpose.load(str(path))
    assert loaded.predict(X).dtype.kind == "U"
    np.testing.assert_array_equal(loaded.predict(X), fitted.predict(X))
    np.testing.assert_array_equal(loaded.predict_proba(X), fitted.predict_proba(X))
    assert fitted.score(X, labels) == loaded.score(X, labels)


def test_svm_warns_when_it_lowers_n_folds(blobs):
    X, y = blobs
    with pytest.warns(UserWarning, match=r"SvmHead\(n_folds=100\): the calibration uses 20 "
                                         r"folds instead, because class \d has only 20"):
        SvmHead(n_folds=100, random_state=0).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        SvmHead(n_folds=5, random_state=0).fit(X, y)  # no clamp, no warning
        SvmHead(random_state=0).fit(X[:9], [0, 0, 1, 1, 2, 2, 0, 1, 2])  # the default adapts


@pytest.mark.parametrize("kernel", ["rbf", "linear"])
def test_svm_predicts_the_decision_argmax(kernel):
    # Few shots: a calibration map with an offset per class moved predictions away from
    # the SVM's decision (the accuracy gap to xfer's SVC); one shared scale cannot.
    X, y = make_blobs(400, n_features=20, centers=5, cluster_std=6.0, random_state=3)
    for seed in range(5):
        rng = np.random.RandomState(seed)
        train = np.concatenate([rng.choice(np.flatnonzero(y == c), 3, replace=False)
                                for c in range(5)])
        head = SvmHead(kernel=kernel, random_state=seed).fit(X[train], y[train])
        decision = head.svm_decision_function(X)
        np.testing.assert_array_equal(head.predict(X), head.classes_[decision.argmax(1)])
        proba = head.predict_proba(X)
        np.testing.assert_allclose(proba.sum(1), 1.0, atol=1e-9)
        assert head.calibration_coef_.min() == head.calibration_coef_.max() > 0
        assert not head.calibration_intercept_.any()


def test_svm_binary_probability_follows_the_decision_sign(blobs):
    X, y = blobs
    keep = y < 2
    head = SvmHead(random_state=0).fit(X[keep], y[keep])
    decision = head.svm_decision_function(X)[:, 0]
    np.testing.assert_array_equal(head.predict(X), (decision > 0).astype(int))
    assert ((head.predict_proba(X)[:, 1] > 0.5) == (decision > 0)).all()


def test_svm_calibration_is_not_overconfident_on_few_shots():
    # Probabilities stay informative: NLL below the uniform guess's log(5) on held-out data.
    from repurpose import metrics

    X, y = make_blobs(600, n_features=20, centers=5, cluster_std=5.0, random_state=1)
    nlls = []
    for seed in range(5):
        rng = np.random.RandomState(seed)
        train = np.concatenate([rng.choice(np.flatnonzero(y == c), 4, replace=False)
                                for c in range(5)])
        test = np.setdiff1d(np.arange(len(y)), train)
        head = SvmHead(random_state=seed).fit(X[train], y[train])
        nlls.append(metrics.negative_log_likelihood(y[test], head.predict_proba(X[test]),
                                                    head.classes_))
    assert np.mean(nlls) < np.log(5) * 0.8
