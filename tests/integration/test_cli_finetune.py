"""``repurpose finetune`` and ``repurpose predict``, run as a user would: subprocesses.

The job is the demo task (digits_cnn, trained on digits 0-4, fine-tuned for shifted digits
5-9 with 10 labels per class) for 3 epochs.
"""
import csv
import io
import json
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import yaml

import repurpose.repurposers

# The end-to-end tests need FineTuneRepurposer; config and output-folder checks do not.
HAS_FINETUNE = hasattr(repurpose.repurposers, "FineTuneRepurposer")
needs_finetune = pytest.mark.skipif(not HAS_FINETUNE,
                                    reason="repurpose.repurposers.FineTuneRepurposer missing")

JOB = """\
# The demo task as a job (relative paths are relative to this file).
source:
  model: digits_cnn
data:
  train: shifted_digits
  classes: [5, 6, 7, 8, 9]
  n_per_class: 10
  seed: 0
model:
  transfer_layer: fc1_relu_fwd
train:
  learning_rate: 0.05
  n_epochs: 3
  batch_size: 16
  patience: 10
  seed: 0
run:
  ctx: cpu
  output_dir: {out}
"""


def _run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "repurpose.cli", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=300)


def _job_file(folder, out="out", name="job.yaml", text=JOB):
    path = folder / name
    path.write_text(text.format(out=out))
    return path


def _history(out):
    rows = json.loads((out / "metrics.json").read_text())["history"]
    return [{k: v for k, v in row.items() if k != "seconds"} for row in rows]


@pytest.fixture(scope="module")
def finished_job(tmp_path_factory):
    """One finished job: (folder with job.yaml, its output folder, the CompletedProcess)."""
    if not HAS_FINETUNE:
        pytest.skip("repurpose.repurposers.FineTuneRepurposer missing")
    folder = tmp_path_factory.mktemp("job")
    config = _job_file(folder)
    result = _run("finetune", "--config", str(config), cwd=folder)
    return folder, folder / "out", result


@needs_finetune
def test_finetune_job_writes_model_metrics_curve_and_resolved_config(finished_job):
    folder, out, result = finished_job
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert sorted(os.listdir(out)) == ["checkpoints", "config.resolved.yaml", "metrics.json",
                                       "model", "training_curve.png"]
    report = json.loads((out / "metrics.json").read_text())
    assert [row["epoch"] for row in report["history"]] == [1, 2, 3]
    assert set(report["history"][0]) >= {"epoch", "lr", "train_loss", "train_accuracy",
                                         "val_loss", "val_accuracy", "seconds"}
    assert report["classes"] == [5, 6, 7, 8, 9] and report["n_train"] == 50
    assert report["test"]["n_samples"] == 846  # digits 5-9 (896) less the 50 drawn
    assert set(report["test"]) >= {"accuracy", "nll", "brier", "ece"}
    assert (out / "training_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    resolved = yaml.safe_load((out / "config.resolved.yaml").read_text())
    assert resolved["train"]["n_epochs"] == 3 and resolved["run"]["output_dir"] == str(out)
    assert resolved["train"]["optimizer"] == "sgd"  # defaults are written out
    assert "test accuracy" in result.stdout and str(out) in result.stdout
    # Quiet by default: a progress bar and the summary, no log lines (those come with -v).
    assert "INFO" not in result.stderr and "Wrote" not in result.stderr
    model = repurpose.load(out / "model")
    assert list(model.classes_) == [5, 6, 7, 8, 9]


@needs_finetune
def test_finished_job_is_not_rerun(finished_job):
    folder, out, _ = finished_job
    for extra in ((), ("--resume",)):
        again = _run("finetune", "--config", "job.yaml", *extra, cwd=folder)
        assert again.returncode == 2 and "finished (model/ exists)" in again.stderr
        assert "Traceback" not in again.stderr


@needs_finetune
def test_killed_job_resumes_where_it_stopped(finished_job, tmp_path):
    _, reference, _ = finished_job
    config = _job_file(tmp_path)
    out = tmp_path / "out"
    # Kill the process hard (no clean-up) once the first epoch's checkpoint is on disk.
    killer = textwrap.dedent(f"""
        import logging, os, sys
        from repurpose.cli import main

        class KillAfterFirstCheckpoint(logging.Handler):
            def emit(self, record):
                if os.path.exists({str(out / 'checkpoints' / 'checkpoint.json')!r}):
                    os._exit(137)

        logging.getLogger().addHandler(KillAfterFirstCheckpoint())
        sys.exit(main(["finetune", "--config", {str(config)!r}, "-v"]))
    """)
    killed = subprocess.run([sys.executable, "-c", killer], capture_output=True, text=True,
                            cwd=tmp_path, timeout=300)
    assert killed.returncode == 137, killed.stderr
    assert not (out / "model").exists() and (out / "config.resolved.yaml").exists()

    plain = _run("finetune", "--config", str(config), cwd=tmp_path)
    assert plain.returncode == 2 and "Pass --resume to continue it" in plain.stderr

    resumed = _run("finetune", "--config", str(config), "--resume", "-v", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert "Resumed" in resumed.stderr  # -v after the command: the job's log lines
    assert "resuming digits_cnn on 50 images" in resumed.stderr
    got, want = _history(out), _history(reference)
    assert [r["epoch"] for r in got] == [1, 2, 3]
    for a, b in zip(got, want):
        for key in ("lr", "train_loss", "val_loss", "val_accuracy"):
            assert a[key] == pytest.approx(b[key], rel=1e-4, abs=1e-6), key


@needs_finetune
def test_predict_writes_csv_with_probabilities(finished_job, tmp_path):
    from repurpose.demo import make_demo_task

    _, out, _ = finished_job
    X_test = make_demo_task(n_per_class=10)[2][:7]
    np.save(tmp_path / "x.npy", X_test)
    result = _run("predict", "--model", str(out / "model"), "--data", str(tmp_path / "x.npy"),
                  "--out", str(tmp_path / "preds.csv"), "--proba")
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO((tmp_path / "preds.csv").read_text())))
    assert len(rows) == 7 and list(rows[0]) == ["index", "prediction", "proba_5", "proba_6",
                                                "proba_7", "proba_8", "proba_9"]
    model = repurpose.load(out / "model")
    np.testing.assert_array_equal([int(r["prediction"]) for r in rows], model.predict(X_test))
    proba = np.array([[float(r[f"proba_{c}"]) for c in range(5, 10)] for r in rows])
    np.testing.assert_allclose(proba, model.predict_proba(X_test), atol=1e-5)
    # To stdout, predictions only; an existing --out is refused.
    to_stdout = _run("predict", "--model", str(out / "model"), "--data", "digits")
    assert to_stdout.returncode == 0, to_stdout.stderr
    lines = to_stdout.stdout.splitlines()
    assert lines[0] == "index,prediction" and len(lines) == 1798
    again = _run("predict", "--model", str(out / "model"), "--data", str(tmp_path / "x.npy"),
                 "--out", str(tmp_path / "preds.csv"))
    assert again.returncode == 2 and "already exists" in again.stderr


