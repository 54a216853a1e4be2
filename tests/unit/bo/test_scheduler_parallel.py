"""Hyperband trials k at a time (HyperbandScheduler.run / minimize_with_early_stopping with
n_workers and client): trials overlap, rungs and the curve rule still stop trials, n_trials
and total_budget hold, a parallel journal resumes, one worker is the serial run, failures
and bad reports, process pools and refused executors. Dask: test_dask_hyperband.py."""
import concurrent.futures
import math
import multiprocessing
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from repurpose.bo import Real, SearchSpace
from repurpose.bo._hyperband_pool import ScheduleStudy, _SocketServer, run_trial
from repurpose.bo.scheduler import HyperbandScheduler, minimize_with_early_stopping
from repurpose.exceptions import InvalidParameterError

FAST = dict(n_candidates=64, n_local=1, n_restarts=1)
SPACE = SearchSpace({"x": Real(0.0, 1.0), "y": Real(0.0, 1.0)})


def loss(p, epoch):
    return (p["x"] - 0.3) ** 2 + (p["y"] - 0.7) ** 2 + math.exp(-epoch / (3.0 + 3.0 * p["y"]))


class Recorder:
    """An objective that sleeps a little per report and records when each trial ran."""

    def __init__(self, max_epochs, pause=0.01):
        self.max_epochs, self.pause = max_epochs, pause
        self.lock = threading.Lock()
        self.spans = []  # (start, end, params) in the order trials started
        self.calls = []

    def __call__(self, p, report):
        with self.lock:
            self.calls.append(dict(p))
            span = [time.perf_counter(), None, dict(p)]
            self.spans.append(span)
        try:
            for epoch in range(1, self.max_epochs + 1):
                time.sleep(self.pause)
                report(epoch, loss(p, epoch))
        finally:
            span[1] = time.perf_counter()

    def max_concurrency(self):
        events = sorted([(s, 1) for s, _, _ in self.spans] + [(e, -1) for _, e, _ in self.spans])
        running = peak = 0
        for _, step in events:
            running += step
            peak = max(peak, running)
        return peak


def _outcome(res):
    return [(t.params, t.bracket, t.budgets, t.values, t.status, t.stop_reason, t.told_value)
            for t in res.history]


def test_trials_overlap_and_rungs_still_stop():
    objective = Recorder(9)
    with ThreadPoolExecutor(3) as pool:
        res = minimize_with_early_stopping(objective, SPACE, 9, n_trials=12, seed=0,
                                           optimizer_options=FAST, n_workers=3, client=pool)
    assert objective.max_concurrency() == 3
    assert len(res.history) == 12 and len(objective.calls) == 12
    stopped = [t for t in res.history if t.stop_reason == "rung"]
    assert stopped and all(t.budget_used in (1.0, 3.0) for t in stopped)
    completed = [t for t in res.history if t.status == "completed"]
    assert completed and all(t.budget_used == 9 for t in completed)
    assert {t.status for t in res.history} <= {"completed", "stopped"}
    for t in res.history:  # the driver's record is what the trial reported
        assert t.values == [loss(t.params, b) for b in t.budgets]
        assert t.budgets == [float(b) for b in range(1, int(t.budget_used) + 1)]
    assert res.best_value == min(t.values[-1] for t in completed)


def test_one_worker_is_the_serial_run():
    with ThreadPoolExecutor(1) as pool:
        par = minimize_with_early_stopping(Recorder(9, 0), SPACE, 9, n_trials=6, seed=1,
                                           optimizer_options=FAST, n_workers=1, client=pool)
    seq = minimize_with_early_stopping(Recorder(9, 0), SPACE, 9, n_trials=6, seed=1,
                                       optimizer_options=FAST)
    assert _outcome(par) == _outcome(seq)


