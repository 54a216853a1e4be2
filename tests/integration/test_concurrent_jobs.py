"""One writer per job folder: while a process runs a job in ``run.output_dir`` (it holds the
folder's lock), a second ``repurpose tune --resume`` or ``repurpose finetune --resume`` on it
is refused at once, naming the holder, and touches nothing; once the first is done the study
ends with exactly the trials asked for. A run after a kill removes the hidden temporary files
our interrupted writes left. Real processes (subprocess), the zoo's digits_cnn, tiny jobs."""
import json
import os
import subprocess
import sys
import textwrap

import pytest
import yaml

import repurpose.repurposers

TUNE = {
    "source": {"model": "digits_cnn"},
    "data": {"train": "demo", "n_per_class": 6, "seed": 0},
    "run": {"output_dir": "out"},
    "tune": {"estimator": "logistic", "n_trials": 3, "cv": 2, "seed": 0,
             "params": {"layers": ["fc1_relu_fwd"], "pool": "avg"},
             "search_space": {"C": {"type": "real", "low": "1e-3", "high": 1000, "log": True}}},
}
FINETUNE = {
    "source": {"model": "digits_cnn"},
    "data": {"train": "shifted_digits", "classes": [5, 6], "n_per_class": 6, "seed": 0},
    "model": {"transfer_layer": "fc1_relu_fwd"},
    "train": {"n_epochs": 2, "batch_size": 8, "seed": 0},
    "run": {"output_dir": "out"},
}

# Holds the lock a job takes on its folder, as a running job does, until killed.
HOLDER = textwrap.dedent("""
    import sys, time
    from repurpose.persist import FolderLock
    with FolderLock(sys.argv[1], what=sys.argv[2]):
        print("held", flush=True)
        time.sleep(120)
""")


def _run(*args, cwd):
    return subprocess.run([sys.executable, "-m", "repurpose.cli", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=300)


def _write(folder, config, name):
    (folder / name).write_text(yaml.safe_dump(config, sort_keys=False))


def _journal(out):
    return [json.loads(line) for line in (out / "journal.jsonl").read_text().splitlines()[1:]]


def _tree(folder):
    """Every path under ``folder`` with its size and modification time."""
    found = {}
    for root, _, files in os.walk(folder):
        for name in files:
            stat = os.stat(os.path.join(root, name))
            found[os.path.relpath(os.path.join(root, name), folder)] = (stat.st_size,
                                                                        stat.st_mtime_ns)
    return found


class _Holder:
    """A second process that holds the lock on ``path`` (what a running job does)."""

    def __init__(self, path, what):
        self.process = subprocess.Popen([sys.executable, "-c", HOLDER, str(path), what],
                                        stdout=subprocess.PIPE, text=True)
        assert self.process.stdout.readline().strip() == "held"

    def __enter__(self):
        return self.process

    def __exit__(self, *exc):
        self.process.kill()
        self.process.wait()
        self.process.stdout.close()


@pytest.mark.slow
def test_second_tune_resume_is_refused_and_the_study_ends_with_the_asked_trials(tmp_path):
    _write(tmp_path, TUNE, "tune.yaml")
    out = tmp_path / "out"
    first = _run("tune", "--config", "tune.yaml", "--no-progress", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert len(_journal(out)) == 3
    more = ("tune", "--config", "tune.yaml", "--resume", "--set", "tune.n_trials=5",
            "--no-progress")
    before = _tree(out)
    with _Holder(out, "tuning run folder") as holder:
        refused = _run(*more, cwd=tmp_path)
    assert refused.returncode == 1
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in refused.stderr
    assert lines[0].startswith("repurpose tune: failed: LockedError: The tuning run folder")
    assert f"in use by process {holder.pid} on " in lines[0]
    assert _tree(out) == before  # nothing checked, replaced or resumed
    resumed = _run(*more, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert len(_journal(out)) == 5  # exactly the trials asked for
    assert json.loads((out / "best.json").read_text())["n_trials"] == 5
    # --overwrite is refused the same way: the holder's files are not removed.
    with _Holder(out, "tuning run folder"):
        replaced = _run("tune", "--config", "tune.yaml", "--overwrite", "--no-progress",
                        cwd=tmp_path)
    assert replaced.returncode == 1 and "LockedError" in replaced.stderr
    assert len(_journal(out)) == 5


def test_tune_run_holds_its_folder_lock_while_it_runs(tmp_path):
    # The lock file of the folder exists while the trials run, and is gone after.
    _write(tmp_path, dict(TUNE, run={"output_dir": str(tmp_path / "out")}), "tune.yaml")
    spy = textwrap.dedent(f"""
        import os, sys
        import repurpose.jobs._tune as tune
        seen = []
        objective = tune._head_objective
        def spying(*args):
            inner = objective(*args)
            def run(params):
                seen.append(os.path.exists({str(tmp_path / '.out.lock')!r}))
                return inner(params)
            return run
        tune._head_objective = spying
        from repurpose.cli import main
        code = main(["tune", "--config", "tune.yaml", "--no-progress", "-q"])
        print(seen, os.path.exists({str(tmp_path / '.out.lock')!r}))
        sys.exit(code)
    """)
    result = subprocess.run([sys.executable, "-c", spy], capture_output=True, text=True,
                            cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[True, True, True] False"


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(repurpose.repurposers, "FineTuneRepurposer"),
                    reason="repurpose.repurposers.FineTuneRepurposer missing")
def test_second_finetune_resume_is_refused_before_touching_the_checkpoints(tmp_path):
    _write(tmp_path, FINETUNE, "job.yaml")
    out = tmp_path / "out"
    first = _run("finetune", "--config", "job.yaml", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    (out / "model").rename(tmp_path / "model.done")  # without model/ it is resumable
    before = _tree(out)
    with _Holder(out, "job folder") as holder:
        refused = _run("finetune", "--config", "job.yaml", "--resume", cwd=tmp_path)
    assert refused.returncode == 1
    assert refused.stderr.strip().count("\n") == 0 and "Traceback" not in refused.stderr
    assert "repurpose finetune: failed: LockedError: The job folder" in refused.stderr
    assert f"in use by process {holder.pid} on " in refused.stderr
    assert _tree(out) == before  # no checkpoint written or replaced
    resumed = _run("finetune", "--config", "job.yaml", "--resume", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert (out / "model").is_dir()


def test_leftovers_of_a_killed_save_are_removed_by_the_next_run(tmp_path):
    _write(tmp_path, TUNE, "tune.yaml")
    out = tmp_path / "out"
    assert _run("tune", "--config", "tune.yaml", "--no-progress", cwd=tmp_path).returncode == 0
    # What a kill during the final save leaves: the journal is whole; no best.json, no
    # model/, and the hidden temporary folder of the model being written.
    (out / "best.json").unlink()
    os.rename(out / "model", out / ".model.k2x9abcd.tmp")
    (out / ".best.json.x81ffa2b.tmp").write_text("{")
    (out / ".notes.tmp").write_text("not ours")  # not a leftover of our outputs: kept
    resumed = _run("tune", "--config", "tune.yaml", "--resume", "--no-progress", "-v",
                   cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    for name in (".best.json.x81ffa2b.tmp", ".model.k2x9abcd.tmp"):  # logged at INFO
        assert f"Removed {out / name}" in resumed.stderr, resumed.stderr
    assert sorted(e for e in os.listdir(out) if e.startswith(".")) == [".notes.tmp"]
    assert (out / "model").is_dir() and (out / "best.json").is_file()
    assert not (tmp_path / ".out.lock").exists()
