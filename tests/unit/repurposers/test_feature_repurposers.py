import numpy as np
import pytest
from sklearn.base import clone

from repurpose import (BnnRepurposer, GpRepurposer, LogisticRepurposer, SourceModel,
                       SvmRepurposer)
from repurpose.data import load_shifted_digits_images
from repurpose.exceptions import UnknownLayerError
from repurpose.features import default_cache

REPURPOSERS = [LogisticRepurposer, SvmRepurposer, GpRepurposer, BnnRepurposer]


@pytest.fixture(scope="module")
def source():
    return SourceModel.from_zoo("digits_cnn")


@pytest.fixture(scope="module")
def task():
    X, y = load_shifted_digits_images(classes=range(5, 10), random_state=0)
    names = np.array(["five", "six", "seven", "eight", "nine"])[y - 5]
    rng = np.random.RandomState(0)
    order = rng.permutation(len(y))
    train, test = order[:100], order[100:400]
    return X[train], names[train], X[test], names[test]


@pytest.mark.parametrize("cls", REPURPOSERS)
def test_fit_predict_score_with_string_labels(cls, source, task):
    Xtr, ytr, Xte, yte = task
    model = cls(source, layers=("fc1_relu_fwd", "relu3_fwd"), pool="avg", random_state=0)
    assert model.fit(Xtr, ytr) is model
    assert set(model.classes_) == set(ytr) and model.layers_ == ["fc1_relu_fwd", "relu3_fwd"]
    assert model.layer_dims_ == {"fc1_relu_fwd": 64, "relu3_fwd": 64}
    assert model.score(Xte, yte) > 0.7
    proba = model.predict_proba(Xte)
    np.testing.assert_allclose(proba.sum(1), 1, atol=1e-9)
    assert (model.predict(Xte) == model.classes_[proba.argmax(1)]).all()


@pytest.mark.parametrize("cls", REPURPOSERS)
def test_head_params_are_constructor_params(cls, source):
    head_params = cls._head_class._get_param_names()
    name = [p for p in head_params if p != "random_state"][0]
    model = cls(source, **{name: "marker"})
    params = model.get_params()
    assert set(head_params) <= set(params) and params[name] == "marker"
    assert clone(model).source is source
    model.set_params(**{name: "other"})
    assert model._head_params()[name] == "other"


def test_features_extracted_once_across_heads(source, task):
    Xtr, ytr, _, _ = task
    default_cache.clear()
    LogisticRepurposer(source).fit(Xtr, ytr)
    misses = default_cache.misses
    SvmRepurposer(source, random_state=0).fit(Xtr, ytr)
    assert default_cache.misses == misses  # the second head reused the features


@pytest.mark.parametrize("cls", REPURPOSERS)
def test_bad_input_raised_before_extraction(cls, source, task, monkeypatch):
    Xtr, ytr, _, _ = task
    import repurpose.features._transformer as transformer

    calls = []
    monkeypatch.setattr(transformer, "extract_features",
                        lambda *a, **k: calls.append(1) or pytest.fail("extracted"))
    with pytest.raises(UnknownLayerError, match="Did you mean 'fc1_relu_fwd'"):
        cls(source, layers=("fc1_relu",), cache_features=False).fit(Xtr, ytr)
    with pytest.raises(ValueError, match="at least 2 classes"):
        cls(source, cache_features=False).fit(Xtr, np.full(len(ytr), "five"))
    assert calls == []


def test_svm_bad_kernel_raised_before_extraction(source, task):
    Xtr, ytr, _, _ = task
    with pytest.raises(ValueError, match="kernel must be one of 'rbf', 'linear'"):
        SvmRepurposer(source, kernel="poly").fit(Xtr, ytr)


def test_feature_mismatch_at_predict_names_layers(source, task):
    Xtr, ytr, Xte, _ = task
    model = LogisticRepurposer(source).fit(Xtr, ytr)
    with pytest.raises(ValueError, match=r"fitted on layers \['fc1_relu_fwd'\]"):
        model.head_.predict(np.zeros((2, 10)))


def test_labels_length_mismatch_error(source, task):
    Xtr, ytr, _, _ = task
    with pytest.raises(ValueError, match="X has 100 samples but y has 99 labels"):
        LogisticRepurposer(source).fit(Xtr, ytr[:99])


def test_gp_repurposer_gets_one_kernel_per_layer(source, task):
    Xtr, ytr, Xte, _ = task
    model = GpRepurposer(source, layers=("fc1_relu_fwd", "relu3_fwd"), pool="avg",
                         n_inducing=20, alpha_eps=0.01, random_state=0).fit(Xtr, ytr)
    assert model.head_.feature_groups == (64, 64) and model.feature_groups is None
    assert model.predict_variance(Xte).shape == (len(Xte),)


def test_bnn_repurposer_batch_sizes_and_uncertainty(source, task):
    Xtr, ytr, Xte, _ = task
    model = BnnRepurposer(source, batch_size=7, train_batch_size=16, n_epochs=20,
                          random_state=0).fit(Xtr, ytr)
    assert model.head_.batch_size == 16 and model.batch_size == 7
    assert model.predict_entropy(Xte).shape == (len(Xte),)
    assert (model.predict_mutual_information(Xte) >= 0).all()
