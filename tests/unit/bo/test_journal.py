"""The JSON-lines journal of BO studies: round trips, torn last lines, corruption, version 1
state files, and never overwriting a file that is not this study."""
import json
import logging
import math
import os
import tempfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from repurpose.bo import BayesianOptimizer, Categorical, Integer, Real, SearchSpace, minimize
from repurpose.bo.scheduler import minimize_with_early_stopping
from repurpose.bo.state import FORMAT, STATE, read_journal, read_state
from repurpose.exceptions import ModelFileError

FAST = dict(n_candidates=64, n_local=1, n_restarts=1)
SPACE = SearchSpace({"x": Real(-2.0, 2.0), "n": Integer(1, 9, log=True),
                     "c": Categorical(["a", None, 3, True])})


def quadratic(p):
    return (p["x"] - 0.5) ** 2 + abs(p["n"] - 3) + (p["c"] != "a")


def _lines(path):
    return path.read_text().splitlines()


def _tell_all(path, told):
    opt = BayesianOptimizer(SPACE, seed=5, state_path=path, **FAST)
    for params, value in told:
        opt.tell(params, value, seconds=0.25)
    return opt


_params = st.fixed_dictionaries({
    "x": st.floats(-2.0, 2.0, allow_nan=False),
    "n": st.integers(1, 9),
    "c": st.sampled_from(["a", None, 3, True]),
})
_values = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.none(),
                    st.integers(-10 ** 6, 10 ** 6), st.just(RuntimeError("diverged")))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(told=st.lists(st.tuples(_params, _values), min_size=1, max_size=8))
def test_any_sequence_of_trials_round_trips(told):
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "study.jsonl")
        opt = _tell_all(path, told)
        back = BayesianOptimizer.load(path)
        assert back.get_state() == opt.get_state()
        for a, b in zip(back.trials, opt.trials):  # same objects, not just equal ones
            assert [type(v) for v in a.params.values()] == [type(v) for v in b.params.values()]
        assert back.result() == opt.result()
        with open(path) as handle:
            assert len(handle.read().splitlines()) == 1 + len(told)


def test_journal_appends_one_line_per_trial(tmp_path):
    path = tmp_path / "study.jsonl"
    opt = BayesianOptimizer(SPACE, seed=1, state_path=path, **FAST)
    assert not path.exists()  # written at the first tell
    opt.tell({"x": 0.1, "n": 2, "c": "a"}, 1.0)
    first = _lines(path)
    opt.tell({"x": 0.2, "n": 3, "c": None}, float("nan"))
    lines = _lines(path)
    assert lines[:2] == first and len(lines) == 3  # appended, not rewritten
    header = json.loads(lines[0])
    assert header["format"] == FORMAT and header["format_version"] == 2
    assert set(header) == {"format", "format_version", "space", "settings"}
    assert json.loads(lines[2])["status"] == "failed"


def test_torn_last_line_is_dropped_and_the_study_resumes_as_uninterrupted(tmp_path, caplog):
    path = tmp_path / "study.jsonl"
    minimize(quadratic, SPACE, n_trials=7, seed=2, state_path=path)
    text = path.read_text()
    path.write_text(text[:-25])  # killed while writing the 7th trial's line
    with caplog.at_level(logging.WARNING, logger="repurpose.bo.state"):
        opt = BayesianOptimizer.load(path)
    assert len(opt.trials) == 6
    assert "torn last line 8" in caplog.text and "run again" in caplog.text
    calls = []

    def objective(p):
        calls.append(p)
        return quadratic(p)

    resumed = minimize(objective, SPACE, n_trials=9, state_path=path)
    straight = minimize(quadratic, SPACE, n_trials=9, seed=2)
    assert len(calls) == 3  # the torn trial and two new ones
    assert [t.params for t in resumed.history] == [t.params for t in straight.history]
    lines = _lines(path)  # the file was rewritten whole before appending again
    assert len(lines) == 10 and all(json.loads(line) for line in lines)


def test_last_line_without_newline_is_kept(tmp_path):
    path = tmp_path / "study.jsonl"
    minimize(quadratic, SPACE, n_trials=3, seed=0, state_path=path)
    path.write_text(path.read_text().rstrip("\n"))
    opt = BayesianOptimizer.load(path)
    assert len(opt.trials) == 3
    opt.tell(opt.ask(), 1.0)
    assert len(read_journal(path, STATE).records) == 4


def test_corruption_before_the_last_line_error(tmp_path):
    path = tmp_path / "study.jsonl"
    minimize(quadratic, SPACE, n_trials=4, seed=0, state_path=path)
    lines = _lines(path)
    lines[2] = lines[2][:10]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ModelFileError, match="line 3 of 5 is not valid JSON.*corrupted"):
        BayesianOptimizer.load(path)
    with pytest.raises(ModelFileError, match="study.jsonl"):
        minimize(quadratic, SPACE, n_trials=5, state_path=path)
    assert _lines(path)[2] == lines[2]  # left as it was


