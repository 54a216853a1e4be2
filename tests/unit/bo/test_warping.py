"""Output warping of the surrogate's targets and the rounds of the acquisition's local search
(issue 14): the transform keeps the order of the values and pulls in heavy tails; 'auto'
chooses it by the evidence, once per 5 trials and from those trials alone, so a resumed study
chooses alike; the setting is validated, journalled, and off for journals written before it
existed; a category change in the local search re-optimises the real columns for the new
category."""
import logging

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.stats import skew, yeojohnson

from repurpose.bo import (Acquisition, BayesianOptimizer, Categorical, GPSurrogate, Real,
                          SearchSpace, minimize)
from repurpose.bo.optimizer import AcquisitionOptimizer
from repurpose.bo.surrogate import _yeo_johnson, fit_choosing_warping, warp_outputs
from repurpose.exceptions import InvalidParameterError

finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)


@settings(max_examples=200, deadline=None)
@given(arrays(float, st.integers(1, 40), elements=finite))
def test_warping_keeps_the_order_and_is_finite(y):
    w = warp_outputs(y)
    assert w.shape == y.shape and np.all(np.isfinite(w))
    i, j = np.meshgrid(np.arange(len(y)), np.arange(len(y)))
    below = y[i] < y[j]
    assert np.all(w[i][below] <= w[j][below] + 1e-9)


def test_warping_standardises_and_pulls_in_a_heavy_tail():
    rng = np.random.default_rng(0)
    y = np.exp(3 * rng.standard_normal(60))  # log-normal: a few huge values
    w = warp_outputs(y)
    assert abs(w.mean()) < 1e-9 and abs(w.std() - 1) < 1e-9
    assert skew(y) > 4 and abs(skew(w)) < skew(y) / 3


@pytest.mark.parametrize("y", [[3.0], [1.0, 1.0, 1.0], [1.0, 2.0, 1.0, 2.0]])
def test_warping_with_fewer_than_three_distinct_values_only_standardises(y):
    y = np.asarray(y)
    centred = y - y.mean()
    expected = centred / y.std() if y.std() > 0 else centred
    assert np.allclose(warp_outputs(y), expected)


@pytest.mark.parametrize("bad", ["yes", "Auto", 1.5, None])
def test_output_warping_setting_error(bad):
    with pytest.raises(InvalidParameterError, match="output_warping must be 'auto', True or"):
        BayesianOptimizer(SearchSpace({"x": Real(0.0, 1.0)}), output_warping=bad)


def test_output_warping_setting_is_journalled_and_older_journals_keep_theirs(tmp_path):
    space = SearchSpace({"x": Real(0.0, 1.0)})
    opt = BayesianOptimizer(space, seed=0)
    assert opt.settings()["output_warping"] == "auto"
    state = opt.get_state()
    for written in (True, False, "auto"):
        state["settings"]["output_warping"] = written
        assert BayesianOptimizer.from_state(state).output_warping == written
    del state["settings"]["output_warping"]  # as written before the setting existed
    assert BayesianOptimizer.from_state(state).output_warping is False
    # through a journal file: the header keeps 'auto', and the study resumes with it
    path = tmp_path / "study.jsonl"
    minimize(lambda p: p["x"], space, n_trials=3, seed=0, state_path=path)
    assert BayesianOptimizer.load(path).output_warping == "auto"


def test_log_evidence_is_in_the_units_of_the_targets():
    # The density of a * y + b is that of y divided by a^n: fits to both differ by n log a.
    X = np.linspace(0, 1, 9)[:, None]
    y = np.sin(5 * X[:, 0]) + 0.1 * X[:, 0] ** 2
    one = GPSurrogate(seed=0).fit(X, y).log_evidence_
    scaled = GPSurrogate(seed=0).fit(X, 40.0 * y - 3.0).log_evidence_
    assert scaled == pytest.approx(one - len(y) * np.log(40.0), abs=1e-6)


def _values(kind, n=24):
    rng = np.random.default_rng(1)
    X = rng.random((n, 2))
    bowl = (X[:, 0] - 0.5) ** 2 + (X[:, 1] - 0.3) ** 2
    return X, (bowl if kind == "bowl" else np.exp(12 * bowl))


# A bowl is what the GP models well as it is (the warp bends it); its exponential spans
# decades, which the warp brings back to a bowl.
@pytest.mark.parametrize("kind, warped", [("bowl", False), ("exponential", True)])
def test_the_choice_follows_the_evidence(kind, warped):
    X, y = _values(kind)
    chosen, model, targets = fit_choosing_warping(X, y, lambda: GPSurrogate(seed=0))
    assert chosen is warped
    z = (y - y.mean()) / y.std()
    assert np.allclose(targets, warp_outputs(y) if warped else z)
    # the surrogate returned is fitted to the chosen targets: it predicts them back
    mean, _ = model.predict(X)
    assert np.allclose(mean, targets, atol=0.05)


