"""BnnHead: fits, uncertainty outputs, priors and estimators, determinism, contexts, state,
and bad parameters (each an _ok / _error pair)."""
import copy
import json
import logging
import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_digits, make_blobs

from repurpose.exceptions import ContextError, InvalidParameterError
from repurpose.heads._bnn import BnnHead

FAST = dict(hidden_units=(16,), n_epochs=15, n_samples=16, random_state=0)


@pytest.fixture(scope="module")
def blobs():
    X, y = make_blobs(120, n_features=4, centers=3, cluster_std=1.5, random_state=0)
    return X, y


@pytest.fixture(scope="module")
def fitted(blobs, ctx):
    """Fitted on the suite's context (REPURPOSE_TEST_CTX), so these tests rerun on a GPU."""
    return BnnHead(**FAST, ctx=ctx).fit(*blobs)


@pytest.fixture(scope="module")
def two_clusters():
    """Two classes separated along the first axis; nothing constrains the second far out."""
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal([-2, 0], 0.7, (60, 2)), rng.normal([2, 0], 0.7, (60, 2))])
    return X, np.repeat([0, 1], 60)


# ------------------------------------------------------------------ fits
def test_fits_blobs(blobs, ctx):
    X, y = blobs
    head = BnnHead(hidden_units=(16,), n_epochs=40, random_state=0, ctx=ctx).fit(X, y)
    assert head.score(X, y) > 0.9
    assert head.n_features_in_ == 4 and head.layer_sizes_ == (4, 16, 3)


def test_fits_digits(ctx):
    digits = load_digits()
    X, y = digits.data, digits.target
    head = BnnHead(n_epochs=25, random_state=0, ctx=ctx).fit(X[:600], y[:600])
    assert head.score(X[600:1000], y[600:1000]) > 0.85


def test_no_hidden_layer_is_bayesian_logistic_regression(blobs):
    X, y = blobs
    head = BnnHead(hidden_units=(), n_epochs=30, learning_rate=0.05, random_state=0).fit(X, y)
    assert head.layer_sizes_ == (4, 3) and head.loc_.shape == (4 * 3 + 3,)
    assert head.score(X, y) > 0.85


def test_probabilities_with_string_labels(blobs):
    X, y = blobs
    labels = np.array(["cat", "dog", "eel"])[y]
    head = BnnHead(**FAST).fit(X, labels)
    proba = head.predict_proba(X)
    assert proba.shape == (len(X), 3) and (proba >= 0).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_array_equal(head.predict(X), head.classes_[proba.argmax(axis=1)])
    assert set(head.predict(X)) <= {"cat", "dog", "eel"}


def test_batch_larger_than_data_is_clipped(blobs):
    X, y = blobs
    head = BnnHead(hidden_units=(8,), n_epochs=3, batch_size=10_000, random_state=0)
    assert len(head.fit(X, y).history_["elbo"]) == 3


# ------------------------------------------------------------------ uncertainty
def test_samples_entropy_and_mutual_information_agree(fitted, blobs):
    X = blobs[0][:20]
    draws = fitted.predict_proba_samples(X)
    assert draws.shape == (16, 20, 3)
    np.testing.assert_allclose(draws.mean(axis=0), fitted.predict_proba(X), rtol=1e-12)
    entropy = fitted.predict_entropy(X)
    mi = fitted.predict_mutual_information(X)
    assert np.all(mi >= 0) and np.all(mi <= entropy + 1e-12)
    assert np.all(entropy <= np.log(3) + 1e-12)
    mean_entropy = -(draws * np.log(draws)).sum(axis=-1).mean(axis=0)
    np.testing.assert_allclose(mi, entropy - mean_entropy, atol=1e-10)


def test_mutual_information_is_larger_far_from_the_data(two_clusters):
    X, y = two_clusters
    head = BnnHead(n_epochs=60, random_state=0).fit(X, y)
    # Far along the axis the data do not pin down, the draws disagree about the class.
    far = np.array([[0.0, r] for r in (-20.0, -10.0, 10.0, 20.0)])
    near_mi, far_mi = head.predict_mutual_information(X), head.predict_mutual_information(far)
    assert head.score(X, y) == 1.0
    assert far_mi.mean() > 10 * near_mi.mean()
    assert far_mi.max() > near_mi.max()


def test_predictions_are_deterministic_for_a_fitted_model(fitted, blobs):
    X = blobs[0]
    first = fitted.predict_proba(X)
    np.testing.assert_array_equal(fitted.predict_proba(X), first)
    # a row's prediction does not depend on the other rows (same weight draws every call)
    np.testing.assert_allclose(fitted.predict_proba(X[::-1][:7]), first[::-1][:7], rtol=1e-12)


