"""BayesSearchCV's journal: a search stopped after k candidates and resumed ends as the
uninterrupted one, without fitting its journalled candidates again; another space, other
settings or other data are refused before any fit; torn, foreign and corrupted files; the
lock against a second process (a real one); multimetric and train scores; NaN/inf scores."""
import json
import logging
import math
import pickle
import tempfile
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import clone
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from repurpose.bo import BayesSearchCV, Real, SearchSpace, Trial, minimize
from repurpose.bo._search_journal import (candidate_record, read_candidates, search_header,
                                          split_from_record, split_record)
from repurpose.bo.state import SEARCH_CV, JournalWriter, read_journal
from repurpose.exceptions import DataError, InvalidParameterError, LockedError, ModelFileError

# Every fit of a CountingLogistic, in this process: the C it was fitted with.
FITS = []


class CountingLogistic(LogisticRegression):
    """LogisticRegression that records each of its fits in FITS."""

    def fit(self, X, y, sample_weight=None):
        FITS.append(self.C)
        return super().fit(X, y, sample_weight=sample_weight)


class FailingLogistic(CountingLogistic):
    """Its fit fails for C below 0.05, as a diverging model would."""

    def fit(self, X, y, sample_weight=None):
        if self.C < 0.05:
            FITS.append(self.C)
            raise ValueError("diverged")
        return super().fit(X, y, sample_weight=sample_weight)


@pytest.fixture(autouse=True)
def _no_fits_yet():
    FITS.clear()


@pytest.fixture(scope="module")
def data():
    return make_classification(n_samples=120, n_features=8, n_informative=4, n_classes=3,
                               random_state=0)


def _search(**kw):
    params = dict(estimator=CountingLogistic(max_iter=300),
                  search_space={"C": Real(1e-3, 1e2, log=True)}, n_iter=4, cv=3,
                  random_state=0)
    params.update(kw)
    return BayesSearchCV(**params)


def _lines(path):
    return path.read_text().splitlines()


def _assert_same_search(a, b, times=False):
    """The same candidates, scores and best candidate (and fold times, if ``times``)."""
    ra, rb = a.cv_results_, b.cv_results_
    assert ra["params"] == rb["params"]
    assert sorted(ra) == sorted(rb)
    for key in ra:
        if key == "params" or "time" in key and not times:
            continue
        np.testing.assert_array_equal(np.asarray(ra[key]), np.asarray(rb[key]), err_msg=key)
    assert a.best_index_ == b.best_index_ and a.best_params_ == b.best_params_
    assert a.best_score_ == b.best_score_ or math.isnan(a.best_score_)
    assert [(t.params, t.value, t.status) for t in a.optimizer_.trials] == \
        [(t.params, t.value, t.status) for t in b.optimizer_.trials]
    assert a.optimizer_.seed == b.optimizer_.seed


@pytest.mark.parametrize("n_points,k,n", [(1, 3, 7), (2, 4, 7)])
def test_resumed_search_equals_the_uninterrupted_one_without_refitting(tmp_path, data,
                                                                        n_points, k, n):
    X, y = data
    path = tmp_path / "search.jsonl"
    _search(n_iter=k, n_points=n_points, state_path=path).fit(X, y)
    assert len(FITS) == 3 * k + 1 and len(_lines(path)) == 1 + k
    FITS.clear()
    resumed = _search(n_iter=n, n_points=n_points, state_path=path).fit(X, y)
    new = [p["C"] for p in resumed.cv_results_["params"][k:]]
    # Only the new candidates (3 folds each) and the refit of the best: none journalled.
    assert sorted(FITS) == sorted([c for c in new for _ in range(3)] + [resumed.best_params_["C"]])
    assert len(_lines(path)) == 1 + n
    straight = _search(n_iter=n, n_points=n_points).fit(X, y)
    _assert_same_search(resumed, straight)
    assert resumed.best_estimator_.C == straight.best_estimator_.C
    assert not hasattr(resumed, "_search_run")
    pickle.loads(pickle.dumps(resumed))  # nothing of the run (journal, lock) is left on it


