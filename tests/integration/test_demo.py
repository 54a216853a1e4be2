"""The main job: ``repurpose demo`` end to end."""
import json
import subprocess
import sys

import pytest

from repurpose.demo import make_demo_task, run_demo


def test_demo_report_and_transfer_helps(tmp_path):
    report = run_demo(out=tmp_path / "report", n_per_class=10, random_state=0)
    rows = {r["model"]: r for r in report["results"]}
    pixels = rows.pop("logistic (raw pixels)")
    assert {"logistic (digits_cnn features)", "svm (digits_cnn features)"} <= set(rows)
    for name, row in rows.items():
        # Transfer helps: every head on the source network's features beats raw pixels
        # clearly, in accuracy and in NLL.
        assert row["accuracy"] > pixels["accuracy"] + 0.15, name
        assert row["nll"] < pixels["nll"], name
    files = sorted(p.name for p in (tmp_path / "report").iterdir())
    assert files == ["reliability.png", "results.json", "results.md"]
    saved = json.loads((tmp_path / "report" / "results.json").read_text())
    assert saved["task"]["n_train"] == 50 and len(saved["results"]) == len(report["results"])
    assert "| logistic (raw pixels) |" in (tmp_path / "report" / "results.md").read_text()
    with pytest.raises(FileExistsError, match="already exists"):
        run_demo(out=tmp_path / "report")


def test_demo_task_is_seeded_and_disjoint():
    a = make_demo_task(n_per_class=5, random_state=1)
    b = make_demo_task(n_per_class=5, random_state=1)
    for x, y in zip(a, b):
        assert (x == y).all()
    X_train, y_train, X_test, y_test = a
    assert len(X_train) == 25 and len(X_train) + len(X_test) == 896
    with pytest.raises(ValueError, match="n_per_class must be an integer >= 2"):
        make_demo_task(n_per_class=1)


def test_demo_command(tmp_path):
    result = subprocess.run([sys.executable, "-m", "repurpose.cli", "demo", "--out",
                             str(tmp_path / "r"), "--no-plots"], capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr
    assert "| logistic (raw pixels) |" in result.stdout and "accuracy" in result.stdout
