"""Hyperband trials on a real Dask cluster (a LocalCluster of 2 single-threaded worker
processes): reports travel to the driver through distributed Queues, rungs stop trials,
failures are recorded, and a journal written on the cluster resumes."""
import math
import time

import pytest

distributed = pytest.importorskip("distributed")

from repurpose.bo import Real, SearchSpace, minimize_with_early_stopping  # noqa: E402

FAST = dict(n_candidates=64, n_local=1, n_restarts=1)
SPACE = SearchSpace({"x": Real(0.0, 1.0), "y": Real(0.0, 1.0)})


def loss(p, epoch):
    return (p["x"] - 0.3) ** 2 + (p["y"] - 0.7) ** 2 + math.exp(-epoch / (3.0 + 3.0 * p["y"]))


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as cluster:
        yield cluster


@pytest.fixture
def client(cluster):
    with distributed.Client(cluster, set_as_default=False) as client:
        yield client


def test_hyperband_on_a_dask_client_stops_at_rungs_and_records_failures(client):
    offset = 0.9  # a closure: shipped to the workers by Dask's cloudpickle

    def train(p, report):
        if p["x"] > offset:
            raise ValueError("diverged")
        for epoch in range(1, 10):
            time.sleep(0.01)
            report(epoch, loss(p, epoch))

    res = minimize_with_early_stopping(train, SPACE, 9, n_trials=10, seed=0,
                                       optimizer_options=FAST, client=client)  # 2 at a time
    assert len(res.history) == 10
    assert any(t.stop_reason == "rung" for t in res.history)
    for t in res.history:
        if t.status == "failed":
            assert t.error == "ValueError: diverged" and t.values == []
        else:
            assert t.values == [loss(t.params, b) for b in t.budgets]
    assert all(t.budget_used == 9 for t in res.history if t.status == "completed")


def test_journal_written_on_a_scheduler_address_resumes(cluster, tmp_path):
    path = tmp_path / "hyperband.jsonl"

    def train(p, report):
        for epoch in range(1, 10):
            report(epoch, loss(p, epoch))

    first = minimize_with_early_stopping(train, SPACE, 9, n_trials=4, seed=1,
                                         optimizer_options=FAST, state_path=path,
                                         client=cluster.scheduler_address)
    assert len(first.history) == 4 == len(path.read_text().splitlines()) - 1
    with distributed.Client(cluster, set_as_default=False) as client:
        resumed = minimize_with_early_stopping(train, SPACE, 9, n_trials=7, state_path=path,
                                               client=client)
    assert len(resumed.history) == 7
    assert [t.params for t in resumed.history[:4]] == [t.params for t in first.history]


def test_a_bad_report_stops_the_trials_running_on_the_cluster(client):
    def train(p, report):
        if p["x"] < 0.5:
            time.sleep(0.3)  # the other worker runs a trial by now
            report(2, 1.0)
            report(1, 1.0)  # against the protocol: the run stops, cancelling the other
        for epoch in range(1, 2000):  # 20 s if nobody stopped it
            time.sleep(0.01)
            report(epoch, p["x"] + 1 / epoch)

    with pytest.raises(ValueError, match="strictly increase"):
        minimize_with_early_stopping(train, SPACE, 2000, n_trials=4, seed=0, kappa=math.inf,
                                     client=client)
    deadline = time.monotonic() + 10
    while any(client.processing().values()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(client.processing().values())  # Dask cannot cancel a running task
