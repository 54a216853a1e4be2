"""Parallel, asynchronous trials (repurpose.bo.parallel) on a thread pool: k trials kept
running, results told as they finish, suggestions fixed by the completion order, failures
recorded, a driver killed with SIGKILL resumed without re-running finished trials, and bad
input (client, n_workers, scheduler address). Dask clusters: tests/integration/test_dask_tune.py.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from repurpose import _dask
from repurpose.bo import BayesianOptimizer, Categorical, Real, SearchSpace, minimize
from repurpose.bo.parallel import connect, run_parallel, worker_problems
from repurpose.exceptions import InvalidParameterError

FAST = dict(n_candidates=64, n_local=1, n_restarts=1)
SPACE = SearchSpace({"x": Real(-2.0, 2.0), "c": Categorical(["a", "b"])})


def quadratic(p):
    return (p["x"] - 0.7) ** 2 + (p["c"] == "b")


def test_parallel_run_tells_every_trial_and_converges():
    with ThreadPoolExecutor(3) as pool:
        res = minimize(quadratic, SPACE, n_trials=14, seed=0, n_workers=3, client=pool)
    assert len(res.history) == 14 and all(t.status == "ok" for t in res.history)
    assert all(t.seconds is not None and t.seconds >= 0 for t in res.history)
    assert len({(t.params["x"], t.params["c"]) for t in res.history}) == 14
    assert res.best_value < 0.05 and res.best_params["c"] == "a"


def test_one_worker_is_the_sequential_study():
    with ThreadPoolExecutor(1) as pool:
        par = minimize(quadratic, SPACE, n_trials=9, seed=1, n_workers=1, client=pool)
    seq = minimize(quadratic, SPACE, n_trials=9, seed=1)
    assert [t.params for t in par.history] == [t.params for t in seq.history]


def test_keeps_k_trials_running_and_tells_them_as_they_finish():
    # The first trial blocks until five others have finished: lock-step batches would never
    # get there; the asynchronous loop keeps the other two workers busy meanwhile.
    lock, running, peak, finished = threading.Lock(), [0], [0], []
    release = threading.Event()
    first = []

    def objective(p):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
            is_first = not first
            first.append(p)
        if is_first:
            assert release.wait(20), "the other trials did not go on"
        else:
            time.sleep(0.01)
        with lock:
            running[0] -= 1
            finished.append(p)
            if len(finished) >= 5:
                release.set()
        return quadratic(p)

    with ThreadPoolExecutor(3) as pool:
        res = minimize(objective, SPACE, n_trials=9, seed=2, n_workers=3, client=pool)
    assert peak[0] == 3
    assert res.history[0].params != first[0]  # told when it finished, not when it started
    assert first[0] in [t.params for t in res.history[4:]]


def test_suggestions_depend_only_on_the_order_trials_finish_in():
    with ThreadPoolExecutor(3) as pool:
        opt = BayesianOptimizer(SPACE, seed=3, n_initial=3, **FAST)
        res = run_parallel(opt, quadratic, 10, n_workers=3, client=pool)
    # Replay by hand: ask for 3; then tell each trial in the order it finished and ask for
    # one more while the budget lasts. The same suggestions come out.
    replay = BayesianOptimizer(SPACE, seed=3, n_initial=3, **FAST)
    asked = replay.ask(3)
    for number, trial in enumerate(res.history):
        assert trial.params in asked
        replay.tell(trial.params, trial.value)
        if len(asked) < 10:
            asked.append(replay.ask())
    assert [t.params for t in replay.trials] == [t.params for t in res.history]
    assert sorted(map(repr, asked)) == sorted(repr(t.params) for t in res.history)


def test_failed_trials_are_recorded_and_the_run_goes_on():
    def objective(p):
        if p["c"] == "b":
            raise ValueError(f"no b please (x={p['x']:.2f})")
        return float("nan") if p["x"] > 1.5 else quadratic(p)

    with ThreadPoolExecutor(2) as pool:
        res = minimize(objective, SPACE, n_trials=10, seed=0, n_workers=2, client=pool)
    assert len(res.history) == 10
    failed = [t for t in res.history if t.status == "failed"]
    assert failed and all(t.value is None for t in failed)
    assert any(t.error.startswith("ValueError: no b please") for t in failed)
    assert all(t.seconds is not None for t in failed)
    assert res.best_params["c"] == "a"


def test_objective_returning_non_number_error():
    opt = BayesianOptimizer(SPACE, seed=0, **FAST)
    with ThreadPoolExecutor(2) as pool:
        with pytest.raises(InvalidParameterError, match="objective returned 'bad'.*real number"):
            run_parallel(opt, lambda p: "bad", 6, n_workers=2, client=pool)
    assert opt.trials == []
    assert len(opt._pending) == 1  # the bad one; the trial still running was cancelled


def test_journal_resume_runs_only_missing_trials(tmp_path):
    path = tmp_path / "study.jsonl"
    calls = []

    def objective(p):
        calls.append(p)
        return quadratic(p)

    with ThreadPoolExecutor(2) as pool:
        minimize(objective, SPACE, n_trials=6, seed=4, state_path=path, n_workers=2,
                 client=pool)
        first = path.read_text().splitlines()
        res = minimize(objective, SPACE, n_trials=9, state_path=path, n_workers=2,
                       client=pool)
    assert len(calls) == 9 and len(res.history) == 9
    assert path.read_text().splitlines()[:7] == first


KILLED = textwrap.dedent("""
    import json, os, sys, time, uuid
    from concurrent.futures import ThreadPoolExecutor
    from repurpose.bo import Categorical, Real, SearchSpace, minimize

    folder, n_trials = sys.argv[1], int(sys.argv[2])
    space = SearchSpace({"x": Real(-2.0, 2.0), "c": Categorical(["a", "b"])})

    def objective(p):
        # One file per call, written when the call starts; renamed into place, so that a
        # kill during the write leaves no torn record.
        name = os.path.join(folder, "calls", uuid.uuid4().hex)
        with open(name + ".tmp", "w") as handle:
            json.dump(p, handle)
        os.replace(name + ".tmp", name)
        time.sleep(0.15)
        return (p["x"] - 0.7) ** 2 + (p["c"] == "b")

    with ThreadPoolExecutor(2) as pool:
        minimize(objective, space, n_trials, seed=5, n_workers=2, client=pool,
                 state_path=os.path.join(folder, "study.jsonl"))
