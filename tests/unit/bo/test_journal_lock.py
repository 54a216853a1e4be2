"""A study's journal has one writer at a time: a second process that runs a study on it is
refused at once, naming the first, and the journal ends with exactly the trials asked for;
an ask/tell optimiser whose journal another process wrote to meanwhile refuses to add to it.
Real second processes (subprocess), a real sleeping objective."""
import json
import os
import subprocess
import sys
import textwrap
import time

import pytest

from repurpose.bo import (BayesianOptimizer, Real, SearchSpace, minimize,
                          minimize_with_early_stopping)
from repurpose.exceptions import LockedError

SPACE = SearchSpace({"x": Real(-2.0, 2.0), "y": Real(0.0, 1.0)})
OPTIONS = dict(n_candidates=64, n_local=1)

# A study run as its own process: `python -c STUDY JOURNAL N_TRIALS GATE`; it prints
# "running" at each trial, and its first trial waits (up to 60 s) until the file GATE exists.
STUDY = textwrap.dedent("""
    import os, sys, time
    from repurpose.bo import Real, SearchSpace, minimize
    space = SearchSpace({"x": Real(-2.0, 2.0), "y": Real(0.0, 1.0)})
    def objective(params):
        print("running", flush=True)
        deadline = time.monotonic() + 60
        while sys.argv[3] and not os.path.exists(sys.argv[3]) and time.monotonic() < deadline:
            time.sleep(0.05)
        return (params["x"] - 0.5) ** 2 + params["y"]
    minimize(objective, space, int(sys.argv[2]), seed=0, state_path=sys.argv[1])
""")


def _objective(params):
    return (params["x"] - 0.5) ** 2 + params["y"]


def _records(path):
    return [json.loads(line) for line in path.read_text().splitlines()[1:]]


def _start(path, n_trials, gate):
    process = subprocess.Popen([sys.executable, "-c", STUDY, str(path), str(n_trials),
                                str(gate)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    assert process.stdout.readline().strip() == "running", process.stderr.read()
    return process


def test_second_process_resuming_the_same_journal_is_refused(tmp_path):
    path = tmp_path / "study.jsonl"
    minimize(_objective, SPACE, 6, seed=0, state_path=path)  # 6 of 10 trials done
    gate = tmp_path / "go"
    first = _start(path, 10, gate)  # resumes to 10; its first trial waits for the gate
    try:
        # A real second process on the same journal, while the first runs.
        second = subprocess.run([sys.executable, "-c", STUDY, str(path), "10", ""],
                                capture_output=True, text=True, timeout=120)
        assert second.returncode == 1
        assert "LockedError" in second.stderr
        assert f"in use by process {first.pid} on" in second.stderr
        assert "tuning journal" in second.stderr
        # And this process too, through minimize: refused before it reads the journal.
        calls = []
        with pytest.raises(LockedError, match=f"process {first.pid}"):
            minimize(lambda p: calls.append(p) or 0.0, SPACE, 10, seed=0, state_path=path)
        assert calls == []
    finally:
        gate.touch()
        assert first.wait(timeout=120) == 0, first.stderr.read()
        first.stdout.close()
        first.stderr.close()
    assert len(_records(path)) == 10  # exactly the trials asked for, none twice
    assert not (tmp_path / ".study.jsonl.lock").exists()
    # Now the journal is free: resuming it runs nothing more.
    res = minimize(_objective, SPACE, 10, seed=0, state_path=path)
    assert len(res.history) == 10 and len(_records(path)) == 10


def test_ask_tell_study_refuses_a_journal_another_process_wrote(tmp_path):
    path = tmp_path / "study.jsonl"
    minimize(_objective, SPACE, 3, seed=0, state_path=path)
    mine, theirs = BayesianOptimizer.load(path), BayesianOptimizer.load(path)
    params = theirs.ask()
    theirs.tell(params, _objective(params))  # the other study appends a trial
    params = mine.ask()
    with pytest.raises(LockedError, match="has changed since this study read it"):
        mine.tell(params, _objective(params))
    assert len(_records(path)) == 4  # nothing added twice


def test_run_holds_the_journal_lock(tmp_path):
    path = tmp_path / "study.jsonl"
    opt = BayesianOptimizer(SPACE, seed=0, state_path=path, **OPTIONS)
    seen = []

    def objective(params):
        seen.append(os.path.exists(tmp_path / ".study.jsonl.lock"))
        return _objective(params)

    opt.run(objective, 3)
    assert seen == [True, True, True]
    assert not (tmp_path / ".study.jsonl.lock").exists()


HOLDER = textwrap.dedent("""
    import sys, time
    from repurpose.persist import FolderLock
    with FolderLock(sys.argv[1], what="tuning journal"):
        print("held", flush=True)
        time.sleep(60)
""")


def test_early_stopping_run_is_refused_while_another_process_holds_its_journal(tmp_path):
    path = tmp_path / "run.jsonl"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(path)], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        calls = []

        def train(params, report):
            calls.append(params)
            report(1, 0.0)

        start = time.monotonic()
        with pytest.raises(LockedError, match=f"process {holder.pid}"):
            minimize_with_early_stopping(train, SPACE, max_budget=3, n_trials=2, seed=0,
                                         state_path=path, optimizer_options=OPTIONS)
        assert time.monotonic() - start < 5 and calls == [] and not path.exists()
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()


def test_journal_in_a_missing_folder_is_an_error_before_any_trial(tmp_path):
    calls = []
    with pytest.raises(FileNotFoundError, match="create it first"):
        minimize(lambda p: calls.append(p) or 0.0, SPACE, 3, seed=0,
                 state_path=tmp_path / "absent" / "study.jsonl")
    assert calls == []
