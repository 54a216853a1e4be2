"""Output warping of the surrogate's targets and the rounds of the acquisition's local search
(issue 14): the transform keeps the order of the values and pulls in heavy tails; the
setting is validated, journalled, and off for journals written before it existed; a
category change in the local search re-optimises the real columns for the new category."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.stats import skew

from repurpose.bo import (Acquisition, BayesianOptimizer, Categorical, Real, SearchSpace)
from repurpose.bo.optimizer import AcquisitionOptimizer
from repurpose.bo.surrogate import warp_outputs
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


def test_output_warping_setting_is_checked_journalled_and_off_for_older_journals(tmp_path):
    space = SearchSpace({"x": Real(0.0, 1.0)})
    with pytest.raises(InvalidParameterError, match="output_warping must be True or False"):
        BayesianOptimizer(space, output_warping="yes")
    opt = BayesianOptimizer(space, seed=0)
    assert opt.settings()["output_warping"] is True
    state = opt.get_state()
    del state["settings"]["output_warping"]  # as written before the setting existed
    assert BayesianOptimizer.from_state(state).output_warping is False


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