""")




def test_driver_killed_mid_run_resumes_without_rerunning_finished_trials(tmp_path):
    (tmp_path / "calls").mkdir()
    journal = tmp_path / "study.jsonl"
    n_trials = 10
    process = subprocess.Popen([sys.executable, "-c", KILLED, str(tmp_path), str(n_trials)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            if journal.exists() and len(journal.read_text().splitlines()) >= 1 + 4:
                break
            time.sleep(0.01)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL
    before = journal.read_text().splitlines()
    n_done = len(before) - 1  # a torn last line, if the kill tore one, is dropped on resume
    assert 4 <= n_done < n_trials
    done = [json.loads(line)["params"] for line in before[1:n_done]]

    resumed = subprocess.run([sys.executable, "-c", KILLED, str(tmp_path), str(n_trials)],
                             capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    after = journal.read_text().splitlines()
    assert len(after) == 1 + n_trials and after[:n_done] == before[:n_done]
    calls = [json.loads((tmp_path / "calls" / name).read_text())
             for name in os.listdir(tmp_path / "calls") if not name.endswith(".tmp")]
    for params in done:  # finished before the kill: run once, never again
        assert calls.count(params) == 1
    # Every trial ran once, plus those that were running (at most 2) when the driver died.
    assert n_trials <= len(calls) <= n_trials + 2


def test_worker_problems_names_missing_and_other_versions():
    found = {"tcp://w1:1": ("1.0", None), "tcp://w2:1": ("0.9", None),
             "tcp://w3:1": (None, "ModuleNotFoundError: No module named 'repurpose'"),
             "tcp://w4:1": OSError("worker went away")}
    assert worker_problems(found, version="1.0") == [
        "tcp://w2:1: repurpose 0.9",
        "tcp://w3:1: no repurpose (ModuleNotFoundError: No module named 'repurpose')",
        "tcp://w4:1: the check failed (OSError: worker went away)"]
    assert worker_problems({"tcp://w1:1": ("1.0", None)}, version="1.0") == []


def test_unreachable_scheduler_error_within_seconds(monkeypatch):
    pytest.importorskip("distributed")
    monkeypatch.setattr(_dask, "CONNECT_TIMEOUT", 1.0)
    start = time.monotonic()
    with pytest.raises(ConnectionError, match=r"No Dask scheduler answered at "
                                              r"'tcp://127\.0\.0\.1:1' within 1 s"):
        minimize(quadratic, SPACE, 4, seed=0, client="tcp://127.0.0.1:1")
    assert time.monotonic() - start < 10


def test_refused_scheduler_is_an_error_at_once():
    pytest.importorskip("distributed")
    start = time.monotonic()
    with pytest.raises(ConnectionError, match="connection refused: nothing listens on port 1 "
                                              "of 127.0.0.1"):
        connect("tcp://127.0.0.1:1")  # the default 5 s timeout is not waited for
    assert time.monotonic() - start < 1.5


def _server(reply):
    """A local TCP server answering each connection with ``reply`` (None: silence)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.05)
    held, stop = [], threading.Event()

    def serve():
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:  # the timeout: look at stop again
                continue
            held.append(conn)
            if reply is not None:
                conn.sendall(reply)
                conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()

    def close():
        stop.set()
        thread.join(5)
        server.close()
        for conn in held:
            conn.close()
    return close, f"tcp://127.0.0.1:{server.getsockname()[1]}"


