"""Parallel tuning on a real Dask cluster (a LocalCluster of 2 single-threaded worker
processes): minimize with a client, an address or its own local cluster; ``repurpose tune
--scheduler`` end to end and killed/resumed, and with ``tune.early_stopping`` on 2 workers,
then resumed; BayesSearchCV under joblib's Dask backend; and
bad input: a scheduler that does not answer, workers without repurpose or with another
version of it."""
import json
import signal
import subprocess
import sys
import time

import pytest
import yaml

distributed = pytest.importorskip("distributed")

from repurpose.bo import Categorical, Real, SearchSpace, minimize  # noqa: E402
from repurpose.jobs import run_tuning  # noqa: E402

SPACE = SearchSpace({"x": Real(-2.0, 2.0), "c": Categorical(["a", "b"])})
HEAD = {
    "source": {"model": "digits_cnn"},
    "data": {"train": "demo", "n_per_class": 6, "seed": 0},
    "run": {"output_dir": "out"},
    "tune": {"estimator": "logistic", "n_trials": 6, "cv": 2, "seed": 0,
             "params": {"layers": ["fc1_relu_fwd"], "pool": "avg"},
             "search_space": {"C": {"type": "real", "low": "1e-3", "high": 1000, "log": True}}},
}


def _cluster(**kwargs):
    return distributed.LocalCluster(n_workers=kwargs.pop("n_workers", 2), threads_per_worker=1,
                                    processes=True, dashboard_address=":0", **kwargs)


@pytest.fixture(scope="module")
def cluster():
    with _cluster() as cluster:
        yield cluster


@pytest.fixture
def client(cluster):
    with distributed.Client(cluster, set_as_default=False) as client:
        yield client


