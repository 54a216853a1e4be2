"""Learning-curve extrapolation: asymptotes of known families, uncertainty shrinking with more
points, the too-few-points fallback and input errors."""
import math

import numpy as np
import pytest

from repurpose.bo.curves import LearningCurveModel
from repurpose.exceptions import InvalidParameterError

T = np.arange(1, 28, dtype=float)


@pytest.mark.parametrize("curve", [
    lambda t: 0.3 + 1.0 * np.exp(-t / 5.0),
    lambda t: 0.3 + 1.0 * t ** -0.7,
    lambda t: 0.5 - 0.4 * np.exp(-t / 3.0),  # increasing (e.g. an accuracy)
])
def test_recovers_final_value_of_known_families(curve):
    y = curve(T)
    pred = LearningCurveModel().predict(T[:9], y[:9], final_budget=27)
    assert abs(pred.mean - y[-1]) < 0.01
    assert math.isfinite(pred.std)
    assert abs(sum(pred.weights.values()) - 1) < 1e-9


def test_std_shrinks_with_more_points():
    rng = np.random.default_rng(0)
    y = 0.3 + np.exp(-T / 5.0) + 0.01 * rng.standard_normal(T.shape)
    model = LearningCurveModel()
    few = model.predict(T[:5], y[:5], 27)
    many = model.predict(T[:20], y[:20], 27)
    assert math.isfinite(few.std) and few.std > many.std > 0
    assert abs(many.mean - 0.3 - math.exp(-27 / 5)) < 3 * many.std + 0.02


def test_fallback_with_too_few_points():
    pred = LearningCurveModel().predict([1, 2, 3], [1.0, 0.8, 0.7], final_budget=27)
    assert pred.mean == 0.7 and pred.std == math.inf and pred.weights == {}
    assert LearningCurveModel().min_points == 4


def test_at_final_budget_returns_last_value():
    pred = LearningCurveModel().predict([1, 2, 3, 4, 5], [5, 4, 3, 2, 1.5], final_budget=5)
    assert pred.mean == 1.5 and pred.std == 0.0


@pytest.mark.parametrize("budgets,values,final", [
    ([1, 2], [1.0], 5),
    ([2, 1], [1.0, 0.5], 5),
    ([1, 2], [1.0, "a"], 5),
    ([1, 2], [1.0, float("nan")], 5),
    ([1, 2], [1.0, 0.5], 1),
    ([], [], 5),
])
def test_bad_input(budgets, values, final):
    with pytest.raises(InvalidParameterError):
        LearningCurveModel().predict(budgets, values, final)


def test_unknown_family():
    with pytest.raises(InvalidParameterError, match="Unknown curve family"):
        LearningCurveModel(["pow5"])