def test_journal_holds_each_candidate_with_its_folds(tmp_path, data):
    X, y = data
    path = tmp_path / "search.jsonl"
    search = _search(n_iter=3, state_path=path).fit(X, y)
    header, *records = [json.loads(line) for line in _lines(path)]
    assert header["format"] == "repurpose.bo.search_cv" and header["format_version"] == 1
    assert header["settings"]["optimizer"]["seed"] == 0 and header["settings"]["n_splits"] == 3
    assert "n_iter" not in header["settings"]
    assert len(records) == 3
    for i, record in enumerate(records):
        assert record["params"] == search.cv_results_["params"][i]
        assert record["batch"] == [i, 1] and len(record["splits"]) == 3
        scores = [split["test_scores"] for split in record["splits"]]
        assert scores == [search.cv_results_[f"split{j}_test_score"][i] for j in range(3)]
        assert record["value"] == pytest.approx(np.mean(scores)) and record["status"] == "ok"
    assert not (tmp_path / ".search.jsonl.lock").exists()
    assert clone(search).get_params()["state_path"] == path


def test_finished_search_is_rebuilt_from_its_journal_with_only_the_refit(tmp_path, data):
    X, y = data
    path = tmp_path / "search.jsonl"
    first = _search(state_path=path).fit(X, y)
    text = path.read_text()
    FITS.clear()
    again = _search(state_path=path).fit(X, y)
    assert FITS == [again.best_params_["C"]]  # the refit, nothing else
    _assert_same_search(again, first, times=True)  # the journalled fold times too
    assert again.n_splits_ == 3 and again.multimetric_ is False and again.refit_time_ >= 0
    assert again.score(X, y) == first.score(X, y)
    assert path.read_text() == text  # nothing written
    FITS.clear()
    assert not hasattr(_search(refit=False, state_path=path).fit(X, y), "best_estimator_")
    assert FITS == []
    with pytest.warns(UserWarning, match="holds 4 candidates, more than n_iter=2; "
                                         "cv_results_ keeps them all"):
        fewer = _search(n_iter=2, state_path=path).fit(X, y)
    assert fewer.cv_results_["params"] == first.cv_results_["params"]


def test_random_state_none_resumes_with_the_journals_seed(tmp_path, data):
    X, y = data
    path = tmp_path / "search.jsonl"
    _search(n_iter=2, random_state=None, state_path=path).fit(X, y)
    seed = json.loads(_lines(path)[0])["settings"]["optimizer"]["seed"]
    resumed = _search(n_iter=6, random_state=None, state_path=path).fit(X, y)
    _assert_same_search(resumed, _search(n_iter=6, random_state=seed).fit(X, y))


@pytest.mark.parametrize("change,words", [
    (dict(random_state=1), "random_state=1 differs from 0 stored in"),
    (dict(acquisition="ucb"), "acquisition='ucb' differs from 'ei'"),
    (dict(n_initial=3), "n_initial=3 differs from 5"),
    (dict(n_points=2), "n_points=2 differs from 1"),
    (dict(scoring="f1_macro"), "scoring='f1_macro' differs from None"),
    (dict(cv=4), "n_splits=4 differs from 3"),
    (dict(return_train_score=True), "return_train_score=True differs from False"),
    (dict(error_score=0.0), "error_score=0.0 differs from 'nan'"),
    (dict(search_space={"C": Real(1e-2, 1e2, log=True)}), "differs from the space stored"),
    (dict(estimator=CountingLogistic(max_iter=300, tol=1e-3)),
     "estimator__tol=0.001 differs from 0.0001"),
    (dict(estimator=LogisticRegression(max_iter=300)),
     "estimator='sklearn.LogisticRegression' differs from 'test_search_cv_journal"),
])
def test_other_settings_error(tmp_path, data, change, words):
    X, y = data
    path = tmp_path / "search.jsonl"
    _search(n_iter=2, state_path=path).fit(X, y)
    text, fits = path.read_text(), len(FITS)
    with pytest.raises(InvalidParameterError, match=words) as info:
        _search(n_iter=3, state_path=path, **change).fit(X, y)
    assert "another state_path to start a new search" in str(info.value)
    assert len(FITS) == fits and path.read_text() == text  # refused before any fit
    assert not (tmp_path / ".search.jsonl.lock").exists()


