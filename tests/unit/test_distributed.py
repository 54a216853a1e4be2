"""Distributed fine-tuning without processes: parameters, the launcher's environment, the
batch sharding, the ``distributed`` config section, and bad input of ``repurpose launch``.

The multi-process runs are in tests/integration/test_dist_finetune.py (slow).
"""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from repurpose import SourceModel
from repurpose.cli import main
from repurpose.cli._launch import LaunchError, launch
from repurpose.jobs import config_from_dict
from repurpose.exceptions import InvalidParameterError
from repurpose.repurposers import FineTuneRepurposer
from repurpose.repurposers._distributed import (DMLC_VARIABLES, KVSTORE_TYPES, LOCAL,
                                                check_kvstore, launch_environment, worker_rows)

ENV = {"DMLC_ROLE": "worker", "DMLC_PS_ROOT_URI": "127.0.0.1", "DMLC_PS_ROOT_PORT": "9091",
       "DMLC_NUM_SERVER": "1", "DMLC_NUM_WORKER": "2"}


@pytest.fixture(autouse=True)
def _restore_logging():
    """``main()`` installs the CLI's handler on the 'repurpose' logger; take it away again."""
    import logging

    logger = logging.getLogger("repurpose")
    handlers, level = list(logger.handlers), logger.level
    yield
    logger.handlers[:] = handlers
    logger.setLevel(level)


@pytest.fixture
def no_launcher(monkeypatch):
    for key in DMLC_VARIABLES:
        monkeypatch.delenv(key, raising=False)


def _job(tmp_path, **distributed):
    return {"source": {"model": "digits_cnn"},
            "data": {"train": "shifted_digits", "classes": [5, 6], "n_per_class": 5},
            "train": {"n_epochs": 1}, "run": {"output_dir": str(tmp_path / "out")},
            "distributed": distributed}


# ---------------------------------------------------------------------- kvstore parameter
@pytest.mark.parametrize("value, expected", [(None, None), ("local", None),
                                             ("dist_sync", "dist_sync"),
                                             ("dist_async", "dist_async")])
def test_check_kvstore_ok(value, expected):
    assert check_kvstore(value) == expected


@pytest.mark.parametrize("value", ["dist", "device", "nccl", 1, True])
def test_check_kvstore_error(value):
    with pytest.raises(InvalidParameterError, match="kvstore must be None, 'local', "
                                                    "'dist_sync' or 'dist_async'"):
        check_kvstore(value)


@pytest.mark.parametrize("kvstore", KVSTORE_TYPES)
def test_job_config_accepts_every_kvstore_type(tmp_path, kvstore):
    job = config_from_dict(_job(tmp_path, kvstore=kvstore, workers=2, servers=1))
    assert job.to_repurposer_kwargs()["kvstore"] == kvstore


def test_constructor_stores_kvstore_unmodified():
    source = SourceModel.from_zoo("digits_cnn")
    model = FineTuneRepurposer(source, kvstore="nonsense")
    assert model.kvstore == "nonsense" and model.get_params()["kvstore"] == "nonsense"
    with pytest.raises(InvalidParameterError, match="kvstore must be"):
        model.fit(np.zeros((4, 1, 8, 8), np.float32), [0, 1, 0, 1])


def test_fit_with_dist_kvstore_outside_a_launcher_says_how_to_start(no_launcher):
    model = FineTuneRepurposer(SourceModel.from_zoo("digits_cnn"), kvstore="dist_sync")
    with pytest.raises(InvalidParameterError, match=r"lacks the launcher's environment "
                                                    r"variables DMLC_ROLE.*repurpose launch"):
        model.fit(np.zeros((4, 1, 8, 8), np.float32), [0, 1, 0, 1])


def test_dist_async_with_layer_wise_learning_rates_error():
    model = FineTuneRepurposer(SourceModel.from_zoo("digits_cnn"), kvstore="dist_async",
                               transferred_lr_mult=0.1)
    with pytest.raises(InvalidParameterError, match="transferred_lr_mult is 0.1.*dist_sync"):
        model.fit(np.zeros((4, 1, 8, 8), np.float32), [0, 1, 0, 1])


# ---------------------------------------------------------------------- environment
def test_launch_environment_ok():
    env = launch_environment(ENV)
    assert env == {"role": "worker", "root_uri": "127.0.0.1", "root_port": 9091,
                   "n_servers": 1, "n_workers": 2}


@pytest.mark.parametrize("change, match", [
    ({"DMLC_ROLE": None}, "lacks the launcher's environment variables DMLC_ROLE"),
    ({"DMLC_PS_ROOT_PORT": None, "DMLC_NUM_SERVER": ""},
     "variables DMLC_PS_ROOT_PORT, DMLC_NUM_SERVER"),
    ({"DMLC_NUM_SERVER": "0"}, "DMLC_NUM_SERVER is 0: dist_sync needs at least 1 parameter "
                               "server"),
    ({"DMLC_NUM_WORKER": "two"}, "DMLC_NUM_WORKER must be an integer, got 'two'"),
    ({"DMLC_ROLE": "server"}, "DMLC_ROLE is 'server'; only a 'worker' process trains"),
])
def test_launch_environment_error(change, match):
    env = {k: v for k, v in {**ENV, **change}.items() if v is not None}
    with pytest.raises(InvalidParameterError, match=match) as info:
        launch_environment(env)
    assert "repurpose launch --workers N --servers M" in str(info.value)