@pytest.mark.parametrize("reply, timeout, words", [
    (b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n", None,
     "does not speak Dask's protocol"),
    (None, 1.0, "accepted a connection but said nothing"),
])
def test_port_that_is_no_scheduler_is_an_error_without_a_client(reply, timeout, words):
    pytest.importorskip("distributed")
    close, address = _server(reply)
    try:
        start = time.monotonic()
        with pytest.raises(ConnectionError, match=words):
            connect(address, timeout=timeout)
        assert time.monotonic() - start < 3
    finally:
        close()


@pytest.mark.parametrize("address", ["nonsense::addr", ""])
def test_bad_scheduler_address_error(address):
    pytest.importorskip("distributed")
    with pytest.raises(InvalidParameterError, match="scheduler address|tcp://HOST"):
        connect(address, timeout=1)


@pytest.mark.parametrize("kwargs, words", [
    (dict(n_workers=0), "n_workers must be an integer >= 1, got 0"),
    (dict(n_workers=2.5), "n_workers must be an integer"),
    (dict(client=object()), "client must be a distributed.Client, a scheduler address"),
])
def test_parallel_parameter_error(kwargs, words):
    pytest.importorskip("distributed")
    with pytest.raises(InvalidParameterError, match=words):
        minimize(quadratic, SPACE, 4, seed=0, **kwargs)


def test_executor_needs_n_workers_error():
    with ThreadPoolExecutor(2) as pool:
        with pytest.raises(InvalidParameterError, match="pass n_workers"):
            minimize(quadratic, SPACE, 4, seed=0, client=pool)


def test_bo_does_not_import_dask():
    code = ("import sys, repurpose.bo, repurpose.jobs; "
            "print(sorted(m for m in ('dask', 'distributed') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