def test_total_budget_holds_as_in_a_serial_run():
    objective = Recorder(9)
    with ThreadPoolExecutor(3) as pool:
        res = HyperbandScheduler(SPACE, 9, seed=2, optimizer_options=FAST).run(
            objective, total_budget=40, n_workers=3, client=pool)
    assert objective.max_concurrency() > 1
    last_started = objective.calls[-1]
    last = [t for t in res.history if t.params == last_started]
    assert len(last) == 1
    # Every trial but the last one started fits in the budget, and the budget is used.
    assert res.total_budget_used - last[0].budget_used < 40 <= res.total_budget_used


def test_parallel_journal_resumes_serially_and_in_parallel(tmp_path):
    path = tmp_path / "hyperband.jsonl"
    objective = Recorder(9)

    def interrupted(p, report):
        if len(objective.calls) == 6:
            raise KeyboardInterrupt  # as if the driver were killed while trials run
        objective(p, report)

    with ThreadPoolExecutor(3) as pool:
        with pytest.raises(KeyboardInterrupt):
            minimize_with_early_stopping(interrupted, SPACE, 9, n_trials=12, seed=0,
                                         optimizer_options=FAST, state_path=path,
                                         n_workers=3, client=pool)
    n_done = len(path.read_text().splitlines()) - 1
    assert 0 < n_done <= 6  # only finished trials: not the one interrupted
    with ThreadPoolExecutor(3) as pool:  # settings come from the journal
        resumed = minimize_with_early_stopping(objective, SPACE, 9, n_trials=10,
                                               state_path=path, n_workers=3, client=pool)
    assert len(resumed.history) == 10 == len(path.read_text().splitlines()) - 1
    again = minimize_with_early_stopping(objective, SPACE, 9, n_trials=12, state_path=path)
    assert len(again.history) == 12
    assert _outcome(again)[:10] == _outcome(resumed)
    assert {t.status for t in again.history} <= {"completed", "stopped"}


def test_learning_curve_stops_in_parallel():
    # min_budget == max_budget: one bracket without rungs, so only the curve rule stops.
    objective = Recorder(27, pause=0.002)
    with ThreadPoolExecutor(3) as pool:
        res = minimize_with_early_stopping(objective, SPACE, 27, min_budget=27, n_trials=12,
                                           seed=0, optimizer_options=FAST, n_workers=3,
                                           client=pool)
    assert objective.max_concurrency() == 3
    curve = [t for t in res.history if t.stop_reason == "curve"]
    assert curve and not any(t.stop_reason == "rung" for t in res.history)
    best = min(t.values[-1] for t in res.history if t.status == "completed")
    for t in curve:
        assert t.budget_used < 27 and t.told_value >= best and t.predicted_final is not None


def test_failures_are_recorded_and_bad_reports_raise():
    def flaky(p, report):
        if p["x"] > 0.5:
            raise RuntimeError("diverged")
        Recorder(9, 0)(p, report)

    with ThreadPoolExecutor(2) as pool:
        res = minimize_with_early_stopping(flaky, SPACE, 9, n_trials=6, seed=0,
                                           optimizer_options=FAST, n_workers=2, client=pool)
    failed = [t for t in res.history if t.status == "failed"]
    assert failed and all(t.error == "RuntimeError: diverged" for t in failed)

    def backwards(p, report):
        report(2, 1.0)
        report(1, 0.5)

    with ThreadPoolExecutor(2) as pool:
        with pytest.raises(InvalidParameterError, match="strictly increase"):
            minimize_with_early_stopping(backwards, SPACE, 9, n_trials=4, seed=0,
                                         optimizer_options=FAST, n_workers=2, client=pool)


def slow_train(p, report):  # module level: a process pool pickles it by name
    for epoch in range(1, 10):
        time.sleep(0.01)
        report(epoch, loss(p, epoch))


def test_process_pool():
    context = multiprocessing.get_context("fork")
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=context) as pool:
        res = minimize_with_early_stopping(slow_train, SPACE, 9, n_trials=8, seed=0,
                                           optimizer_options=FAST, n_workers=2, client=pool)
    assert len(res.history) == 8
    assert any(t.stop_reason == "rung" for t in res.history)
    assert all(t.values == [loss(t.params, b) for b in t.budgets] for t in res.history)