def _run(*args, cwd, timeout=300):
    return subprocess.run([sys.executable, "-m", "repurpose.cli", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=timeout)


def _write(folder, config):
    path = folder / "tune.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_minimize_on_a_dask_client_records_failures(client):
    offset = 0.7  # a closure: shipped to the workers by Dask's cloudpickle

    def objective(p):
        if p["c"] == "b" and p["x"] > 1.0:
            raise ValueError("not there")
        return (p["x"] - offset) ** 2 + (p["c"] == "b")

    res = minimize(objective, SPACE, n_trials=10, seed=0, client=client)  # 2 at a time
    assert len(res.history) == 10
    assert res.best_params["c"] == "a" and res.best_value < 0.5
    failed = [t for t in res.history if t.status == "failed"]
    assert all(t.error == "ValueError: not there" for t in failed)


def test_minimize_on_a_scheduler_address_with_a_journal(cluster, tmp_path):
    path = tmp_path / "study.jsonl"
    res = minimize(lambda p: (p["x"] - 0.3) ** 2, SPACE, n_trials=6, seed=1,
                   client=cluster.scheduler_address, state_path=path)
    header, *told = _jsonl(path)
    assert len(told) == 6 and [t["params"] for t in told] == [t.params for t in res.history]


@pytest.mark.slow  # starts its own cluster: ~10 s on 2 cores
def test_minimize_starts_a_local_cluster_for_n_workers():
    res = minimize(lambda p: (p["x"] - 0.3) ** 2, SPACE, n_trials=6, seed=2, n_workers=2)
    assert len(res.history) == 6 and all(t.status == "ok" for t in res.history)


@pytest.mark.parametrize("preload, words", [
    ("import sys\nsys.modules['repurpose'] = None\n",
     r"1 of 1 Dask workers cannot run repurpose \S+: tcp://[\d.]+:\d+: no repurpose "
     r"\(ModuleNotFoundError"),
    ("import repurpose._version\nrepurpose._version.__version__ = '0.0.1.dev0'\n",
     r"1 of 1 Dask workers cannot run repurpose \S+: tcp://[\d.]+:\d+: repurpose "
     r"0\.0\.1\.dev0\. Install repurpose-mxnet "),
])
def test_workers_without_this_repurpose_error(preload, words):
    calls = []
    with _cluster(n_workers=1, preload=[preload]) as bad:
        with pytest.raises(RuntimeError, match=words):
            minimize(lambda p: calls.append(p), SPACE, n_trials=4, seed=0,
                     client=bad.scheduler_address)
    assert calls == []


def test_tune_on_a_scheduler_end_to_end(cluster, tmp_path):
    _write(tmp_path, HEAD)
    result = _run("tune", "--config", "tune.yaml", "--no-progress", "--scheduler",
                  cluster.scheduler_address, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Best accuracy of 6 trials" in result.stdout
    trials = _jsonl(tmp_path / "out" / "trials.jsonl")
    assert [t["trial"] for t in trials] == [1, 2, 3, 4, 5, 6]
    assert all(t["status"] == "ok" for t in trials)
    best = json.loads((tmp_path / "out" / "best.json").read_text())
    assert best["best_value"] == max(t["value"] for t in trials)


@pytest.mark.slow
def test_tune_killed_on_a_scheduler_resumes_without_rerunning_finished_trials(cluster,
                                                                              tmp_path):
    n_trials = 12
    config = json.loads(json.dumps(HEAD))
    config["tune"].update(n_trials=n_trials, cv=3)
    config["data"]["n_per_class"] = 30  # slower trials, so the kill lands mid-run
    _write(tmp_path, config)
    journal = tmp_path / "out" / "journal.jsonl"
    args = ["tune", "--config", "tune.yaml", "--no-progress", "--scheduler",
            cluster.scheduler_address]
    process = subprocess.Popen([sys.executable, "-m", "repurpose.cli", *args], cwd=tmp_path,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and process.poll() is None:
            if journal.exists() and len(journal.read_text().splitlines()) >= 1 + 3:
                break
            time.sleep(0.01)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL
    before = journal.read_text().splitlines()
    n_done = len(before) - 1  # a torn last line, if the kill tore one, is dropped on resume
    assert 3 <= n_done < n_trials

    resumed = _run(*args, "--resume", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    after = journal.read_text().splitlines()
    assert len(after) == 1 + n_trials and after[:n_done] == before[:n_done]
    params = [json.loads(line)["params"] for line in after[1:]]
    assert len({p["C"] for p in params}) == n_trials  # nothing finished was run again
    trials = _jsonl(tmp_path / "out" / "trials.jsonl")
    assert [t["trial"] for t in trials] == list(range(1, n_trials + 1))


@pytest.mark.slow
def test_tune_unreachable_scheduler_error_within_seconds(tmp_path):
    _write(tmp_path, HEAD)
    start = time.monotonic()
    result = _run("tune", "--config", "tune.yaml", "--no-progress", "--scheduler",
                  "tcp://127.0.0.1:1", cwd=tmp_path, timeout=120)
    assert time.monotonic() - start < 60
    assert result.returncode == 1
    assert "No Dask scheduler answered at 'tcp://127.0.0.1:1' within 5 s" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()  # nothing written: no run to --resume


def test_tune_workers_with_another_version_error(tmp_path):
    _write(tmp_path, HEAD)
    preload = "import repurpose._version as v\nv.__version__ = '9.9'\n"
    with _cluster(n_workers=1, preload=[preload]) as bad:
        result = _run("tune", "--config", "tune.yaml", "--no-progress", "--scheduler",
                      bad.scheduler_address, cwd=tmp_path)
    assert result.returncode == 1
    assert "Dask workers cannot run repurpose" in result.stderr and "repurpose 9.9" in \
        result.stderr
    assert not (tmp_path / "out").exists()


def _finetune_config(output_dir, n_trials):
    return {"source": {"model": "digits_cnn"},
            "data": {"train": "demo", "n_per_class": 6, "seed": 0},
            "model": {"transfer_layer": "fc1_relu_fwd"},
            # A constant rate: rungs stop trials from the first ones on (under a decaying
            # schedule they wait until completed trials show that a rung ranks them).
            "train": {"batch_size": 16, "validation_fraction": 0.3, "early_stopping": False,
                      "lr_schedule": "constant"},
            "run": {"output_dir": str(output_dir)},
            "tune": {"estimator": "finetune", "n_trials": n_trials, "seed": 0,
                     "early_stopping": {"max_budget": 9, "eta": 3},
                     "search_space": {
                         "learning_rate": {"type": "real", "low": 0.01, "high": 0.3,
                                           "log": True},
                         "dropout": {"type": "categorical", "choices": [0.0, 0.5]}}}}


@pytest.mark.slow  # ~15-25 s on 2 shared cores: 9 fine-tuning trials, a CLI run
def test_tune_early_stopping_on_two_workers_and_resumed(cluster, tmp_path, caplog):
    import logging

    import repurpose
    from repurpose.jobs import load_tune_config

    out = tmp_path / "out"
    _write(tmp_path, _finetune_config(out, n_trials=5))
    cfg = load_tune_config(tmp_path / "tune.yaml")
    caplog.set_level(logging.INFO, logger="repurpose")
    with distributed.Client(cluster, set_as_default=False) as watcher:
        with distributed.get_task_stream(client=watcher) as tasks:
            result = run_tuning(cfg, scheduler=cluster.scheduler_address, n_workers=2)
    assert "Running Hyperband trials, 2 at once" in caplog.text
    trial_tasks = [t for t in tasks.data if str(t["key"]).startswith("run_trial")]
    assert len(trial_tasks) == 5 and len({t["worker"] for t in trial_tasks}) == 2
    assert len(result.history) == 5 and result.report["n_trials"] == 5
    assert any(t.status == "stopped" for t in result.history)
    assert result.report["epochs_used"] < 5 * 9
    # The whole output of a serial study: the journal, trials.jsonl, best.json, the model
    # refitted on all training data, and the plots of a Hyperband study.
    header, *told = _jsonl(out / "journal.jsonl")
    assert header["format"] == "repurpose.bo.hyperband" and len(told) == 5
    trials = _jsonl(out / "trials.jsonl")
    assert [t["trial"] for t in trials] == [1, 2, 3, 4, 5]
    assert [t["value"] for t in trials] == [t.values[-1] for t in result.history]
    best = json.loads((out / "best.json").read_text())
    assert best == result.report and best["best_value"] == result.best_value
    assert repurpose.load(result.model_dir).learning_rate == result.best_params["learning_rate"]
    assert [p.rsplit("/", 1)[-1] for p in result.plots] == [
        "convergence.png", "parameters.png", "learning_curves.png"]

    # --resume, on the workers, extended to 8 trials: the 5 finished ones are read from the
    # journal, not run again.
    before = (out / "journal.jsonl").read_text().splitlines()
    resumed = _run("tune", "--config", "tune.yaml", "--no-progress", "--resume", "--set",
                   "tune.n_trials=8", "--scheduler", cluster.scheduler_address, "--workers",
                   "2", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert "Best val_accuracy of 8 trials" in resumed.stdout
    after = (out / "journal.jsonl").read_text().splitlines()
    assert len(after) == 1 + 8 and after[:6] == before
    trials = _jsonl(out / "trials.jsonl")
    assert [t["trial"] for t in trials] == list(range(1, 9))
    best = json.loads((out / "best.json").read_text())
    assert best["n_trials"] == 8 and best["epochs_used"] < 8 * 9
    assert best["best_value"] == max(t["value"] for t in trials if t["status"] == "completed")
    assert best["model"] == str(out / "model") and (out / "learning_curves.png").exists()


def test_bayes_search_cv_on_joblib_dask_backend_matches_n_jobs_1(cluster):
    import joblib

    from repurpose import LogisticRepurposer, SourceModel
    from repurpose.bo import BayesSearchCV
    from repurpose.demo import make_demo_task

    X, y, _, _ = make_demo_task(6, 0)
    estimator = LogisticRepurposer(SourceModel.from_zoo("digits_cnn"), layers=("fc1_relu_fwd",),
                                   pool="avg", random_state=0)

    def search(n_jobs):
        return BayesSearchCV(estimator, {"C": Real(1e-3, 1e3, log=True)}, n_iter=4,
                             n_points=2, cv=2, n_jobs=n_jobs, random_state=0)

    serial = search(1).fit(X, y)
    with distributed.Client(cluster), joblib.parallel_backend("dask"):
        with distributed.get_task_stream() as tasks:
            on_dask = search(2).fit(X, y)
    assert len(tasks.data) >= 4 * 2  # every fold of every candidate ran on the workers
    assert on_dask.best_params_ == serial.best_params_
    assert list(on_dask.cv_results_["mean_test_score"]) == \
        list(serial.cv_results_["mean_test_score"])