def test_trial_line_without_keys_error(tmp_path):
    path = tmp_path / "study.jsonl"
    minimize(quadratic, SPACE, n_trials=2, seed=0, state_path=path)
    with open(path, "a") as handle:
        handle.write('{"params": {}}\n')
    with pytest.raises(ModelFileError, match="line 4 is a trial without"):
        BayesianOptimizer.load(path)


@pytest.mark.parametrize("header, words", [
    ({"format": "something.else", "format_version": 1}, "is not a BO state file"),
    ({"format": FORMAT, "format_version": 3, "space": {}, "settings": {}},
     "format_version 3, newer than this repurpose .* reads \\(2\\)\\. Upgrade"),
    ({"format": FORMAT, "format_version": 2}, "header without \\['space', 'settings'\\]"),
    ([1, 2], "line 1 \\(expected a JSON object, got list\\)"),
])
def test_bad_header_error(tmp_path, header, words):
    path = tmp_path / "study.jsonl"
    path.write_text(json.dumps(header) + "\n")
    with pytest.raises(ModelFileError, match=words):
        read_state(path)


def test_empty_file_error(tmp_path):
    path = tmp_path / "study.jsonl"
    path.write_text("")
    with pytest.raises(ModelFileError, match="is empty"):
        BayesianOptimizer.load(path)


def _v1_file(path, opt):
    """What repurpose wrote before the journal: the whole state, indented JSON."""
    state = opt.get_state()
    path.write_text(json.dumps({"format": FORMAT, "format_version": 1, **state}, indent=1))


def test_version_1_state_file_is_migrated_and_resumed(tmp_path):
    path = tmp_path / "study.json"
    reference = BayesianOptimizer(SPACE, seed=4, **FAST)
    for _ in range(5):
        params = reference.ask()
        reference.tell(params, quadratic(params), seconds=0.5)
    _v1_file(path, reference)
    old = path.read_text()
    back = BayesianOptimizer.load(path)
    assert back.get_state() == reference.get_state()
    assert path.read_text() == old  # reading changes nothing on disk
    params = back.ask()
    assert params == reference.ask()
    back.tell(params, quadratic(params))
    state, clean = read_state(path)  # now a version 2 journal with every trial
    assert clean and len(state["trials"]) == 6
    assert json.loads(_lines(path)[0])["format_version"] == 2


def test_version_1_compact_file_and_minimize_resume(tmp_path):
    path = tmp_path / "study.json"
    straight = minimize(quadratic, SPACE, n_trials=8, seed=1)
    partial = BayesianOptimizer(SPACE, seed=1)
    for trial in straight.history[:6]:
        partial.tell(trial.params, trial.value, seconds=trial.seconds)
    path.write_text(json.dumps({"format": FORMAT, "format_version": 1,
                                **partial.get_state()}))
    resumed = minimize(quadratic, SPACE, n_trials=8, state_path=path)
    assert [t.params for t in resumed.history] == [t.params for t in straight.history]


def test_new_study_never_overwrites_an_existing_file(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("my notes\n")
    with pytest.raises(FileExistsError, match="already exists.*BayesianOptimizer.load"):
        BayesianOptimizer(SPACE, seed=0, state_path=path)
    with pytest.raises(ModelFileError, match="not valid JSON"):
        minimize(quadratic, SPACE, n_trials=2, seed=0, state_path=path)
    with pytest.raises(ModelFileError, match="not a Hyperband journal file|not valid JSON"):
        minimize_with_early_stopping(lambda p, r: r(1, 0.0), SPACE, 3, n_trials=1, seed=0,
                                     state_path=path)
    assert path.read_text() == "my notes\n"


def _curve(p, report):
    for epoch in range(1, 10):
        report(epoch, (p["x"] - 0.5) ** 2 + p["n"] / 10 + math.exp(-epoch / 3))


def test_scheduler_journal_torn_last_line(tmp_path, caplog):
    path = tmp_path / "hb.jsonl"
    options = dict(FAST, n_initial=3)
    minimize_with_early_stopping(_curve, SPACE, 9, n_trials=5, seed=0, kappa=math.inf,
                                 optimizer_options=options, state_path=path)
    header = json.loads(_lines(path)[0])
    assert header["format"] == "repurpose.bo.hyperband" and header["settings"]["kappa"] == "inf"
    path.write_text(path.read_text()[:-40])
    with caplog.at_level(logging.WARNING, logger="repurpose.bo.state"):
        resumed = minimize_with_early_stopping(_curve, SPACE, 9, n_trials=7, kappa=math.inf,
                                               optimizer_options=options, state_path=path)
    assert "torn last line" in caplog.text
    straight = minimize_with_early_stopping(_curve, SPACE, 9, n_trials=7, seed=0,
                                            kappa=math.inf, optimizer_options=options)
    assert [(t.params, t.budgets, t.status) for t in resumed.history] == \
        [(t.params, t.budgets, t.status) for t in straight.history]
    assert len(_lines(path)) == 8