def test_settings_that_do_not_change_results_may_change(tmp_path, data):
    X, y = data
    path = tmp_path / "search.jsonl"
    _search(n_iter=2, state_path=path, verbose=0).fit(X, y)
    resumed = _search(n_iter=3, state_path=path, verbose=1, n_jobs=1, refit=False,
                      estimator=CountingLogistic(max_iter=300, verbose=0, n_jobs=1)).fit(X, y)
    assert len(resumed.cv_results_["params"]) == 3


@pytest.mark.parametrize("other,words", [
    (lambda X, y: (X[:90], y[:90], {}), r"X has shape \(90, 8\) here, \(120, 8\) in the"),
    (lambda X, y: (X.astype(np.float32), y, {}), "X has dtype float32 here, float64 in the"),
    (lambda X, y: (X + 1e-9, y, {}), r"X holds other values .* \(same shape \(120, 8\)\)"),
    (lambda X, y: (X, np.roll(y, 1), {}), "y holds other values"),
    (lambda X, y: (X, y, dict(cv=StratifiedKFold(3, shuffle=True, random_state=1))),
     "other CV splits: .*a cv that shuffles needs a fixed random_state"),
])
def test_other_data_error(tmp_path, data, other, words):
    X, y = data
    path = tmp_path / "search.jsonl"
    _search(n_iter=2, state_path=path).fit(X, y)
    X2, y2, change = other(X, y)
    text, fits = path.read_text(), len(FITS)
    with pytest.raises(DataError, match=words) as info:
        _search(n_iter=3, state_path=path, **change).fit(X2, y2)
    assert "Resume with the same X, y, groups and cv" in str(info.value)
    assert len(FITS) == fits and path.read_text() == text


def test_torn_last_line_is_dropped_and_its_candidate_runs_again(tmp_path, data, caplog):
    X, y = data
    path = tmp_path / "search.jsonl"
    _search(state_path=path).fit(X, y)
    path.write_text(path.read_text()[:-40])  # killed while writing the 4th candidate's line
    FITS.clear()
    with caplog.at_level(logging.WARNING, logger="repurpose.bo.state"):
        resumed = _search(n_iter=5, state_path=path).fit(X, y)
    assert "torn last line 5" in caplog.text and "run again" in caplog.text
    assert len(FITS) == 2 * 3 + 1  # the torn candidate and a new one, then the refit
    _assert_same_search(resumed, _search(n_iter=5).fit(X, y))
    lines = _lines(path)  # rewritten whole, then appended to
    assert len(lines) == 6 and all(json.loads(line) for line in lines)


def test_unfinished_batch_is_completed_as_the_uninterrupted_search_would(tmp_path, data):
    X, y = data
    path = tmp_path / "search.jsonl"
    _search(n_iter=6, n_points=3, state_path=path).fit(X, y)
    lines = _lines(path)
    path.write_text("\n".join(lines[:6]) + "\n")  # killed after 2 of the 2nd batch's 3 lines
    FITS.clear()
    resumed = _search(n_iter=7, n_points=3, state_path=path).fit(X, y)
    assert len(FITS) == 2 * 3 + 1  # the batch's third candidate, one more, the refit
    _assert_same_search(resumed, _search(n_iter=7, n_points=3).fit(X, y))


def test_unfinished_batch_of_other_suggestions_is_told_as_journalled(tmp_path, data):
    X, y = data
    path = tmp_path / "search.jsonl"
    _search(n_iter=6, n_points=3, state_path=path).fit(X, y)
    lines = _lines(path)
    record = json.loads(lines[5])  # the 2nd batch's 2nd candidate, at another C
    record["params"]["C"] = 1.0
    path.write_text("\n".join(lines[:5] + [json.dumps(record)]) + "\n")
    FITS.clear()
    resumed = _search(n_iter=7, n_points=3, state_path=path).fit(X, y)
    assert len(FITS) == 2 * 3 + 1  # nothing journalled is fitted again
    assert resumed.cv_results_["params"][4] == {"C": 1.0}
    assert [t.params for t in resumed.optimizer_.trials[:5]] == resumed.cv_results_["params"][:5]


