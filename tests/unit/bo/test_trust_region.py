"""The trust region of the acquisition search (issue 14): TuRBO's success/failure rule for
its side, recomputed from the told values; suggestions after the design stay inside it on
the real columns (integer and categorical ones stay free); the acquisition optimiser honours
bounds; the setting is validated, journalled and off for journals written before it."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from repurpose.bo import (Acquisition, AcquisitionOptimizer, BayesianOptimizer, Categorical,
                          Integer, Real, SearchSpace)
from repurpose.bo import _trust_region as tr
from repurpose.exceptions import InvalidParameterError


def test_the_side_halves_after_failures_doubles_after_successes_and_restarts():
    design = [5.0, 4.0, 3.0]
    assert tr.side_length(design, 3, 2) == tr.INITIAL_LENGTH
    # max(4, n_dims) trials in a row without improvement halve it.
    assert tr.side_length(design + [3.0] * 3, 3, 2) == tr.INITIAL_LENGTH
    assert tr.side_length(design + [3.0] * 4, 3, 2) == tr.INITIAL_LENGTH / 2
    assert tr.side_length(design + [3.0] * 5, 3, 6) == tr.INITIAL_LENGTH
    assert tr.side_length(design + [3.0] * 6, 3, 6) == tr.INITIAL_LENGTH / 2
    # A gain of less than a thousandth of the best value is no success.
    assert tr.side_length(design + [2.9999] * 4, 3, 2) == tr.INITIAL_LENGTH / 2
    # Three improvements in a row double it, up to the maximum.
    assert tr.side_length(design + [2.0, 1.0, 0.5], 3, 2) == tr.MAX_LENGTH
    assert tr.side_length(design + [3.0] * 4 + [2.0, 1.0, 0.5], 3, 2) == tr.INITIAL_LENGTH
    # Seven halvings take it below the minimum: it starts again at the initial side.
    assert tr.side_length(design + [3.0] * 24, 3, 1) == pytest.approx(tr.INITIAL_LENGTH / 64)
    assert tr.side_length(design + [3.0] * 28, 3, 1) == tr.INITIAL_LENGTH


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6), max_size=60), st.integers(1, 10), st.integers(1, 12))
def test_the_side_stays_within_its_limits(values, n_initial, n_dims):
    length = tr.side_length(values, n_initial, n_dims)
    assert tr.MIN_LENGTH <= length <= tr.MAX_LENGTH
    if len(values) <= n_initial:
        assert length == tr.INITIAL_LENGTH


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0.0, 1.0), min_size=3, max_size=3), st.floats(0.005, 1.6))
def test_the_box_holds_its_centre_within_the_unit_cube(center, length):
    lower, upper = tr.bounds(np.array(center), length, 4, [0, 2])
    assert np.all(lower <= upper) and np.all(lower >= 0) and np.all(upper <= 1)
    assert lower[0] <= center[0] <= upper[0] and lower[2] <= center[2] <= upper[2]
    assert np.all(upper[[0, 2]] - lower[[0, 2]] <= length + 1e-12)
    assert (lower[1], upper[1], lower[3], upper[3]) == (0.0, 1.0, 0.0, 1.0)


class _Closeness(Acquisition):
    """Highest at 0.3 on the first column, with its gradient."""

    def evaluate(self, X):
        return -(X[:, 0] - 0.3) ** 2

    def evaluate_with_gradient(self, X):
        grad = np.zeros_like(X)
        grad[:, 0] = -2.0 * (X[:, 0] - 0.3)
        return self.evaluate(X), grad


def test_the_acquisition_optimiser_searches_within_the_bounds():
    space = SearchSpace({"x": Real(0.0, 1.0), "k": Integer(0, 4)})
    opt = AcquisitionOptimizer(space, n_candidates=64, n_local=2)
    row, _ = opt.maximize(_Closeness(), np.random.default_rng(0))
    assert row[0] == pytest.approx(0.3, abs=1e-4)
    lower, upper = np.array([0.6, 0.0]), np.array([0.9, 1.0])
    incumbent = np.array([[0.7, space.encode({"x": 0.7, "k": 2})[1]]])
    row, _ = opt.maximize(_Closeness(), np.random.default_rng(0), incumbents=incumbent,
                          bounds=(lower, upper))
    assert row[0] == pytest.approx(0.6)  # the best point of the box, on its edge


def _study(space, trust_region=True, n_worse=8):
    """A study told its design, then ``n_worse`` trials worse than the design's best."""
    opt = BayesianOptimizer(space, seed=1, n_initial=5, trust_region=trust_region)
    rng = np.random.default_rng(0)
    for k in range(5):
        opt.tell(opt.ask(), float(k))  # the first design point is the best
    for _ in range(n_worse):
        opt.tell(space.from_uniform(rng.random(space.n_dims)), 10.0 + rng.random())
    return opt


def test_suggestions_stay_in_the_box_around_the_best_trial_on_real_columns_only():
    space = SearchSpace({"x": Real(0.0, 1.0), "lr": Real(1e-4, 1.0, log=True),
                         "k": Integer(1, 5), "c": Categorical(["a", "b", "c"])})
    opt = _study(space)
    length = tr.side_length([t.value for t in opt.trials], 5, space.n_dims)
    assert length == tr.INITIAL_LENGTH / 4  # 8 failures with max(4, 4) in a row: 2 halvings
    best = space.encode(opt.trials[0].params)
    cols = space.real_columns
    for params in opt.ask(n=3):
        row = space.encode(params)
        assert np.all(np.abs(row[cols] - best[cols]) <= length / 2 + 1e-9)
    # Without the region the same study looks elsewhere: the box is what held it.
    free = _study(space, trust_region=False)
    rows = np.array([space.encode(p) for p in free.ask(n=3)])
    assert np.any(np.abs(rows[:, cols] - best[cols]) > length / 2)


def test_a_maximised_objective_centres_the_box_on_the_highest_value():
    space = SearchSpace({"x": Real(0.0, 1.0), "y": Real(0.0, 1.0)})
    opt = BayesianOptimizer(space, seed=2, n_initial=5, maximize=True)
    for k in range(5):
        opt.tell(opt.ask(), -float(k))  # the first design point is the best
    for k in range(8):
        opt.tell(opt.ask(), -10.0 - k)
    best = space.encode(opt.trials[0].params)
    row = space.encode(opt.ask())
    assert np.all(np.abs(row - best) <= tr.INITIAL_LENGTH / 4 + 1e-9)


def test_trust_region_setting_is_checked_journalled_and_off_for_older_journals(tmp_path):
    space = SearchSpace({"x": Real(0.0, 1.0)})
    with pytest.raises(InvalidParameterError, match="trust_region must be True or False"):
        BayesianOptimizer(space, trust_region="yes")
    opt = BayesianOptimizer(space, seed=0, state_path=tmp_path / "study.jsonl")
    assert opt.settings()["trust_region"] is True
    for _ in range(7):
        p = opt.ask()
        opt.tell(p, (p["x"] - 0.2) ** 2)
    resumed = BayesianOptimizer.load(tmp_path / "study.jsonl")
    assert resumed.trust_region is True and resumed.ask() == opt.ask()
    state = opt.get_state()
    del state["settings"]["trust_region"]  # as written before the setting existed
    assert BayesianOptimizer.from_state(state).trust_region is False
