"""Every head against scikit-learn's estimator checks and the project's own contract.

A new head is one entry in HEADS (fast settings) and, where a check cannot pass, one entry
with its reason in EXPECTED_FAILED_CHECKS.
"""
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.utils.estimator_checks import parametrize_with_checks

from repurpose import heads as heads_module
from repurpose.exceptions import DataError
from repurpose.heads import LogisticHead, SvmHead

HEADS = [
    LogisticHead(),
    SvmHead(random_state=0),
    SvmHead(kernel="linear", random_state=0),
]
for name, params in (("GpHead", {"n_inducing": 10, "max_iter": 50, "random_state": 0}),
                     ("BnnHead", {"n_epochs": 5, "random_state": 0})):
    if hasattr(heads_module, name):
        HEADS.append(getattr(heads_module, name)(**params))

#: Checks a head cannot pass, with the reason (none yet for the linear heads).
EXPECTED_FAILED_CHECKS = {}


def _expected_failed(estimator):
    return EXPECTED_FAILED_CHECKS.get(type(estimator).__name__, {})


@parametrize_with_checks(HEADS, expected_failed_checks=_expected_failed)
def test_sklearn_compatible_head(estimator, check):
    check(estimator)


def _ids(heads):
    return [f"{type(h).__name__}-{getattr(h, 'kernel', '')}" for h in heads]


@pytest.fixture(scope="module")
def blobs():
    from sklearn.datasets import make_blobs

    X, y = make_blobs(90, n_features=5, centers=3, cluster_std=2.0, random_state=0)
    return X, y


@pytest.mark.parametrize("head", HEADS, ids=_ids(HEADS))
def test_any_label_values(head, blobs):
    X, y = blobs
    for labels in (np.array(["cat", "dog", "eel"])[y], y * 10 + 7, y * 2.0 - 3.0):
        fitted = clone(head).fit(X, labels)
        np.testing.assert_array_equal(fitted.classes_, np.unique(labels))
        assert set(fitted.predict(X)) <= set(labels)
        proba = fitted.predict_proba(X)
        np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-9)
        assert (fitted.classes_[proba.argmax(1)] == fitted.predict(X)).all()


@pytest.mark.parametrize("head", HEADS, ids=_ids(HEADS))
def test_state_round_trip_predicts_identically(head, blobs):
    X, y = blobs
    fitted = clone(head).fit(X, y)
    state, arrays = fitted._get_state()
    restored = type(head)(**fitted.get_params())._set_state(state, arrays)
    np.testing.assert_array_equal(restored.predict_proba(X), fitted.predict_proba(X))
    import json

    json.dumps(state)  # the state is JSON
    assert all(isinstance(a, np.ndarray) and a.dtype != object for a in arrays.values())


@pytest.mark.parametrize("head", HEADS, ids=_ids(HEADS))
def test_same_seed_same_model(head, blobs):
    X, y = blobs
    a = clone(head).fit(X, y).predict_proba(X)
    b = clone(head).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------------ bad input, every head
@pytest.mark.parametrize("head", HEADS, ids=_ids(HEADS))
def test_feature_mismatch_error(head, blobs):
    X, y = blobs
    fitted = clone(head).fit(X, y)
    fitted._feature_origin = ["pool5"]
    with pytest.raises(DataError, match=r"X has 4 features, but \w+ is expecting 5 features "
                                         r"as input \(fitted on layers \['pool5'\]\)"):
        fitted.predict_proba(X[:, :4])


@pytest.mark.parametrize("head", HEADS, ids=_ids(HEADS))
def test_single_class_error(head, blobs):
    X, _ = blobs
    with pytest.raises(ValueError, match="at least 2 classes.*got 1 class"):
        clone(head).fit(X, np.zeros(len(X)))


NEEDS_SEVERAL = [h for h in HEADS if type(h)._min_samples_per_class > 1]