@pytest.mark.parametrize("content,words", [
    (None, "is not a BayesSearchCV journal file"),  # a minimize() journal
    ("hello\n", "not valid JSON at line 1"),
    ("", "is empty"),
])
def test_foreign_or_corrupted_file_error(tmp_path, data, content, words):
    X, y = data
    path = tmp_path / "search.jsonl"
    if content is None:
        minimize(lambda p: p["C"], SearchSpace({"C": Real(1e-3, 1e2, log=True)}), 2, seed=0,
                 state_path=path)
    else:
        path.write_text(content)
    text = path.read_text()
    with pytest.raises(ModelFileError, match=words):
        _search(state_path=path).fit(X, y)
    assert FITS == [] and path.read_text() == text


def test_corrupted_candidate_line_error(tmp_path, data):
    X, y = data
    path = tmp_path / "search.jsonl"
    _search(n_iter=3, state_path=path).fit(X, y)
    lines = _lines(path)
    record = json.loads(lines[2])
    del record["splits"]
    path.write_text("\n".join([lines[0], lines[1], json.dumps(record), lines[3]]) + "\n")
    FITS.clear()
    with pytest.raises(ModelFileError, match="line 3 is not a valid candidate .*'splits'"):
        _search(n_iter=5, state_path=path).fit(X, y)
    header = json.loads(lines[0])
    del header["settings"]["data"]
    path.write_text(json.dumps(header) + "\n")
    with pytest.raises(ModelFileError, match=r"settings lack \['data'\]"):
        _search(n_iter=5, state_path=path).fit(X, y)
    assert FITS == []


def test_bad_state_path_error_before_any_fit(tmp_path, data):
    X, y = data
    with pytest.raises(FileNotFoundError, match="does not exist; create it first"):
        _search(state_path=tmp_path / "absent" / "search.jsonl").fit(X, y)
    with pytest.raises(InvalidParameterError, match="is a folder; it must name the journal"):
        _search(state_path=tmp_path).fit(X, y)
    with pytest.raises(InvalidParameterError, match="state_path must be a file path"):
        _search(state_path=3).fit(X, y)
    splits = iter(list(StratifiedKFold(3).split(X, y)))
    with pytest.raises(InvalidParameterError, match="one-shot iterator .* Pass list"):
        _search(state_path=tmp_path / "search.jsonl", cv=splits).fit(X, y)
    assert FITS == [] and list(tmp_path.iterdir()) == []


# A search run as its own process: `python -c SEARCH JOURNAL GATE`; it prints "running" at each
# fit, and its first fit waits (up to 60 s) until the file GATE exists.
SEARCH = textwrap.dedent("""
    import os, sys, time
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression
    from repurpose.bo import BayesSearchCV, Real
    class Waiting(LogisticRegression):
        def fit(self, X, y, sample_weight=None):
            print("running", flush=True)
            deadline = time.monotonic() + 60
            while not os.path.exists(sys.argv[2]) and time.monotonic() < deadline:
                time.sleep(0.05)
            return super().fit(X, y, sample_weight=sample_weight)
    X, y = make_classification(n_samples=120, n_features=8, n_informative=4, n_classes=3,
                               random_state=0)
    BayesSearchCV(Waiting(max_iter=300), {"C": Real(1e-3, 1e2, log=True)}, n_iter=2, cv=3,
                  random_state=0, state_path=sys.argv[1]).fit(X, y)
""")