# ------------------------------------------------------------------ priors and estimators
def test_laplace_prior_is_sparser_than_gaussian():
    # 2 of 20 features matter; at the same scale the Laplace (L1) prior keeps the relevant
    # weights large and pulls the irrelevant ones to zero: a sparser posterior mean.
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 20))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    ratio = {}
    for prior in ("gaussian", "laplace"):
        head = BnnHead(hidden_units=(), prior=prior, prior_scale=0.3, n_epochs=60,
                       random_state=0).fit(X, y)
        weights = np.abs(head.posterior_layers()[0]["weight_loc"])
        ratio[prior] = weights[:, :2].mean() / weights[:, 2:].mean()
        assert head.score(X, y) > 0.85
    assert ratio["laplace"] > 2 * ratio["gaussian"], ratio


def test_smaller_prior_scale_shrinks_the_weights(blobs):
    X, y = blobs
    norms = [np.abs(BnnHead(**{**FAST, "n_epochs": 60, "prior_scale": s}).fit(X, y).loc_)
             .mean() for s in (5.0, 1.0, 0.2)]
    assert norms[2] < 0.5 * norms[1] < 0.5 * norms[0]


@pytest.mark.parametrize("params", [
    {"estimator": "score"}, {"estimator": "score", "prior": "laplace"},
    {"local_reparam": False}, {"prior": "laplace"}, {"n_train_samples": 3},
    {"local_reparam": False, "n_train_samples": 2}, {"activation": "tanh"},
    {"optimizer": "sgd", "learning_rate": 0.1},
], ids=lambda p: "-".join(f"{k}={v}" for k, v in p.items()))
def test_variants_run(blobs, params):
    X, y = blobs
    head = BnnHead(**{**FAST, "n_epochs": 4, **params}).fit(X, y)
    assert all(np.isfinite(head.history_[k]).all() for k in ("elbo", "nll", "kl"))
    np.testing.assert_allclose(head.predict_proba(X).sum(axis=1), 1.0, atol=1e-12)


def test_history_records_elbo_nll_and_kl(fitted):
    history = fitted.history_
    assert set(history) == {"elbo", "nll", "kl"}
    assert all(len(v) == 15 for v in history.values())
    np.testing.assert_allclose(history["elbo"], -np.add(history["nll"], history["kl"]),
                               rtol=1e-5)
    assert history["elbo"][-1] > history["elbo"][0]  # training raised the ELBO


# ------------------------------------------------------------------ determinism, contexts
def test_same_seed_same_model_and_other_seed_other_model(blobs, ctx):
    X, y = blobs
    a, b = BnnHead(**FAST, ctx=ctx).fit(X, y), BnnHead(**FAST, ctx=ctx).fit(X, y)
    np.testing.assert_array_equal(a.loc_, b.loc_)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    c = BnnHead(**{**FAST, "random_state": 1}).fit(X, y)
    assert not np.allclose(a.loc_, c.loc_)


