"""``repurpose tune``: a head tuned end to end (the saved best model, the plots), a study
killed with SIGKILL and resumed, a finished study resumed, the output-folder rules,
fine-tuning with early stopping (the measured value of each trial in its log line), and bad
configs (every problem at once). Real models (the zoo's digits_cnn) and the demo task; small
budgets."""
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest
import yaml

import repurpose
from repurpose.repurposers import learning_rate_at
from repurpose.demo import make_demo_task
from repurpose.exceptions import InvalidParameterError
from repurpose.jobs import (check_tune_output_dir, load_tune_config, run_tuning,
                              tune_config_from_dict)

HEAD = {
    "source": {"model": "digits_cnn"},
    "data": {"train": "demo", "n_per_class": 6, "seed": 0},
    "run": {"output_dir": "out"},
    "tune": {"estimator": "logistic", "n_trials": 4, "cv": 2, "seed": 0,
             "params": {"layers": ["fc1_relu_fwd"], "pool": "avg"},
             "search_space": {"C": {"type": "real", "low": "1e-3", "high": 1000, "log": True}}},
}


def _run(*args, cwd):
    return subprocess.run([sys.executable, "-m", "repurpose.cli", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=300)


def _write(folder, config, name="tune.yaml"):
    path = folder / name
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def _is_png(path):
    return path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _with(config, **tune):
    out = json.loads(json.dumps(config))
    out["tune"].update(tune)
    return out


def test_tune_head_end_to_end(tmp_path):
    _write(tmp_path, HEAD)
    result = _run("tune", "--config", "tune.yaml", "--no-progress", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    out = tmp_path / "out"
    assert sorted(os.listdir(out)) == ["best.json", "convergence.png", "journal.jsonl",
                                       "model", "parameters.png", "trials.jsonl",
                                       "tune.resolved.yaml"]
    best = json.loads((out / "best.json").read_text())
    trials = _jsonl(out / "trials.jsonl")
    assert [t["trial"] for t in trials] == [1, 2, 3, 4]
    assert best["best_value"] == max(t["value"] for t in trials)
    assert best["metric"] == "accuracy" and 0.5 < best["best_value"] <= 1
    assert best["config"]["params"]["C"] == best["best_params"]["C"]
    assert best["config"]["params"]["layers"] == ["fc1_relu_fwd"]
    assert best["test"]["n_samples"] == 866 and best["test"]["accuracy"] > 0.5
    header, *told = _jsonl(out / "journal.jsonl")
    assert header["format_version"] == 2 and len(told) == 4
    # A compact summary; the config snippet and the Python call stay in best.json.
    assert "Best accuracy of 4 trials" in result.stdout and "C=" in result.stdout
    assert "Test (866 samples" in result.stdout and str(out / "best.json") in result.stdout
    assert "Config snippet" not in result.stdout and "layers:" not in result.stdout
    assert f"Best model (refitted on all training data): {out / 'model'}" in result.stdout
    assert "convergence.png, parameters.png" in result.stdout
    assert len(result.stdout.splitlines()) == 5
    assert best["python"].startswith("LogisticRepurposer(source, layers=('fc1_relu_fwd',)")
    assert best["test_error"] is None
    # The best configuration, refitted on all training data, saved: it scores the test data
    # as best.json says.
    assert best["model"] == str(out / "model")
    model = repurpose.load(out / "model")
    assert type(model).__name__ == "LogisticRepurposer" and model.C == best["best_params"]["C"]
    _, _, X_test, y_test = make_demo_task(n_per_class=6, random_state=0)
    assert model.score(X_test, y_test) == pytest.approx(best["test"]["accuracy"])
    assert set(model.predict(X_test[:5])) <= set(model.classes_)
    assert _is_png(out / "convergence.png") and _is_png(out / "parameters.png")
    # Each trial's log line shows the value it measured (accuracy, as in trials.jsonl).
    logged = [float(v) for v in re.findall(r"INFO repurpose\.bo\.loop: Trial \d+: .* -> (\S+)",
                                           result.stderr)]
    assert logged == pytest.approx([t["value"] for t in trials])

    again = _run("tune", "--config", "tune.yaml", cwd=tmp_path)
    assert again.returncode == 2 and "--resume" in again.stderr and "--overwrite" in \
        again.stderr
    assert (out / "best.json").read_text() == json.dumps(best, indent=2) + "\n"


def test_resumed_finished_study_refits_only_when_needed(tmp_path):
    _write(tmp_path, _with(HEAD, n_trials=3))
    assert _run("tune", "--config", "tune.yaml", "--no-progress", cwd=tmp_path).returncode == 0
    out = tmp_path / "out"
    files = {name: (out / name).read_bytes()
             for name in ("best.json", "journal.jsonl", "model/manifest.json")}
    (out / "convergence.png").unlink()

    again = _run("tune", "--config", "tune.yaml", "--resume", "--no-progress", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith(f"The study in {out} had already finished: nothing was run "
                                   f"or refitted.")
    assert "Refitting" not in again.stderr
    assert {name: (out / name).read_bytes() for name in files} == files
    assert _is_png(out / "convergence.png")  # a missing plot is drawn again

    # Without its saved model the study is not finished: the end runs again (no trial).
    shutil.rmtree(out / "model")
    refit = _run("tune", "--config", "tune.yaml", "--resume", "--no-progress", cwd=tmp_path)
    assert refit.returncode == 0, refit.stderr
    assert "already finished" not in refit.stdout and "Refitting" in refit.stderr
    assert (out / "journal.jsonl").read_bytes() == files["journal.jsonl"]
    best = json.loads((out / "best.json").read_text())
    assert best["model"] == str(out / "model") and best["n_trials"] == 3
    assert repurpose.load(out / "model").C == best["best_params"]["C"]


def test_killed_study_resumes_without_rerunning_finished_trials(tmp_path):
    n_trials = 14
    config = _with(HEAD, n_trials=n_trials, cv=3)
    _write(tmp_path, config)
    journal = tmp_path / "out" / "journal.jsonl"
    process = subprocess.Popen([sys.executable, "-m", "repurpose.cli", "tune", "--config",
                                "tune.yaml", "--no-progress"], cwd=tmp_path,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and process.poll() is None:
            if journal.exists() and len(journal.read_text().splitlines()) >= 3:
                break
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL
    assert not (tmp_path / "out" / "best.json").exists()
    lines = journal.read_text().splitlines()
    n_done = len(lines) - 1  # a torn last line, if the kill tore one, is dropped on resume
    assert 2 <= n_done < n_trials

    resumed = _run("tune", "--config", "tune.yaml", "--resume", "--no-progress", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    after = journal.read_text().splitlines()
    assert len(after) == 1 + n_trials
    assert after[:n_done] == lines[:n_done]  # finished trials kept, not run again
    trials = _jsonl(tmp_path / "out" / "trials.jsonl")
    assert [t["trial"] for t in trials] == list(range(1, n_trials + 1))

    # The same study without the kill suggests the same configurations. To round-off only:
    # the objective (a head trained with multi-threaded BLAS in another process) may differ
    # in its last bits, and the optimiser is told what it measured.
    straight = tmp_path / "straight"
    straight.mkdir()
    config["run"]["output_dir"] = str(straight / "out")
    uninterrupted = run_tuning(load_tune_config(_write(straight, config)))
    assert [t["params"] for t in trials] == [pytest.approx(t.params, rel=1e-6)
                                             for t in uninterrupted.history]
    best = json.loads((tmp_path / "out" / "best.json").read_text())
    assert best["best_params"] == pytest.approx(uninterrupted.best_params, rel=1e-6)


@pytest.mark.parametrize("train, searched, told", [
    ({}, {}, True),  # FineTuneRepurposer's default: cosine
    ({"lr_schedule": "step", "step_epochs": [3]}, {}, True),
    ({"warmup_epochs": 2}, {"lr_schedule": {"type": "categorical",
                                            "choices": ["cosine", "constant"]}}, False),
])
def test_tune_tells_the_early_stopping_scheduler_the_training_schedule(tmp_path, train,
                                                                        searched, told):
    raw = {"source": {"model": "digits_cnn"},
           "data": {"train": "demo", "n_per_class": 4},
           "model": {"transfer_layer": "fc1_relu_fwd"},
           "train": {"batch_size": 16, "validation_fraction": 0.3, "early_stopping": False,
                     **train},
           "run": {"output_dir": str(tmp_path / "out")},
           "tune": {"estimator": "finetune", "n_trials": 2, "seed": 0,
                    "early_stopping": {"max_budget": 4, "eta": 2},
                    "search_space": {"learning_rate": {"type": "real", "low": 0.01,
                                                       "high": 0.3, "log": True},
                                     **searched}}}
    run_tuning(tune_config_from_dict(raw, base_dir=str(tmp_path)))
    settings = _jsonl(tmp_path / "out" / "journal.jsonl")[0]["settings"]
    if not told:  # a searched schedule setting: trials follow different schedules
        assert "schedule" not in settings
        return
    expected = [learning_rate_at(e, 1.0, train.get("lr_schedule", "cosine"), 4,
                                 step_epochs=tuple(train.get("step_epochs", ())))
                for e in range(4)]
    assert settings["schedule"]["budgets"] == [1.0, 2.0, 3.0, 4.0]
    assert settings["schedule"]["rates"] == pytest.approx(expected, rel=1e-9)


def _config(tmp_path, raw=HEAD):
    raw = json.loads(json.dumps(raw))
    raw["run"]["output_dir"] = str(tmp_path / "out")
    return tune_config_from_dict(raw, name="tune.yaml", base_dir=str(tmp_path))


def test_output_folder_rules(tmp_path):
    cfg = _config(tmp_path)
    assert check_tune_output_dir(cfg) == "new"
    with pytest.raises(FileNotFoundError, match="holds no tuning run to resume"):
        check_tune_output_dir(cfg, resume=True)
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not a tuning run's files.*never removes"):
        check_tune_output_dir(cfg, overwrite=True)
    (out / "notes.txt").unlink()
    (out / "tune.resolved.yaml").write_text(yaml.safe_dump(cfg.to_dict()))
    (out / "journal.jsonl").write_text("{}\n")
    with pytest.raises(FileExistsError, match="Pass --resume"):
        check_tune_output_dir(cfg)
    assert check_tune_output_dir(cfg, resume=True) == "resume"
    more = _config(tmp_path, _with(HEAD, n_trials=9))  # extending a study is a resume
    assert check_tune_output_dir(more, resume=True) == "resume"
    other = _config(tmp_path, _with(HEAD, cv=3))
    with pytest.raises(FileExistsError, match="another tuning run.*tune.cv"):
        check_tune_output_dir(other, resume=True)
    (out / "mine.txt").write_text("kept")
    assert check_tune_output_dir(other, overwrite=True) == "new"
    assert sorted(os.listdir(out)) == ["mine.txt"]  # only the tuning run's files went


def test_tune_finetune_with_early_stopping(tmp_path, caplog):
    # A constant learning rate: the scheduler's rungs stop trials from the first ones on
    # (under a decaying schedule they wait for completed trials to show a rung ranks them).
    raw = {"source": {"model": "digits_cnn"},
           "data": {"train": "demo", "n_per_class": 6},
           "model": {"transfer_layer": "fc1_relu_fwd"},
           "train": {"batch_size": 16, "validation_fraction": 0.3, "early_stopping": False,
                     "lr_schedule": "constant"},
           "run": {"output_dir": str(tmp_path / "out")},
           "tune": {"estimator": "finetune", "n_trials": 4, "seed": 0,
                    "early_stopping": {"max_budget": 9, "eta": 3},
                    "search_space": {
                        "learning_rate": {"type": "real", "low": 0.01, "high": 0.3,
                                          "log": True},
                        "dropout": {"type": "categorical", "choices": [0.0, 0.5]}}}}
    cfg = tune_config_from_dict(raw, base_dir=str(tmp_path))
    caplog.set_level(logging.INFO, logger="repurpose")
    result = run_tuning(cfg)
    assert len(result.history) == 4 and result.report["metric"] == "val_accuracy"
    assert any(t.status == "stopped" for t in result.history)
    assert result.report["epochs_used"] < 4 * 9
    snippet = result.report["config"]
    assert snippet["train"]["learning_rate"] == result.best_params["learning_rate"]
    assert snippet["model"]["dropout"] == result.best_params["dropout"]
    assert snippet["train"]["n_epochs"] == 9
    header = _jsonl(tmp_path / "out" / "journal.jsonl")[0]
    assert header["format"] == "repurpose.bo.hyperband"
    assert "schedule" not in header["settings"]  # constant: the scheduler's default rules
    # One line per trial with the accuracy it measured: a stopped trial is told an estimate
    # of its final value (here a shifted, capped extrapolation, e.g. -0.1 for a trial that
    # measured 0.2), which the line names as such, never as the trial's value.
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Trial ")]
    assert len(lines) == 4 and all(r.name == "repurpose.bo.scheduler" for r in caplog.records
                                   if r.getMessage().startswith("Trial "))
    told_otherwise = 0
    for line, trial in zip(lines, result.history):
        measured = float(re.search(r"-> (\S+) at budget", line).group(1))
        assert measured == pytest.approx(trial.values[-1], abs=1e-4), line
        if trial.told_value != pytest.approx(trial.values[-1], abs=1e-4):
            told_otherwise += 1
            assert f"the optimiser was told {trial.told_value:.4g}" in line, line
    assert told_otherwise  # the case that used to be logged with the told value
    trials = _jsonl(tmp_path / "out" / "trials.jsonl")
    assert [t["value"] for t in trials] == [t.values[-1] for t in result.history]
    # The saved model, and the plots of a Hyperband study.
    model = repurpose.load(result.model_dir)
    assert type(model).__name__ == "FineTuneRepurposer"
    assert model.learning_rate == result.best_params["learning_rate"]
    assert model.n_epochs == 9 and result.report["model"] == result.model_dir
    assert [os.path.basename(p) for p in result.plots] == [
        "convergence.png", "parameters.png", "learning_curves.png"]
    assert all(_is_png(tmp_path / "out" / os.path.basename(p)) for p in result.plots)
    # Resuming a finished study runs no trial, refits nothing and gives the same result.
    again = run_tuning(cfg, resume=True)
    assert again.already_finished and again.report == json.loads(
        (tmp_path / "out" / "best.json").read_text())
    assert [t.params for t in again.history] == [t.params for t in result.history]


def test_bad_config_lists_every_problem(tmp_path):
    raw = {"source": {"model": "digits_cnnn"},
           "data": {"train": "demo", "n_per_class": 6},
           "model": {"transfer_layer": "fc1_relu_fwd"},
           "run": {"output_dir": "out"},
           "tune": {"estimator": "logistic", "n_trial": 4, "cv": 1,
                    "params": {"layer": ["fc1_relu_fwd"]},
                    "search_space": {
                        "c": {"type": "real", "low": 1, "high": 10},
                        "max_iter": {"type": "int", "low": 10, "high": 100},
                        "C": {"type": "real", "low": 10, "high": 1},
                        "class_weight": {"type": "categorical", "choices": "balanced"}}}}
    with pytest.raises(InvalidParameterError) as info:
        tune_config_from_dict(raw, name="tune.yaml", base_dir=str(tmp_path))
    message = str(info.value)
    assert message.startswith("tune.yaml has 9 problems: ")
    for words in ["source.model: Model 'digits_cnnn' is neither", "Did you mean 'digits_cnn'",
                  "tune.n_trial: unknown key. Did you mean 'n_trials'",
                  "tune.cv: must be an integer >= 2, got 1",
                  "model: applies to estimator 'finetune' only",
                  "tune.params.layer: not a parameter of LogisticRepurposer. Did you mean "
                  "'layers'",
                  "tune.search_space.c: not a parameter of LogisticRepurposer. Did you mean "
                  "'C'",
                  "tune.search_space.max_iter.type: must be one of 'real', 'integer', "
                  "'categorical', got 'int'",
                  "tune.search_space.C: Real: low must be smaller than high",
                  "tune.search_space.class_weight.choices: must be a list"]:
        assert words in message, words

    _write(tmp_path, raw)
    result = _run("tune", "--config", "tune.yaml", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("repurpose tune: error: tune.yaml has 9 problems")
    assert "Traceback" not in result.stderr and not (tmp_path / "out").exists()


@pytest.mark.parametrize("raw, words", [
    ({"tune": {"estimator": "finetune", "search_space": {"n_epochs": {
        "type": "integer", "low": 1, "high": 9}}, "early_stopping": {"max_budget": 9}}},
     "n_epochs: with tune.early_stopping the epochs are the budget"),
    ({"tune": {"estimator": "finetune", "params": {"learning_rate": 0.1},
               "early_stopping": {"max_budget": 9, "etaa": 3}}},
     "tune.params: finetune takes its fixed parameters from the model and train sections"),
    ({"tune": {"estimator": "logistic", "early_stopping": {"max_budget": 9}}},
     "tune.early_stopping: applies to estimator 'finetune' only"),
    ({"tune": {"estimator": "finetune"}, "train": {"validation_fraction": 0.0}},
     "fine-tuning trials are scored on validation data"),
    ({"tune": {"estimator": "svn"}}, "tune.estimator: must be one of.*Did you mean 'svm'"),
    ({"data": {"train": "demo", "test": "x"}}, "data.test: the demo task's test data"),
])
def test_bad_config_error(tmp_path, raw, words):
    config = json.loads(json.dumps(HEAD))
    for section, values in raw.items():
        config[section] = {**config.get(section, {}), **values}
    if config["tune"]["estimator"] == "finetune" and "params" not in raw.get("tune", {}):
        config["tune"].pop("params")
    with pytest.raises(InvalidParameterError, match=words):
        tune_config_from_dict(config, name="tune.yaml", base_dir=str(tmp_path))


@pytest.mark.parametrize("tune, words", [
    ({"params": {"layers": ["fc1_relu_fwd"], "pool": "mean"}},
     r"tune.params.pool: pool must be one of None, 'avg', 'max', got 'mean'"),
    ({"params": {"layers": ["fc1_relu_fwd"], "pool": "avg", "max_iter": 0}},
     "tune.params.max_iter: max_iter must be an integer >= 1, got 0"),
    ({"search_space": {"C": {"type": "real", "low": 0, "high": 10}}},
     "tune.search_space.C.low: C must be a positive number"),
    ({"search_space": {"C": {"type": "real", "low": 0.1, "high": 10},
                       "pool": {"type": "categorical", "choices": ["avg", "mean", None]}},
      "params": {"layers": ["fc1_relu_fwd"]}},
     r"tune.search_space.pool.choices\[1\]: pool must be one of"),
    ({"params": {"layers": ["fc1_relu"]}},
     "tune.params.layers: Unknown layer 'fc1_relu'. Did you mean 'fc1_relu_fwd'"),
])
def test_bad_estimator_value_error_before_any_trial(tmp_path, tune, words):
    cfg = _config(tmp_path, _with(HEAD, **tune))
    with pytest.raises(InvalidParameterError, match=words):
        run_tuning(cfg)
    assert not (tmp_path / "out").exists()


def test_bad_finetune_search_value_error_before_any_trial(tmp_path):
    raw = {"source": {"model": "digits_cnn"}, "data": {"train": "demo", "n_per_class": 6},
           "model": {"transfer_layer": "fc1_relu_fwd"},
           "run": {"output_dir": str(tmp_path / "out")},
           "tune": {"estimator": "finetune", "early_stopping": {"max_budget": 3},
                    "search_space": {
                        "dropout": {"type": "real", "low": 0.0, "high": 1.0},
                        "optimizer": {"type": "categorical", "choices": ["adam", "lbfgs"]}}}}
    cfg = tune_config_from_dict(raw, base_dir=str(tmp_path))
    with pytest.raises(InvalidParameterError) as info:
        run_tuning(cfg)
    message = str(info.value)
    assert message.startswith("The tuning config has 2 problems: ")
    assert "tune.search_space.dropout.high: dropout must be" in message
    assert "tune.search_space.optimizer.choices[1]: optimizer must be one of" in message
    assert not (tmp_path / "out").exists()


def test_bad_estimator_value_ok_and_cli_exit_status(tmp_path):
    from repurpose.jobs._tune import _check_estimator_params, _source_model

    for key, value in [("pool", "max"), ("pool", None), ("max_iter", 50)]:
        params = {**HEAD["tune"]["params"], key: value}
        cfg = _config(tmp_path, _with(HEAD, params=params))
        _check_estimator_params(cfg, _source_model(cfg))  # no error
    _write(tmp_path, _with(HEAD, params={"layers": ["fc1_relu_fwd"], "pool": "mean"}))
    result = _run("tune", "--config", "tune.yaml", "--no-progress", cwd=tmp_path)
    assert result.returncode == 2 and len(result.stderr.splitlines()) == 1, result.stderr
    assert ("tune.params.pool: pool must be one of None, 'avg', 'max', got 'mean'"
            in result.stderr)
    assert not (tmp_path / "out").exists()


def test_failed_refit_exits_1_and_keeps_the_study(tmp_path):
    # Refitting the best configuration fails with a ValueError (a usage error's type
    # elsewhere): still a failure during the run, exit 1 with a one-line cause.
    _write(tmp_path, _with(HEAD, n_trials=2))
    script = ("import sys\n"
              "import repurpose.jobs._tune as tuning\n"
              "from repurpose.cli import main\n"
              "def refit(*args):\n"
              "    raise ValueError('GpHead needs 2 samples of every class\\nmore detail')\n"
              "tuning._refit = refit\n"
              "sys.exit(main(['tune', '--config', 'tune.yaml', '--no-progress']))\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            cwd=tmp_path, timeout=300)
    assert result.returncode == 1, result.stderr
    lines = [line for line in result.stderr.splitlines() if "repurpose tune:" in line]
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert lines[0].startswith("repurpose tune: failed: RuntimeError: refitting the best "
                               "configuration")
    assert "ValueError: GpHead needs 2 samples of every class." in lines[0]
    assert "more detail" not in result.stderr
    best = json.loads((tmp_path / "out" / "best.json").read_text())
    assert best["test"] is None and best["test_error"].startswith("ValueError: GpHead")
    assert best["n_trials"] == 2 and best["best_params"]["C"] > 0
    assert best["model"] is None and not (tmp_path / "out" / "model").exists()
    assert _is_png(tmp_path / "out" / "convergence.png")  # the study's plots are written


def test_example_configs_are_valid():
    root = os.path.join(os.path.dirname(__file__), "..", "..", "demos", "jobs")
    for name in ("tune_head.yaml", "tune_finetune.yaml"):
        cfg = load_tune_config(os.path.join(root, name))
        assert cfg.tune.n_trials >= 10


def test_docs_list_every_tune_key():
    import dataclasses
    import pathlib

    from repurpose.jobs import TuneSection

    docs = pathlib.Path(__file__).parents[2] / "docs" / "guide" / "tuning.md"
    text = docs.read_text()
    missing = [f.name for f in dataclasses.fields(TuneSection) if f"`tune.{f.name}`" not in text]
    assert not missing, f"docs/guide/tuning.md does not document tune.{missing}"


def test_set_overrides_a_tuning_config(tmp_path):
    _write(tmp_path, HEAD)
    result = _run("tune", "--config", "tune.yaml", "--set", "tune.cv=1", "--set",
                  "tune.n_trials=0", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "tune.cv: must be an integer >= 2, got 1" in result.stderr
    assert "tune.n_trials: must be an integer >= 1, got 0" in result.stderr
    cfg = load_tune_config(tmp_path / "tune.yaml", overrides=["tune.n_trials=7"])
    assert cfg.tune.n_trials == 7