def test_the_choice_compares_densities_of_the_same_values():
    # With the Jacobian, each side is the density of the standardised values; without it,
    # the warped side would be that of other numbers. Check the sum by a finite difference.
    z = np.sort(np.random.default_rng(2).standard_normal(15) ** 3)
    z = (z - z.mean()) / z.std()
    w, log_jacobian = _yeo_johnson(z)
    # dw/dz by finite differences with the transform's lambda and scale held fixed
    raw, lam = yeojohnson(z)
    h = 1e-6
    slope = (yeojohnson(z + h, lam) - yeojohnson(z - h, lam)) / (2 * h) / raw.std()
    assert log_jacobian == pytest.approx(np.log(slope).sum(), rel=1e-6)
    assert np.allclose(w, (raw - raw.mean()) / raw.std())


def test_values_without_three_distinct_ones_are_not_warped():
    X = np.linspace(0, 1, 6)[:, None]
    chosen, _, targets = fit_choosing_warping(X, [1.0, 2.0] * 3, lambda: GPSurrogate(seed=0))
    assert chosen is False and np.allclose(np.abs(targets), 1.0)


def _decisions(caplog):
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("Output warp")]


def test_auto_chooses_once_per_five_trials_from_those_trials(caplog):
    space = SearchSpace({"x": Real(0.0, 1.0), "y": Real(0.0, 1.0)})

    def objective(p):
        return float(np.exp(8 * ((p["x"] - 0.3) ** 2 + (p["y"] - 0.6) ** 2)))

    with caplog.at_level(logging.DEBUG, logger="repurpose.bo.loop"):
        minimize(objective, space, n_trials=21, seed=0)
    decisions = _decisions(caplog)
    assert [d.split()[-2] for d in decisions] == ["5", "10", "15", "20"]
    assert "chosen" in decisions[-1]  # values over decades: warped


def test_auto_resumed_between_choices_suggests_as_uninterrupted(tmp_path, caplog):
    # Stopped at 12 trials, the resumed study has no choice in memory: it makes it again
    # from the first 10 trials, as the uninterrupted one did when it had told 10.
    space = SearchSpace({"x": Real(-2.0, 2.0), "c": Categorical(["a", "b"])})

    def objective(p):
        return float(np.exp(2 * p["x"]) + (p["c"] == "b"))

    straight = minimize(objective, space, n_trials=17, seed=3)
    path = tmp_path / "study.jsonl"
    minimize(objective, space, n_trials=12, seed=3, state_path=path)
    with caplog.at_level(logging.DEBUG, logger="repurpose.bo.loop"):
        resumed = minimize(objective, space, n_trials=17, state_path=path)
    assert [t.params for t in resumed.history] == [t.params for t in straight.history]
    assert [d.split()[-2] for d in _decisions(caplog)] == ["10", "15"]


def test_warping_changes_what_a_skewed_study_suggests():
    # The same trials, one value far above the rest: the warped surrogate is another model.
    space = SearchSpace({"x": Real(0.0, 1.0), "y": Real(0.0, 1.0)})
    suggestions = []
    for warp in (True, False):
        opt = BayesianOptimizer(space, seed=0, n_initial=6, output_warping=warp)
        for k in range(8):
            p = opt.ask()
            opt.tell(p, (p["x"] - 0.3) ** 2 + p["y"] ** 2 + (1e4 if k == 2 else 0.0))
        suggestions.append(opt.ask())
    assert suggestions[0] != suggestions[1]


class _CategoryDependentPeak(Acquisition):
    """Highest at x = 0.8 with category 'b' (score 0), x = 0.2 with 'a' (score -0.1):
    from 'a' at its own peak, the move to 'b' pays off only once x is re-optimised."""
    peak = {"a": 0.2, "b": 0.8}
    cost = {"a": 0.1, "b": 0.0}

    def __init__(self, space):
        self.space = space

    def evaluate(self, X):
        out = []
        for row in X:
            p = self.space.decode(row)
            out.append(-self.cost[p["c"]] - 0.05 * (p["x"] - self.peak[p["c"]]) ** 2)
        return np.array(out)


def test_a_category_change_re_optimises_the_real_columns():
    space = SearchSpace({"x": Real(0.0, 1.0), "c": Categorical(["a", "b"])})
    acq = _CategoryDependentPeak(space)
    start = space.encode({"x": 0.2, "c": "a"})
    score = float(acq.evaluate(start[None])[0])
    one = AcquisitionOptimizer(space, max_rounds=1)._refine(acq, start.copy(), score)
    three = AcquisitionOptimizer(space, max_rounds=3)._refine(acq, start.copy(), score)
    p_one, p_three = space.decode(one[0]), space.decode(three[0])
    assert p_one["c"] == p_three["c"] == "b"
    assert p_one["x"] == pytest.approx(0.2, abs=1e-6)  # the single pass keeps a's x
    assert p_three["x"] == pytest.approx(0.8, abs=1e-3)
    assert three[1] > one[1]
