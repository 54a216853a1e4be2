"""The benchmark suite's runner and scoring (benchmarks/bo.py, benchmarks/bo_methods.py):
methods evaluate the budget they are given, noisy runs are scored on the noise-free value of
the point they would recommend, ranks share ties, ratios and stalled seeds are counted as
documented, and an interrupted suite continues without running anything twice."""
import dataclasses
import json
import math
import pathlib
import sys

import numpy as np
import pytest

_BENCH = pathlib.Path(__file__).resolve().parents[3] / "benchmarks"
sys.path.insert(0, str(_BENCH))

import bo  # noqa: E402
import bo_methods  # noqa: E402
from bo_problems import make  # noqa: E402


def _small(name, n_evals, seed=0):
    return dataclasses.replace(make(name, seed), n_evals=n_evals)


@pytest.mark.parametrize("method", ["repurpose.bo", "random"])
def test_methods_spend_the_budget_and_record_what_they_evaluated(method):
    problem = _small("mixed_nn", 8)
    history = bo_methods.run_method(method, problem, seed=3)
    assert len(history.params) == len(history.values) == len(history.ask_s) == 8
    for params, value in zip(history.params, history.values):
        problem.space.check_params(params)
        assert value == pytest.approx(problem.objective(params))
    again = bo_methods.run_method(method, problem, seed=3)
    assert again.values == history.values  # seeded


def test_only_repurpose_takes_options():
    with pytest.raises(ValueError, match="only repurpose.bo"):
        bo_methods.run_method("random", _small("branin", 3), 0, n_initial=2)


def test_ablation_option_reaches_the_acquisition_optimiser():
    problem = _small("mixed_nn", 7)
    one = bo_methods.run_method("repurpose.bo", problem, 0, max_rounds=1, n_initial=5)
    three = bo_methods.run_method("repurpose.bo", problem, 0, max_rounds=3, n_initial=5)
    assert one.values[:5] == three.values[:5]  # same design; the options only act after it


@pytest.mark.parametrize("variant", sorted(bo.VARIANTS))
def test_every_ablation_variant_runs_on_a_mixed_space(variant):
    # A variant naming a setting the optimiser no longer has fails here, not hours into a
    # suite run.
    problem = _small("mixed_nn", 7)
    history = bo_methods.run_method("repurpose.bo", problem, 0, n_initial=5,
                                    **bo.VARIANTS[variant])
    assert len(history.values) == 7


def test_noisy_runs_are_scored_on_the_clean_value_of_the_recommended_point():
    problem = make("branin_noisy", 0)
    argmin = problem.argmin
    far = {name: dim.low for name, dim in problem.space.dimensions.items()}
    # The far point was observed lower (noise), so it is what the run recommends.
    history = bo_methods.History()
    history.add(argmin, 5.0, 0.0)
    history.add(far, 1.0, 0.0)
    curve = bo_methods.regret_curve(history, problem, problem.optimum)
    assert curve[0] == pytest.approx(0.0, abs=1e-9)
    assert curve[1] == pytest.approx(problem.clean(far) - problem.optimum)
    assert curve[1] > 10


def test_one_run_record():
    record = bo._one_run("random", "default", {}, "mixed_nn_noisy", 2)
    assert record["n_evals"] == make("mixed_nn_noisy").n_evals
    inc = record["incumbent"]
    assert len(inc) == record["n_evals"]
    clean = make("mixed_nn_noisy", 2).clean
    best = int(np.argmin(record["values"]))
    assert record["best_params"] == bo_methods._plain(record["best_params"],
                                                      make("mixed_nn").space)
    assert inc[-1] == pytest.approx(clean(record["best_params"]))
    assert best >= 0 and json.loads(json.dumps(record)) == record  # JSON as written


def _record(method, problem, seed, final, variant="default"):
    return {"method": method, "variant": variant, "options": {}, "problem": problem,
            "seed": seed, "incumbent": [final + 1.0, final], "ask_s_mean": 0.1}


def _records(finals):
    """finals: {label: {problem: [final value per seed]}}."""
    out = []
    for label, by_problem in finals.items():
        method, _, variant = label.partition("[")
        for problem, values in by_problem.items():
            for seed, v in enumerate(values):
                out.append(_record(method, problem, seed, v, variant.rstrip("]") or "default"))
    return out


def test_ranks_ratios_stalls_and_scores():
    opt = make("branin").optimum
    finals = {
        "repurpose.bo": {"branin": [opt + r for r in (0.01, 0.02, 0.03, 0.04, 5.0)]},
        "optuna-gp": {"branin": [opt + r for r in (0.004, 0.005, 0.006, 0.007, 0.008)]},
        "emukit": {"branin": [opt + r for r in (0.02, 0.02, 0.03, 0.03, 0.03)]},
        "random": {"branin": [opt + r for r in (1.0, 1.5, 2.0, 2.5, 3.0)]},
    }
    labels = ["repurpose.bo", "random", "optuna-gp", "emukit"]
    rows, avg = bo.summarise(_records(finals), labels, "repurpose.bo")
    row = rows["branin"]
    assert row["median"]["repurpose.bo"] == pytest.approx(0.03)
    # equal medians (0.03) share ranks 2 and 3
    assert row["rank"] == {"optuna-gp": 1.0, "repurpose.bo": 2.5, "emukit": 2.5, "random": 4.0}
    assert row["best_peer"] == "optuna-gp"
    assert row["ratio_to_best_peer"] == pytest.approx(0.03 / 0.006)
    assert row["stalled"]["repurpose.bo"] == 1  # 5.0 > 10 x 0.03
    assert row["peer_without_stalls"]
    assert row["random_ratio"] == pytest.approx(2.0 / 0.03)
    assert row["score"]["repurpose.bo"] == pytest.approx(1 - 0.03 / 2.0)
    assert row["score"]["random"] == pytest.approx(0.0)
    assert avg == {m: row["rank"][m] for m in labels}


