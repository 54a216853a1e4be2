"""BayesSearchCV when every fit of a round fails (which ends scikit-learn's own searches):
the round's candidates become failed trials and the search goes on, with n_points=1 and 3,
their cv_results_ rows holding error_score, journalled and resumed; only a search whose every
fit failed raises scikit-learn's error; error_score='raise' still raises at the first one."""
import json
import math

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.exceptions import FitFailedWarning
from sklearn.linear_model import LogisticRegression

from repurpose.bo import BayesSearchCV, Real

pytestmark = [
    pytest.mark.filterwarnings("ignore::sklearn.exceptions.FitFailedWarning"),
    pytest.mark.filterwarnings("ignore:One or more of the (test|train) scores are non-finite"),
]

LIMIT = 100.0
# Every fit, in this process: the C it was fitted with (fits that fail included).
FITS = []


class PickyLogistic(LogisticRegression):
    """LogisticRegression whose fit refuses C below LIMIT (5/6 of the searched range), as a
    model that diverges there would: every fold of such a candidate fails."""

    def fit(self, X, y, sample_weight=None):
        FITS.append(self.C)
        if self.C < LIMIT:
            raise ValueError(f"C={self.C:.6g} is below {LIMIT:g}")
        return super().fit(X, y, sample_weight=sample_weight)


@pytest.fixture(autouse=True)
def _no_fits_yet():
    FITS.clear()


@pytest.fixture(scope="module")
def data():
    return load_iris(return_X_y=True)


def _search(**kw):
    params = dict(estimator=PickyLogistic(max_iter=300),
                  search_space={"C": Real(1e-3, 1e3, log=True)}, n_iter=9, cv=3,
                  random_state=1)
    params.update(kw)
    return BayesSearchCV(**params)


def _failed(search):
    return [t.status == "failed" for t in search.optimizer_.trials]


def _whole_rounds_failed(search, n_points):
    failed = _failed(search)
    return [all(failed[i:i + n_points]) for i in range(0, len(failed), n_points)]


def _assert_same_search(a, b):
    """The same candidates, scores, ranks, best candidate and trials (not the times)."""
    ra, rb = a.cv_results_, b.cv_results_
    assert ra["params"] == rb["params"] and sorted(ra) == sorted(rb)
    for key in ra:
        if key != "params" and "time" not in key:
            np.testing.assert_array_equal(np.asarray(ra[key]), np.asarray(rb[key]), err_msg=key)
    assert a.best_index_ == b.best_index_ and a.best_params_ == b.best_params_
    assert [(t.params, t.value, t.status, t.error) for t in a.optimizer_.trials] == \
        [(t.params, t.value, t.status, t.error) for t in b.optimizer_.trials]