@pytest.mark.parametrize("head", NEEDS_SEVERAL, ids=_ids(NEEDS_SEVERAL))
def test_too_few_samples_per_class_error(head, blobs):
    X, y = blobs
    minimum = type(head)._min_samples_per_class
    keep = np.concatenate([np.flatnonzero(y != 2), np.flatnonzero(y == 2)[: minimum - 1]])
    with pytest.raises(ValueError, match=rf"needs at least {minimum} samples of every class"):
        clone(head).fit(X[keep], y[keep])


@pytest.mark.parametrize("head", HEADS, ids=_ids(HEADS))
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_features_error(head, blobs, bad):
    X, y = blobs
    X = X.copy()
    X[3, 1] = bad
    with pytest.raises(DataError, match="(NaN|infinity).*Features must be finite"):
        clone(head).fit(X, y)
    fitted = clone(head).fit(blobs[0], y)
    with pytest.raises(DataError, match="(NaN|infinity).*Features must be finite"):
        fitted.predict(X)


@pytest.mark.parametrize("head", HEADS, ids=_ids(HEADS))
def test_unseen_labels_in_score_error(head, blobs):
    X, y = blobs
    fitted = clone(head).fit(X, y)
    with pytest.raises(DataError, match=r"label\(s\) 9 that \w+ never saw in fit"):
        fitted.score(X, np.where(y == 0, 9, y))


@pytest.mark.parametrize("head", HEADS, ids=_ids(HEADS))
def test_use_before_fit_error(head, blobs):
    from sklearn.exceptions import NotFittedError

    for method in ("predict", "predict_proba"):
        with pytest.raises(NotFittedError):
            getattr(clone(head), method)(blobs[0])


# ---------------------------------------------------------------------- class_weight (issue 13)
def test_class_weight_dict_is_keyed_by_the_labels():
    from repurpose.exceptions import InvalidParameterError

    rng = np.random.RandomState(0)
    y = np.repeat([5, 6, 7], 20)
    X = rng.normal(size=(60, 4)) + (y[:, None] - 6) * 0.3
    plain = LogisticHead().fit(X, y)
    weighted = LogisticHead(class_weight={5: 100.0}).fit(X, y)
    # The weight lands on label 5: more of the samples are predicted as 5, none less.
    more_fives = (weighted.predict(X) == 5).sum() - (plain.predict(X) == 5).sum()
    assert more_fives > 0
    # The same weights written for internal indices give the same model as the labels do.
    same = LogisticHead(class_weight={5: 100.0, 6: 1.0, 7: 1.0}).fit(X, y)
    np.testing.assert_allclose(same.coef_, weighted.coef_)
    # A key that is not a label (here the index 1 that the old code used) is an error.
    with pytest.raises(InvalidParameterError, match=r"class_weight has key\(s\) 1, which are "
                                                    r"not labels of y \(its labels: 5, 6, 7\)"):
        LogisticHead(class_weight={1: 50.0}).fit(X, y)


def test_repurposer_refuses_a_bad_class_weight_key_before_extraction():
    from repurpose import LogisticRepurposer, SourceModel
    from repurpose.exceptions import InvalidParameterError

    class NoData:  # extraction would fail loudly on this: the check must come first
        def __len__(self):
            return 4
    model = LogisticRepurposer(SourceModel.from_zoo("digits_cnn"), class_weight={"five": 2.0})
    with pytest.raises(InvalidParameterError, match="class_weight has key"):
        model.fit(NoData(), np.array([5, 6, 5, 6]))


@pytest.mark.parametrize("name", ["LogisticRepurposer", "SvmRepurposer", "GpRepurposer",
                                  "BnnRepurposer", "FineTuneRepurposer",
                                  "RandomFreezeRepurposer"])
def test_repurposers_raise_not_fitted_error_before_fit(name):
    import repurpose
    from sklearn.exceptions import NotFittedError

    model = getattr(repurpose, name)(repurpose.SourceModel.from_zoo("digits_cnn"))
    X = np.zeros((2, 1, 8, 8), np.float32)
    for call in (lambda: model.predict(X), lambda: model.predict_proba(X),
                 lambda: model.score(X, [5, 6])):
        with pytest.raises(NotFittedError):
            call()