def test_second_process_on_the_journal_is_refused(tmp_path, data):
    X, y = data
    path, gate = tmp_path / "search.jsonl", tmp_path / "go"
    other = subprocess.Popen([sys.executable, "-c", SEARCH, str(path), str(gate)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert other.stdout.readline().strip() == "running", other.stderr.read()
        with pytest.raises(LockedError, match=f"in use by process {other.pid} on"):
            _search(state_path=path).fit(X, y)
        assert FITS == []
    finally:
        gate.touch()
        code = other.wait(timeout=120)
        errors = other.stderr.read()
        other.stdout.close()
        other.stderr.close()
    assert code == 0, errors
    assert len(_lines(path)) == 3  # the other search's 2 candidates, nothing of ours
    assert not (tmp_path / ".search.jsonl.lock").exists()


def test_multimetric_and_train_scores_round_trip(tmp_path, data):
    X, y = data
    path = tmp_path / "search.jsonl"
    options = dict(scoring=["accuracy", "f1_macro"], refit="f1_macro", return_train_score=True)
    _search(n_iter=3, state_path=path, **options).fit(X, y)
    split = json.loads(_lines(path)[1])["splits"][0]
    assert set(split["test_scores"]) == set(split["train_scores"]) == {"accuracy", "f1_macro"}
    FITS.clear()
    resumed = _search(n_iter=5, state_path=path, **options).fit(X, y)
    assert len(FITS) == 2 * 3 + 1
    straight = _search(n_iter=5, **options).fit(X, y)
    _assert_same_search(resumed, straight)
    assert "split2_train_accuracy" in resumed.cv_results_ and resumed.multimetric_
    FITS.clear()
    again = _search(n_iter=5, state_path=path, **options).fit(X, y)  # all journalled
    assert len(FITS) == 1 and again.multimetric_
    _assert_same_search(again, resumed, times=True)
    assert set(again.scorer_) == {"accuracy", "f1_macro"}


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.FitFailedWarning")  # fits fail on purpose
@pytest.mark.filterwarnings("ignore:One or more of the test scores are non-finite:UserWarning")
def test_failed_candidates_round_trip_as_nan(tmp_path, data):
    X, y = data
    path = tmp_path / "search.jsonl"
    # One batch of 5: scikit-learn raises when every fit of an evaluate_candidates call fails.
    options = dict(estimator=FailingLogistic(max_iter=300), error_score=np.nan, n_points=5)
    first = _search(n_iter=5, state_path=path, **options).fit(X, y)
    statuses = [t.status for t in first.optimizer_.trials]
    assert "failed" in statuses and "ok" in statuses
    failed = statuses.index("failed")
    record = json.loads(_lines(path)[1 + failed])
    assert record["value"] is None and record["error"] == "nan"
    assert record["splits"][0]["test_scores"] == "nan"
    assert "ValueError: diverged" in record["splits"][0]["fit_error"]
    FITS.clear()
    again = _search(n_iter=5, state_path=path, **options).fit(X, y)
    assert len(FITS) == 1
    assert np.isnan(again.cv_results_["mean_test_score"][failed])
    _assert_same_search(again, first, times=True)


_score = st.floats(allow_nan=True, allow_infinity=True)
_scores = st.one_of(_score, st.dictionaries(st.sampled_from(["accuracy", "f1", "nll"]),
                                            _score, min_size=1))


def _same(a, b):
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, float):
        return isinstance(b, float) and (a == b or math.isnan(a) and math.isnan(b))
    return a == b


_split = st.builds(
    lambda test, train, times, n_test, error: dict(
        {"fit_error": error, "test_scores": test, "n_test_samples": n_test,
         "fit_time": times[0], "score_time": times[1]},
        **({} if train is None else {"train_scores": train})),
    _scores, st.one_of(st.none(), _scores), st.tuples(st.floats(0, 1e6), st.floats(0, 1e6)),
    st.integers(1, 10 ** 6), st.one_of(st.none(), st.text(max_size=40)))


@settings(max_examples=60, deadline=None)
@given(out=_split)
def test_split_results_round_trip_through_strict_json(out):
    line = json.dumps(split_record(out), allow_nan=False)  # as the journal writes it
    assert _same(split_from_record(json.loads(line)), out)


@settings(max_examples=30, deadline=None)
@given(splits=st.lists(_split, min_size=1, max_size=3),
       value=st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False)),
       c=st.floats(1e-3, 1e2), seconds=st.floats(0, 1e4))
def test_candidate_lines_round_trip_through_the_journal(splits, value, c, seconds):
    space = SearchSpace({"C": Real(1e-3, 1e2, log=True)})
    trial = Trial({"C": c}, value, "ok" if value is not None else "failed", seconds,
                  None if value is not None else "nan")  # error_score=np.nan: a NaN mean
    with tempfile.TemporaryDirectory() as folder:
        path = f"{folder}/search.jsonl"
        writer = JournalWriter(path, lambda: search_header(space, {}))
        writer.write(candidate_record(trial, splits, (0, 1)))
        (candidate,) = read_candidates(path, read_journal(path, SEARCH_CV), space, len(splits))
    assert candidate.trial == {"params": {"C": c}, "value": value, "status": trial.status,
                               "seconds": seconds, "error": trial.error}
    assert candidate.batch == (0, 1)
    assert all(_same(a, b) for a, b in zip(candidate.splits, splits))