@pytest.mark.parametrize("n_points", [1, 3])
def test_round_whose_fits_all_fail_is_a_failed_trial(data, n_points):
    X, y = data
    with pytest.warns(FitFailedWarning, match="BayesSearchCV records them as failed trials"):
        search = _search(n_points=n_points).fit(X, y)
    # Preconditions on the suggestions of random_state=1 (another optimiser may change them).
    rounds = _whole_rounds_failed(search, n_points)
    assert rounds[0] and not all(rounds), "pick a random_state whose first round fails"
    res = search.cv_results_
    assert len(res["params"]) == 9
    for i, trial in enumerate(search.optimizer_.trials):
        assert res["params"][i] == trial.params
        splits = [res[f"split{k}_test_score"][i] for k in range(3)]
        if trial.params["C"] < LIMIT:  # scikit-learn's record of failed fits: error_score
            assert all(math.isnan(s) for s in splits) and math.isnan(res["mean_test_score"][i])
            assert res["rank_test_score"][i] == res["rank_test_score"].max()
            assert trial.status == "failed" and trial.value is None
            # Told the fit error; in a round scikit-learn recorded (others in it did not
            # fail), the NaN mean score as before.
            assert trial.error == (f"ValueError: C={trial.params['C']:.6g} is below 100"
                                   if rounds[i // n_points] else "nan")
            assert trial.seconds >= 0
        else:
            assert trial.status == "ok" and trial.value == res["mean_test_score"][i] > 0.5
    assert search.best_params_["C"] >= LIMIT and search.best_estimator_.C >= LIMIT
    assert search.best_score_ == max(t.value for t in search.optimizer_.trials if t.value)


def test_last_rounds_failing_keep_every_row_and_the_best(data):
    # random_state=1, n_points=1: candidates 1-3 fail (before any round scikit-learn
    # records) and so does the last one (after the last round it records).
    X, y = data
    search = _search(n_points=1, error_score=-1.0).fit(X, y)
    failed = _failed(search)
    assert failed[:3] == [True] * 3 and failed[-1], "pick a random_state that does this"
    res = search.cv_results_
    assert len(res["params"]) == 9 and len(res["mean_fit_time"]) == 9
    np.testing.assert_array_equal(res["mean_test_score"][np.array(failed)], -1.0)
    assert search.best_index_ == int(np.argmax(res["mean_test_score"]))
    assert search.best_params_ == res["params"][search.best_index_]
    assert search.best_estimator_.C == search.best_params_["C"] >= LIMIT
    assert search.n_splits_ == 3 and search.multimetric_ is False


def test_failed_round_with_several_metrics(data):
    X, y = data
    search = _search(n_points=3, scoring=["accuracy", "neg_log_loss"], refit="accuracy",
                     return_train_score=True).fit(X, y)
    failed = np.array(_failed(search))
    assert failed[:3].all() and not failed.all()
    res = search.cv_results_
    for name in ("test_accuracy", "test_neg_log_loss", "train_accuracy"):
        assert np.isnan(res[f"mean_{name}"][failed]).all()
        assert np.isfinite(res[f"mean_{name}"][~failed]).all()
    assert search.best_params_["C"] >= LIMIT


@pytest.mark.parametrize("n_points", [1, 3])
def test_failed_rounds_are_journalled_and_resumed(tmp_path, data, n_points):
    X, y = data
    whole = _search(n_points=n_points).fit(X, y)
    n_fits = len(FITS)
    path = tmp_path / "search.jsonl"
    # The first 3 candidates all fail: that search failed, and says so as scikit-learn does.
    with pytest.raises(ValueError, match=r"All the 9 fits failed"):
        _search(n_points=n_points, n_iter=3, state_path=path).fit(X, y)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(lines) == 1 + 3
    for record in lines[1:]:
        assert record["status"] == "failed" and record["value"] is None
        assert record["error"].startswith("ValueError: C=")
        assert [split["test_scores"] for split in record["splits"]] == ["nan"] * 3
        assert all("ValueError: C=" in split["fit_error"] for split in record["splits"])
        assert [split["n_test_samples"] for split in record["splits"]] == [50] * 3
    FITS.clear()
    resumed = _search(n_points=n_points, state_path=path).fit(X, y)
    assert len(FITS) == n_fits - 9  # the journalled candidates were not fitted again
    _assert_same_search(resumed, whole)
    # A finished search is rebuilt from its journal, fitting only the best candidate.
    FITS.clear()
    again = _search(n_points=n_points, state_path=path).fit(X, y)
    assert len(FITS) == 1
    _assert_same_search(again, whole)


def test_batch_of_failures_journalled_in_part_is_completed(tmp_path, data):
    X, y = data
    path = tmp_path / "search.jsonl"
    whole = _search(n_points=3, state_path=path).fit(X, y)
    header, first, *_ = path.read_text().splitlines()
    path.write_text(f"{header}\n{first}\n")  # killed after journalling 1 of its first 3
    FITS.clear()
    resumed = _search(n_points=3, state_path=path).fit(X, y)
    assert FITS[:6] == [p["C"] for p in whole.cv_results_["params"][1:3] for _ in range(3)]
    _assert_same_search(resumed, whole)


def test_search_whose_every_fit_failed_raises_sklearn_error(tmp_path, data):
    X, y = data
    path = tmp_path / "search.jsonl"
    estimator = PickyLogistic(max_iter=300)
    search = _search(estimator=estimator, search_space={"C": Real(1e-3, 1.0, log=True)},
                     n_iter=4, n_points=1, state_path=path)
    with pytest.raises(ValueError, match=r"(?s)^\nAll the 12 fits failed\..*3 fits failed "
                                         r"with the following error:.*ValueError: C="):
        search.fit(X, y)
    assert len(path.read_text().splitlines()) == 1 + 4
    FITS.clear()
    with pytest.raises(ValueError, match=r"All the 12 fits failed"):  # resumed: no fit
        search.fit(X, y)
    assert FITS == []


def test_error_score_raise_raises_the_first_failure(tmp_path, data):
    X, y = data
    path = tmp_path / "search.jsonl"
    with pytest.raises(ValueError, match=r"^C=\S+ is below 100$"):
        _search(error_score="raise", state_path=path).fit(X, y)
    assert len(FITS) == 1 and not path.exists()  # nothing was journalled