# ---------------------------------------------------------------------- sharding
@given(n=st.integers(0, 40), n_workers=st.integers(1, 5))
def test_worker_rows_partition_every_batch(n, n_workers):
    positions = np.random.RandomState(n).permutation(n)
    parts = [worker_rows(positions, r, n_workers) for r in range(n_workers)]
    assert sorted(np.concatenate(parts).tolist()) == sorted(positions.tolist())
    sizes = [len(p) for p in parts]
    assert max(sizes) - min(sizes) <= 1 and sizes == sorted(sizes, reverse=True)


def test_local_group_is_the_identity():
    assert (LOCAL.rank, LOCAL.n_workers, LOCAL.distributed, LOCAL.is_root) == (0, 1, False,
                                                                              True)
    np.testing.assert_array_equal(LOCAL.sum_numpy("x", [1.5, 2.0]), [1.5, 2.0])
    assert LOCAL.broadcast_ints("seeds", [2**31 - 1, 7]) == [2**31 - 1, 7]
    LOCAL.barrier()


# ---------------------------------------------------------------------- config section
def test_distributed_section_ok(tmp_path):
    job = config_from_dict(_job(tmp_path, kvstore="dist_sync", workers=2, servers=1))
    assert job.to_repurposer_kwargs()["kvstore"] == "dist_sync"
    assert job.to_dict()["distributed"] == {"kvstore": "dist_sync", "workers": 2, "servers": 1}
    assert config_from_dict(_job(tmp_path)).to_repurposer_kwargs()["kvstore"] is None


def test_distributed_section_without_servers_error(tmp_path):
    with pytest.raises(InvalidParameterError,
                       match=r"distributed.servers: missing. distributed.kvstore 'dist_sync' "
                             r"needs parameter servers.*repurpose launch"):
        config_from_dict(_job(tmp_path, kvstore="dist_sync", workers=2))


@pytest.mark.parametrize("distributed, match", [
    ({"kvstore": "dist_sync", "workers": 2, "servers": 0},
     "distributed.servers: must be an integer >= 1 or None, got 0"),
    ({"kvstore": "dist_sync", "servers": 1}, "distributed.workers: missing"),
    ({"workers": 2}, "distributed.workers: set to 2, but distributed.kvstore is null"),
    ({"kvstore": "dist", "workers": 2, "servers": 1},
     "distributed.kvstore: must be one of 'dist_sync', 'dist_async'"),
    ({"kvstor": "dist_sync"}, "distributed.kvstor: unknown key. Did you mean 'kvstore'"),
])
def test_distributed_section_error(tmp_path, distributed, match):
    with pytest.raises(InvalidParameterError, match=match):
        config_from_dict(_job(tmp_path, **distributed))


# ---------------------------------------------------------------------- command line
def test_finetune_distributed_job_without_launcher_exits_2(tmp_path, no_launcher, capsys):
    import yaml

    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(_job(tmp_path, kvstore="dist_sync", workers=2,
                                        servers=1)))
    assert main(["finetune", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "not started by a launcher" in err
    assert f"repurpose launch --workers 2 --servers 1 -- repurpose finetune --config {path}" \
        in err
    assert not (tmp_path / "out").exists()


def test_finetune_distributed_job_with_other_worker_count_exits_2(tmp_path, monkeypatch,
                                                                   capsys):
    import yaml

    for key, value in {**ENV, "DMLC_NUM_WORKER": "3"}.items():
        monkeypatch.setenv(key, value)
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(_job(tmp_path, kvstore="dist_sync", workers=2,
                                        servers=1)))
    assert main(["finetune", "--config", str(path)]) == 2
    assert "sets distributed.workers: 2, but the launcher started 3" in capsys.readouterr().err


@pytest.mark.parametrize("argv, match", [
    (["--workers", "2", "--servers", "0", "--", "true"], "--servers must be at least 1, got 0"),
    (["--workers", "0", "--", "true"], "--workers must be at least 1"),
    (["--workers", "2"], "no worker command"),
    (["--workers", "1", "--timeout", "-1", "--", "true"], "--timeout must be a positive"),
])
def test_launch_bad_usage_exits_2(argv, match, capsys):
    assert main(["launch", *argv]) == 2
    assert match in capsys.readouterr().err


def test_launch_without_servers_raises_before_starting_anything():
    with pytest.raises(InvalidParameterError, match="a distributed job needs one"):
        launch(["true"], n_workers=2, n_servers=0)


def test_launch_reports_the_failing_worker_and_its_status():
    with pytest.raises(LaunchError, match=r"worker 0 of 1 \(pid \d+\) exited with status 3"
                                          r".*--resume") as info:
        launch(["sh", "-c", "exit 3"], n_workers=1, n_servers=1, timeout=60)
    assert info.value.status == 3


def test_launch_timeout_stops_the_job():
    with pytest.raises(LaunchError, match="longer than --timeout 0.5 s") as info:
        launch(["sleep", "30"], n_workers=1, n_servers=1, timeout=0.5)
    assert info.value.status == 124
