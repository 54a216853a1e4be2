"""An objective whose signature cannot take what a trial passes is an error before the first
trial, naming the objective, what it is given and what it accepts; an objective that takes
the arguments and raises TypeError inside is a failed trial, as any other exception."""
import functools
from concurrent.futures import ThreadPoolExecutor

import pytest

from repurpose.bo import (BayesianOptimizer, Real, SearchSpace, minimize,
                          minimize_with_early_stopping)
from repurpose.exceptions import InvalidParameterError

SPACE = SearchSpace({"lr": Real(1e-4, 1e-1, log=True), "wd": Real(0.0, 0.1)})
OPTIONS = dict(n_candidates=64, n_local=1)


def by_keywords(lr, wd):
    return lr + wd


def needs_scale(params, scale):
    return params["lr"] * scale


def test_objective_taking_the_parameters_by_name_fails_before_any_trial(tmp_path):
    path = tmp_path / "study.jsonl"
    with pytest.raises(InvalidParameterError) as info:
        minimize(by_keywords, SPACE, 5, seed=0, state_path=path)
    message = str(info.value)
    assert "The objective by_keywords(lr, wd) cannot be called as by_keywords(params)" in message
    assert "missing a required argument: 'wd'" in message
    assert "one dict of the parameters 'lr', 'wd'" in message
    assert "lambda params: by_keywords(**params)" in message
    assert not path.exists()  # no trial was recorded


@pytest.mark.parametrize("objective, words", [
    (needs_scale, "missing a required argument: 'scale'"),
    (lambda: 0.0, "too many positional arguments"),
    (functools.partial(needs_scale, scale=2.0), None),  # binds: a valid objective
])
def test_signatures_are_bound_before_the_first_trial(objective, words):
    opt = BayesianOptimizer(SPACE, seed=0, **OPTIONS)
    if words is None:
        assert len(opt.run(objective, 3).history) == 3
        return
    with pytest.raises(InvalidParameterError, match=words):
        opt.run(objective, 3)
    assert opt.trials == []


def test_parallel_run_checks_the_signature_before_submitting():
    with ThreadPoolExecutor(2) as pool:
        with pytest.raises(InvalidParameterError, match="by_keywords"):
            minimize(by_keywords, SPACE, 4, seed=0, n_workers=2, client=pool)


def test_type_error_inside_the_objective_is_a_failed_trial():
    def objective(params):
        return params["lr"] + "oops"  # its own TypeError, not a signature problem

    res = minimize(objective, SPACE, 3, seed=0)
    assert [t.status for t in res.history] == ["failed"] * 3
    assert all(t.error.startswith("TypeError: unsupported operand") for t in res.history)


def test_early_stopping_objective_without_report_fails_before_any_trial():
    calls = []

    def train(params):
        calls.append(params)

    with pytest.raises(InvalidParameterError) as info:
        minimize_with_early_stopping(train, SPACE, max_budget=3, n_trials=2, seed=0,
                                     optimizer_options=OPTIONS)
    assert "train(params) cannot be called as train(params, report)" in str(info.value)
    assert "report(budget, value)" in str(info.value)
    assert calls == []


def test_a_non_callable_objective_is_named():
    with pytest.raises(InvalidParameterError, match="objective must be a callable"):
        minimize("not a function", SPACE, 3, seed=0)
