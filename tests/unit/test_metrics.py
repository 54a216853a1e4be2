import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.metrics import brier_score_loss, log_loss

from repurpose import metrics
from repurpose.exceptions import DataError


def _random_problem(seed, n=200, k=4):
    rng = np.random.RandomState(seed)
    logits = rng.randn(n, k) * 2
    proba = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    y = np.array([rng.choice(k, p=p) for p in proba])
    return y, proba


def test_nll_matches_sklearn_log_loss():
    y, proba = _random_problem(0)
    assert metrics.negative_log_likelihood(y, proba) == pytest.approx(
        log_loss(y, proba, labels=range(4)))


def test_brier_two_classes_is_twice_sklearn():
    y, proba = _random_problem(1, k=2)
    # sklearn's binary Brier score is the squared error of the positive class only.
    assert metrics.brier_score(y, proba) == pytest.approx(2 * brier_score_loss(y, proba[:, 1]))


def test_labels_follow_classes():
    proba = np.array([[0.8, 0.2], [0.3, 0.7]])
    assert metrics.accuracy(["y", "x"], proba, classes=["y", "x"]) == 1.0
    assert metrics.accuracy(["x", "y"], proba, classes=["y", "x"]) == 0.0
    assert metrics.accuracy([30, 10], proba, classes=[30, 10]) == 1.0


def test_calibrated_predictions_have_small_ece():
    y, proba = _random_problem(2, n=20000)  # labels drawn from proba: perfectly calibrated
    assert metrics.expected_calibration_error(y, proba) < 0.02
    overconfident = np.eye(4)[proba.argmax(1)] * 0.97 + 0.01
    assert metrics.expected_calibration_error(y, overconfident) > 0.2


def test_reliability_diagram_counts_and_gaps():
    y = np.array([0, 0, 1, 1])
    proba = np.array([[0.95, 0.05], [0.9, 0.1], [0.6, 0.4], [0.4, 0.6]])
    d = metrics.reliability_diagram(y, proba, n_bins=10)
    assert d["count"].sum() == 4 and d["count"][9] == 1 and d["count"][8] == 1
    assert d["count"][5] == 2 and d["accuracy"][5] == 0.5
    ece = metrics.expected_calibration_error(y, proba, n_bins=10)
    expected = (abs(1 - 0.95) + abs(1 - 0.9) + 2 * abs(0.5 - 0.6)) / 4
    assert ece == pytest.approx(expected)


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 30), st.integers(2, 5), st.integers(0, 10**6))
def test_metric_ranges(n, k, seed):
    rng = np.random.RandomState(seed)
    proba = rng.dirichlet(np.ones(k), size=n)
    y = rng.randint(0, k, size=n)
    s = metrics.summary(y, proba)
    assert 0 <= s["accuracy"] <= 1 and s["nll"] >= 0
    assert 0 <= s["brier"] <= 2 + 1e-12 and 0 <= s["ece"] <= 1


@pytest.mark.parametrize("y, proba, classes, match", [
    ([0, 1], [[1.0, 0.0]], None, "2 labels but proba has 1 rows"),
    ([0], [[np.nan, 1.0]], None, "NaN"),
    ([], np.zeros((0, 2)), None, "at least 1 sample"),
    ([5], [[0.5, 0.5]], None, "label\\(s\\) 5 that are not among"),
    ([0], [[0.5, 0.5]], [0, 1, 2], "3 entries but proba has 2 columns"),
    ([0], [0.5, 0.5], None, "shape \\(n_samples, n_classes\\)"),
])
def test_bad_input_error(y, proba, classes, match):
    with pytest.raises(DataError, match=match):
        metrics.accuracy(y, proba, classes)