def long_or_bad(p, report):  # module level, for the process pool
    log = os.environ["REPURPOSE_TEST_REPORT_LOG"]
    if p["x"] < 0.5:
        time.sleep(0.2)  # the others are running by now
        report(2, 1.0)
        report(1, 1.0)  # against the protocol: the run stops, cancelling the others
    for epoch in range(1, 200):
        time.sleep(0.01)
        with open(log, "a") as f:
            f.write(f"{p['x']}\n")
        report(epoch, p["x"] + 1 / epoch)


@pytest.mark.parametrize("kind", ["thread", "process"])
def test_a_bad_report_cancels_the_running_trials(kind, tmp_path, monkeypatch):
    log = tmp_path / "reports.txt"
    monkeypatch.setenv("REPURPOSE_TEST_REPORT_LOG", str(log))  # before the pool forks
    pool = (ThreadPoolExecutor(3) if kind == "thread" else concurrent.futures.
            ProcessPoolExecutor(3, mp_context=multiprocessing.get_context("fork")))
    with pool:
        with pytest.raises(InvalidParameterError, match="strictly increase"):
            minimize_with_early_stopping(long_or_bad, SPACE, 200, n_trials=6, seed=0,
                                         kappa=math.inf, n_workers=3, client=pool)
    # The pool could shut down: the running trials stopped at their next report.
    lines = log.read_text().splitlines() if log.exists() else []
    assert all(lines.count(x) < 199 for x in set(lines))


def test_a_trial_that_cannot_reach_the_driver_fails():
    server = _SocketServer(lambda *report: None)
    channel = server.channel()
    server.close()  # the driver is gone
    protocol_error, seconds, error = run_trial((slow_train, channel, 9.0),
                                               (0, {"x": 0.1, "y": 0.2}, 0))
    assert protocol_error is None and seconds >= 0
    assert "could not reach the Hyperband driver" in error


class InlineExecutor(concurrent.futures.Executor):
    def submit(self, fn, *args, **kwargs):
        future = concurrent.futures.Future()
        future.set_result(fn(*args, **kwargs))
        return future


@pytest.mark.parametrize("kwargs, words", [
    (dict(client=InlineExecutor(), n_workers=2),
     "InlineExecutor cannot run Hyperband trials.*ThreadPoolExecutor or ProcessPoolExecutor"),
    (dict(client=ThreadPoolExecutor(1)), "pass n_workers"),
    (dict(n_workers=0), "n_workers"),
])
def test_bad_pool_error(kwargs, words):
    calls = []
    with pytest.raises(InvalidParameterError, match=words):
        minimize_with_early_stopping(lambda p, report: calls.append(p), SPACE, 9, n_trials=2,
                                     seed=0, **kwargs)
    assert calls == []


def test_a_trial_run_again_on_another_worker_starts_afresh():
    # Dask runs a task again when its worker dies: the same ticket reports from a new
    # attempt, and the driver forgets what the lost attempt reported and left at the rungs.
    sched = HyperbandScheduler(SPACE, 9, seed=0, optimizer_options=FAST)
    study = ScheduleStudy(sched, n_trials=2, total_budget=None)
    trial_id, params, bracket = study.ask()
    assert bracket == 2
    assert study.answer(trial_id, "lost", 1.0, 0.5) is None
    assert study.answer(trial_id, "lost", 2.0, 0.4) is None
    assert sched._rung_values == {(2, 0): [0.5]}
    assert study.answer(trial_id, "again", 1.0, 0.7) is None
    assert sched._rung_values == {(2, 0): [0.7]}
    trial = study.tell((trial_id, params, bracket), (None, 0.1, None))
    assert trial.budgets == [1.0] and trial.values == [0.7] and trial.status == "completed"
    assert study.answer(trial_id, "late", 2.0, 0.1) == ["stop", "cancelled"]