def test_regrets_below_the_floor_tie_and_real_tasks_use_the_best_run():
    opt = make("branin").optimum
    finals = {"repurpose.bo": {"branin": [opt] * 3, "svc_digits": [0.02, 0.03, 0.04]},
              "optuna-gp": {"branin": [opt + 1e-9] * 3, "svc_digits": [0.01, 0.05, 0.05]},
              "random": {"branin": [opt + 1.0] * 3, "svc_digits": [0.06, 0.07, 0.08]}}
    rows, _ = bo.summarise(_records(finals), ["repurpose.bo", "random", "optuna-gp"],
                           "repurpose.bo")
    assert rows["branin"]["rank"]["repurpose.bo"] == rows["branin"]["rank"]["optuna-gp"] == 1.5
    assert rows["branin"]["ratio_to_best_peer"] == pytest.approx(1.0)
    real = rows["svc_digits"]
    assert real["optimum"] == pytest.approx(0.01)  # the best any run found
    assert real["median"]["repurpose.bo"] == pytest.approx(0.02)
    assert real["median"]["optuna-gp"] == pytest.approx(0.04)


def test_problems_a_method_did_not_run_are_left_out_of_the_ranks():
    opt = make("branin").optimum
    finals = {"repurpose.bo": {"branin": [opt + 0.1], "hartmann3": [0.0]},
              "random": {"branin": [opt + 1.0]}}
    rows, avg = bo.summarise(_records(finals), ["repurpose.bo", "random"], "repurpose.bo")
    assert list(rows) == ["branin"] and avg == {"repurpose.bo": 1.0, "random": 2.0}


def test_problems_a_method_has_not_run_every_seed_of_are_left_out_of_the_ranks():
    # Medians of 2 seeds against medians of 10 would rank luck (a peer still running).
    opt = make("branin").optimum
    finals = {"repurpose.bo": {"branin": [opt + 0.1] * 3, "six_hump_camel": [0.0] * 3},
              "random": {"branin": [opt + 1.0] * 3, "six_hump_camel": [5.0]}}
    rows, avg = bo.summarise(_records(finals), ["repurpose.bo", "random"], "repurpose.bo")
    assert list(rows) == ["branin"] and avg == {"repurpose.bo": 1.0, "random": 2.0}


def test_report_and_ablation_tables(tmp_path):
    opt = make("branin").optimum
    camel = make("six_hump_camel").optimum
    finals = {"repurpose.bo": {"branin": [opt + r for r in (0.1, 0.2, 0.3)],
                               "six_hump_camel": [camel + r for r in (0.1, 0.1, 0.1)]},
              # the variant ran on branin only; there its default ranks 2nd of 3
              "repurpose.bo[warp-y]": {"branin": [opt + r for r in (0.01, 0.02, 0.03)]},
              "optuna-gp": {"branin": [opt + r for r in (0.05, 0.05, 0.05)],
                            "six_hump_camel": [camel + r for r in (0.3, 0.3, 0.3)]},
              "random": {"branin": [opt + r for r in (1.0, 1.0, 1.0)],
                         "six_hump_camel": [camel + r for r in (1.0, 1.0, 1.0)]}}
    out = tmp_path / "report.md"
    bo.report(_records(finals), markdown=str(out))
    text = out.read_text()
    assert "| average rank | 1.50 | 3.00 | 1.50 |" in text
    assert "worst ratio to the best peer 4.00 on branin (optuna-gp)" in text
    ablation = [line for line in text.splitlines() if line.startswith("| repurpose.bo")]
    assert ablation[0].startswith("| repurpose.bo | 2 | 1.50 | 1.50 | 4.00 | 1 | 1.00 | 0 / 0 |")
    assert ablation[1].startswith(
        "| repurpose.bo[warp-y] | 1 | 1.00 | 2.00 | 0.40 | 0 | 0.10 | 1 / 0 |")


def test_suite_continues_an_interrupted_results_file(tmp_path, capsys):
    results = tmp_path / "runs.jsonl"
    first = bo.suite(["random"], ["default"], ["mixed_nn"], [0], 1, str(results))
    assert len(first) == 1
    with open(results, "a") as fh:
        fh.write('{"method": "random", "torn')  # a killed writer's last line
    again = bo.suite(["random"], ["default"], ["mixed_nn"], [0, 1], 1, str(results))
    assert sorted(r["seed"] for r in again) == [0, 1]
    assert "1 runs to do (1 already in" in capsys.readouterr().out
    assert math.isclose(again[0]["incumbent"][-1], first[0]["incumbent"][-1])


def test_suite_leaves_out_variants_that_change_nothing_on_a_problem(tmp_path, capsys):
    # Branin has no categorical parameter, so without the mixed kernel it is the default.
    assert not bo.APPLIES["no-mixed-kernel"](bo.make("branin"))
    assert bo.APPLIES["no-mixed-kernel"](bo.make("mixed_nn"))
    records = bo.suite(["repurpose.bo"], ["no-mixed-kernel"], ["branin"], [0, 1], 1,
                       str(tmp_path / "runs.jsonl"))
    assert records == []
    out = capsys.readouterr().out
    assert "0 runs to do" in out and "2 runs left out" in out