@needs_finetune
def test_predict_a_flat_folder_or_image_files(finished_job, tmp_path):
    from PIL import Image

    _, out, _ = finished_job
    flat = tmp_path / "flat"
    flat.mkdir()
    for i in range(3):
        Image.new("L", (8, 8), color=60 * i).save(flat / f"img{i}.png")
    result = _run("predict", "--model", str(out / "model"), "--data", str(flat), "--grayscale",
                  "--proba")
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(result.stdout.splitlines()))
    assert [r["file"] for r in rows] == ["img0.png", "img1.png", "img2.png"]
    assert list(rows[0])[:3] == ["index", "file", "prediction"] and "proba_5" in rows[0]
    files = _run("predict", "--model", str(out / "model"), "--data", str(flat / "img2.png"),
                 str(flat / "img0.png"), "--grayscale")
    assert files.returncode == 0, files.stderr
    assert [line.split(",")[1] for line in files.stdout.splitlines()[1:]] == [
        str(flat / "img2.png"), str(flat / "img0.png")]
    rgb = _run("predict", "--model", str(out / "model"), "--data", str(flat))
    assert rgb.returncode == 2 and "pass --grayscale" in rgb.stderr, rgb.stderr


@needs_finetune
def test_overwrite_starts_a_finished_job_again(finished_job, tmp_path):
    config = _job_file(tmp_path)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "notes.txt").write_text("mine")
    refused = _run("finetune", "--config", str(config), "--overwrite", cwd=tmp_path)
    assert refused.returncode == 2 and "never removes them" in refused.stderr
    (tmp_path / "out" / "notes.txt").unlink()
    first = _run("finetune", "--config", str(config), "--set", "train.n_epochs=1", "-q",
                 cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    again = _run("finetune", "--config", str(config), "--set", "train.n_epochs=1", "-q",
                 "--overwrite", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert again.stderr == ""  # -q: no progress bar, no log lines


# ---------------------------------------------------------------------- no training needed
def test_bad_config_exits_2_listing_every_problem(tmp_path):
    text = JOB.replace("learning_rate: 0.05", "lr: 0.05\n  learning_rate: fast") \
              .replace("model: digits_cnn", "model: digits_cn") \
              .replace("n_per_class: 10", "n_per_class: 10\n  resize: 32")
    config = _job_file(tmp_path, text=text)
    result = _run("finetune", "--config", str(config), "--set", "train.optimizer=sgdd",
                  cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(lines) == 1
    line = lines[0]
    assert line.startswith(f"repurpose finetune: error: {config} has 5 problems: ")
    for words in ("source.model: Model 'digits_cn' is neither", "Did you mean 'digits_cnn'?",
                  "train.lr: unknown key. Did you mean 'learning_rate'?",
                  "train.learning_rate: must be a number in (0, 1000], got 'fast'",
                  "train.optimizer: must be one of", "data.resize: applies to image_folder"):
        assert words in line
    assert not (tmp_path / "out").exists()  # nothing written before validation passed


@pytest.mark.parametrize("args, words", [
    (("finetune", "--config", "missing.yaml"), "Config file 'missing.yaml' does not exist"),
    (("finetune", "--config", "job.yaml", "--set", "n_epochs=3"), "expected section.key=value"),
    (("finetune", "--config", "job.yaml", "--resume"), "holds no job to resume"),
    (("predict", "--model", "nowhere", "--data", "digits"), "is not a folder"),
])
def test_bad_usage_exits_2(tmp_path, args, words):
    _job_file(tmp_path)
    result = _run(*args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert words in result.stderr and "Traceback" not in result.stderr


def test_output_dir_of_another_job_is_refused_before_training(tmp_path):
    other = _job_file(tmp_path, name="other.yaml")
    from repurpose.jobs import RESOLVED_CONFIG_NAME, dump_config, load_config

    other_job = load_config(other, ["train.n_epochs=7"])
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / RESOLVED_CONFIG_NAME).write_text(dump_config(other_job))
    config = _job_file(tmp_path)
    for extra in ((), ("--resume",)):
        result = _run("finetune", "--config", str(config), *extra, cwd=tmp_path)
        assert result.returncode == 2
        assert "holds another job's files" in result.stderr
        assert "train.n_epochs (3 here, 7 there)" in result.stderr
        assert "Traceback" not in result.stderr
    assert sorted(os.listdir(tmp_path / "out")) == [RESOLVED_CONFIG_NAME]


def test_output_dir_with_foreign_files_is_refused(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "thesis.tex").write_text("\\begin{document}")
    config = _job_file(tmp_path)
    result = _run("finetune", "--config", str(config), cwd=tmp_path)
    assert result.returncode == 2 and "not a repurpose job's files" in result.stderr
    shutil.rmtree(tmp_path / "out")


@needs_finetune
def test_image_folder_job_and_predict_reuse_its_transforms(tmp_path):
    from PIL import Image

    from repurpose.data import load_digits_images

    X, y = load_digits_images(classes=[5, 6, 7])
    names = {5: "five", 6: "six", 7: "seven"}
    for split, rows in (("train", range(0, 8)), ("test", range(8, 11))):
        for digit, name in names.items():
            (tmp_path / "imgs" / split / name).mkdir(parents=True)
            for i in rows:
                image = (X[y == digit][i, 0] * 255).astype(np.uint8)
                Image.fromarray(image).save(tmp_path / "imgs" / split / name /
                                                      f"{i}.png")
    (tmp_path / "job.json").write_text(json.dumps({
        "source": {"model": "digits_cnn"},
        "data": {"train": "imgs/train", "test": "imgs/test", "grayscale": True},
        "train": {"n_epochs": 2, "batch_size": 8, "validation_fraction": 0.25},
        "run": {"output_dir": "out"}}))
    result = _run("finetune", "--config", "job.json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert report["classes"] == ["five", "seven", "six"] and report["test"]["n_samples"] == 9
    # grayscale comes from the job's config.resolved.yaml (3 channels would not fit the model)
    result = _run("predict", "--model", "out/model", "--data", "imgs/test", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert list(rows[0]) == ["index", "file", "prediction"] and len(rows) == 9
    assert rows[0]["file"] == os.path.join("five", "10.png")
    assert {r["prediction"] for r in rows} <= {"five", "six", "seven"}


def test_test_data_with_unseen_classes_is_refused_before_training(tmp_path):
    rng = np.random.RandomState(0)
    np.save(tmp_path / "x.npy", rng.rand(12, 1, 8, 8).astype(np.float32))
    np.save(tmp_path / "y.npy", np.array(["cat", "dog"] * 6))
    np.save(tmp_path / "yt.npy", np.array(["cat", "dog", "emu"] * 4))
    (tmp_path / "job.yaml").write_text(yaml.safe_dump({
        "source": {"model": "digits_cnn"},
        "data": {"train": {"X": "x.npy", "y": "y.npy"}, "test": {"X": "x.npy", "y": "yt.npy"}},
        "run": {"output_dir": "out"}}))
    result = _run("finetune", "--config", "job.yaml", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "data.test has classes that data.train lacks: 'emu'" in result.stderr
    assert not (tmp_path / "out").exists()
