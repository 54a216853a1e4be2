"""The report ``repurpose demo --out DIR`` writes: strict JSON and a reliability figure."""
import json

from repurpose.demo import run_demo


def _refuse(constant):
    raise ValueError(f"results.json holds the non-standard JSON constant {constant}")


def test_demo_report_is_strict_json(tmp_path):
    report = run_demo(out=tmp_path / "report", n_per_class=3, random_state=0)
    text = (tmp_path / "report" / "results.json").read_text(encoding="utf-8")
    saved = json.loads(text, parse_constant=_refuse)  # no NaN / Infinity / -Infinity
    # Empty reliability bins (NaN accuracy in memory) are null in the file.
    for row, saved_row in zip(report["results"], saved["results"]):
        assert saved_row["model"] == row["model"]
        for key in ("accuracy", "confidence"):
            assert [None if v != v else v for v in row["reliability"][key]] \
                == saved_row["reliability"][key]
    assert any(v is None for row in saved["results"] for v in row["reliability"]["accuracy"])
    png = (tmp_path / "report" / "reliability.png").read_bytes()
    assert png[:4] == b"\x89PNG"