@pytest.mark.parametrize("ctx", ["cpu:0,1", "cpu:0,1,2"])
@pytest.mark.parametrize("estimator", ["reparam", "score"])
def test_several_contexts_give_the_single_context_model(blobs, estimator, ctx):
    X, y = blobs
    params = {**FAST, "n_epochs": 5, "batch_size": 25, "estimator": estimator}  # ragged
    one = BnnHead(**params, ctx="cpu").fit(X, y)
    several = BnnHead(**params, ctx=ctx).fit(X, y)
    # Same up to float rounding (sums of gradients in another order), not merely close.
    np.testing.assert_allclose(several.loc_, one.loc_, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(several.raw_scale_, one.raw_scale_, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(several.history_["elbo"], one.history_["elbo"], rtol=1e-6)
    np.testing.assert_allclose(several.predict_proba(X), one.predict_proba(X), atol=1e-5)


def test_bad_context_error(blobs):
    with pytest.raises(ContextError, match="Cannot parse ctx 'tpu'"):
        BnnHead(**FAST, ctx="tpu").fit(*blobs)


# ------------------------------------------------------------------ state
def test_state_round_trip(fitted, blobs):
    X = blobs[0]
    state, arrays = fitted._get_state()
    json.dumps(state)
    assert {"layer0_weight_loc", "layer1_bias_raw_scale", "mean_", "history_elbo"} <= set(arrays)
    assert arrays["layer0_weight_loc"].shape == (16, 4)
    restored = BnnHead(**fitted.get_params())._set_state(state, arrays)
    np.testing.assert_array_equal(restored.predict_proba(X), fitted.predict_proba(X))
    np.testing.assert_array_equal(restored.predict_mutual_information(X),
                                  fitted.predict_mutual_information(X))
    assert restored.history_ == fitted.history_


def test_save_and_load_round_trip(fitted, blobs, tmp_path):
    from repurpose.persist import load, save

    save(fitted, tmp_path / "bnn")
    loaded = load(tmp_path / "bnn")
    assert isinstance(loaded, BnnHead) and loaded.get_params() == fitted.get_params()
    np.testing.assert_array_equal(loaded.predict_proba(blobs[0]), fitted.predict_proba(blobs[0]))


def test_fitted_head_pickles_in_memory(fitted, blobs):
    copy = pickle.loads(pickle.dumps(fitted))  # joblib workers, check_estimator
    np.testing.assert_array_equal(copy.predict_proba(blobs[0]), fitted.predict_proba(blobs[0]))


def test_posterior_layers(fitted):
    layers = fitted.posterior_layers()
    assert [layer["weight_loc"].shape for layer in layers] == [(16, 4), (3, 16)]
    assert all((layer["weight_std"] > 0).all() and (layer["bias_std"] > 0).all()
               for layer in layers)


# ------------------------------------------------------------------ progress and logging
def test_progress_bar_and_epoch_logs(blobs, capsys, caplog):
    X, y = blobs
    with caplog.at_level(logging.INFO, logger="repurpose.heads._bnn"):
        BnnHead(**{**FAST, "n_epochs": 3}, progress=True).fit(X, y)
    assert "BnnHead" in capsys.readouterr().err
    lines = [r.getMessage() for r in caplog.records if "epoch" in r.getMessage()]
    assert len(lines) == 3 and lines[-1].startswith("BnnHead epoch 3/3: ELBO")


def test_diverging_training_error(blobs):
    X, y = blobs
    with pytest.raises(FloatingPointError, match=r"ELBO became .* lower learning_rate"):
        BnnHead(**{**FAST, "n_epochs": 5}, optimizer="sgd", learning_rate=1e30).fit(X, y)


# ------------------------------------------------------------------ parameters
def test_params_are_stored_unmodified():
    head = BnnHead(hidden_units=[32, 16], prior_scale=2, ctx=["cpu"])
    assert head.get_params()["hidden_units"] == [32, 16]
    assert clone(head).get_params()["ctx"] == ["cpu"]


@pytest.mark.parametrize("params", [
    {"hidden_units": [8, 4]}, {"hidden_units": 8}, {"activation": "sigmoid"},
    {"prior_scale": 1}, {"init_scale": 0.1}, {"local_reparam": np.bool_(False)},
    {"optimizer": "rmsprop", "learning_rate": 1e-3},
], ids=lambda p: "-".join(f"{k}={v}" for k, v in p.items()))
def test_params_ok(blobs, params):
    BnnHead(**{**FAST, "n_epochs": 1, **params}).fit(*blobs)


@pytest.mark.parametrize("params, match", [
    ({"hidden_units": (16, 0)},
     r"hidden_units must be .*got \(16, 0\)\. Item 1 \(0\) is not an integer >= 1"),
    ({"hidden_units": "wide"}, "hidden_units must be a tuple of positive integers"),
    ({"activation": "gelu"}, r"activation must be one of 'relu', .*got 'gelu'"),
    ({"prior": "cauchy"}, r"prior must be one of 'gaussian', 'laplace', got 'cauchy'"),
    ({"prior_scale": 0.0}, "prior_scale must be a positive number, got 0.0. Try 5.0"),
    ({"estimator": "reinforce"}, r"estimator must be one of 'reparam', 'score'"),
    ({"local_reparam": "yes"}, "local_reparam must be True or False, got 'yes'"),
    ({"n_epochs": 0}, "n_epochs must be an integer >= 1, got 0"),
    ({"batch_size": 2.5}, "batch_size must be an integer >= 1"),
    ({"learning_rate": -1.0}, "learning_rate must be a positive number, got -1.0. Try 1e-2"),
    ({"optimizer": "adamw"}, r"optimizer must be one of .*Did you mean 'adam'"),
    ({"n_train_samples": 0}, "n_train_samples must be an integer >= 1"),
    ({"n_samples": 0}, "n_samples must be an integer >= 1"),
    ({"init_scale": float("nan")}, "init_scale must be a positive number, got nan"),
    ({"progress": "no"}, "progress must be True or False"),
], ids=lambda p: "-".join(f"{k}" for k in p) if isinstance(p, dict) else "")
def test_params_error(blobs, params, match):
    with pytest.raises(InvalidParameterError, match=match):
        BnnHead(**{**FAST, **params}).fit(*blobs)


def test_prediction_params_after_fit(fitted, blobs):
    X = blobs[0]
    head = copy.deepcopy(fitted).set_params(activation="tanh")  # the fitted network stays
    np.testing.assert_array_equal(head.predict_proba(X), fitted.predict_proba(X))
    assert head.set_params(n_samples=64).predict_proba_samples(X[:3]).shape == (64, 3, 3)


def test_n_samples_error_at_predict(fitted, blobs):
    head = copy.deepcopy(fitted).set_params(n_samples=0)
    with pytest.raises(InvalidParameterError, match="n_samples must be an integer >= 1"):
        head.predict_proba(blobs[0])
