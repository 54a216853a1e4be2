"""Benchmark of repurpose.bo: a suite of 24 problems, side by side with its peers.

    python benchmarks/bo.py suite  [--methods M,..] [--variants V,..] [--problems P,..]
                                   [--seeds N] [--jobs J] [--results FILE] [--markdown FILE]
    python benchmarks/bo.py report --results FILE[,FILE..] [--markdown FILE] [--focus V]
    python benchmarks/bo.py timing                    # one suggestion at 100 observations
    python benchmarks/bo.py demo [--seeds N]          # BayesSearchCV on the demo task

``suite`` runs every method on every problem of ``benchmarks/bo_problems.py`` for seeds
0..N-1 (10 by default), ``--jobs`` runs at a time (one thread each), appending one JSON line
per run to ``--results`` (runs already in that file with the same method, options, problem
and seed are not run again, so an interrupted suite continues and a new variant adds to an
old file). Methods are those of ``benchmarks/bo_methods.py`` that import here: repurpose.bo,
random search, Optuna TPE and GPSampler, scikit-optimize, emukit and HEBO (build their
environment with ``benchmarks/make_bo_peers.sh``). ``--variants`` adds repurpose.bo with
other settings (:data:`VARIANTS`), for the ablation table.

The report gives, per problem, the median simple regret and its inter-quartile range over
the seeds; simple regret is the noise-free value of the point with the best observed value
(what the method would recommend) minus the known minimum, or, on the real tuning tasks,
minus the best value any run found. From those medians: each method's rank per problem
(1 = lowest median regret, ties share), the average rank over the suite, a normalised score
``1 - median / median of random search`` (1: optimum found; 0: no better than random), and
for repurpose.bo (or ``--focus``) the ratio of its median to the best peer's, its seeds more
than 10 times its median (stalled runs), and whether it is 3 times better than random.
Regrets below ``1e-6`` times random search's median count as equal to that floor.
"""
import argparse
import concurrent.futures
import contextlib
import json
import math
import os
import platform
import subprocess
import sys
import time

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # --jobs runs share the CPUs; one thread per run

import numpy as np  # noqa: E402

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, _HERE)
sys.path.insert(1, os.path.join(_HERE, os.pardir))

from bo_methods import (INITIAL_DESIGN, METHODS, available, incumbent_curve,  # noqa: E402
                        run_method)
from bo_problems import PROBLEMS, make  # noqa: E402
from repurpose.bo import BayesianOptimizer, Categorical, Real  # noqa: E402

DEFAULT = "repurpose.bo"
#: repurpose.bo settings compared in the ablation table: name -> BayesianOptimizer keywords.
VARIANTS = {
    "default": {},
    "one-round": {"max_rounds": 1},
    "warp-always": {"output_warping": True},
    "no-warp-y": {"output_warping": False},
    "no-mixed-kernel": {"mixed_kernel": False},
    "plain-ei": {"plain_ei": True},
    "no-trust-region": {"trust_region": False},
    # the optimiser before issue 14
    "before-14": {"output_warping": False, "mixed_kernel": False, "trust_region": False,
                  "max_rounds": 1},
}
#: Variants that change nothing on some problems, with the test for the problems they do
#: change: the suite runs them only there, rather than repeat the default's runs under
#: another name (the ablation table compares each variant on the problems it ran on).
APPLIES = {"no-mixed-kernel": lambda problem: len(problem.space.categorical_columns) > 0}
PEERS = [m for m in METHODS if m not in (DEFAULT, "random")]


# ----------------------------------------------------------------------------- running
def _label(method, variant):
    return method if method != DEFAULT or variant == "default" else f"{DEFAULT}[{variant}]"


def _key(record):
    return (record["method"], json.dumps(record["options"], sort_keys=True),
            record["problem"], record["seed"])


def _one_run(method, variant, options, problem_name, seed):
    try:
        import torch  # noqa: F401  (peers on torch: one thread per run, like numpy)
        torch.set_num_threads(1)
    except ImportError:
        pass
    problem = make(problem_name, seed)
    t0 = time.perf_counter()
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
        history = run_method(method, problem, seed, **dict(options))  # HEBO prints its jitter
    wall = time.perf_counter() - t0
    incumbent = incumbent_curve(history, problem)
    return {"method": method, "variant": variant, "options": options,
            "problem": problem_name, "seed": seed, "n_evals": len(history.values),
            "incumbent": incumbent, "values": history.values,
            "best_params": history.params[int(np.argmin(history.values))],
            "ask_s_mean": float(np.mean(history.ask_s)), "wall_s": wall,
            "crashed": history.crashed}


def _commit():
    try:
        out = subprocess.run(["git", "-C", _HERE, "describe", "--always", "--dirty"],
                             capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or None
    except OSError:
        return None


def read_results(path):
    records = []
    if path and os.path.exists(path):
        with open(path) as fh:
            for line in fh:
                if line.strip():
                    try:
                        records.append(json.loads(line))
                    except json.JSONDecodeError:  # a torn last line from a killed run
                        pass
    return records


def suite(methods, variants, problems, seeds, jobs, results_path):
    """Run what ``results_path`` does not hold yet; return all its records."""
    done = {_key(r) for r in read_results(results_path)}
    made = {p: make(p) for p in problems}
    tasks, no_op = [], 0
    for method in methods:
        for variant in (variants if method == DEFAULT else ["default"]):
            options = VARIANTS[variant] if method == DEFAULT else {}
            applies = APPLIES.get(variant) if method == DEFAULT else None
            for problem in problems:
                if applies is not None and not applies(made[problem]):
                    no_op += len(seeds)
                    continue
                for seed in seeds:
                    rec = {"method": method, "options": options, "problem": problem,
                           "seed": seed}
                    if _key(rec) not in done:
                        tasks.append((method, variant, options, problem, seed))
    # Slowest first, so the pool does not end on one long run.
    cost = {"hebo": 8, "scikit-optimize": 3, "emukit": 2, "optuna-gp": 2, DEFAULT: 2}
    problem_cost = {p: m.n_evals * (5 if m.optimum is None else 1)
                    for p, m in made.items()}  # real tasks: slow objectives
    tasks.sort(key=lambda t: -cost.get(t[0], 0.2) * problem_cost[t[3]])
    print(f"{len(tasks)} runs to do ({len(done)} already in {results_path}), {jobs} at a time",
          flush=True)
    if no_op:
        print(f"  {no_op} runs left out: variants that change nothing on those problems "
              f"({', '.join(sorted(APPLIES))})", flush=True)
    commit = _commit()
    if os.path.exists(results_path) and os.path.getsize(results_path):
        with open(results_path, "rb+") as fh:  # end a torn last line before adding to it
            fh.seek(-1, os.SEEK_END)
            if fh.read(1) != b"\n":
                fh.write(b"\n")
    started = time.perf_counter()
    with concurrent.futures.ProcessPoolExecutor(max_workers=jobs) as pool, \
            open(results_path, "a") as out:
        futures = {pool.submit(_one_run, *t): t for t in tasks}
        for i, fut in enumerate(concurrent.futures.as_completed(futures), 1):
            method, variant, _, problem, seed = futures[fut]
            try:
                record = fut.result()
            except Exception as err:  # one failing peer run must not lose the others
                print(f"  FAILED {_label(method, variant)} {problem} seed {seed}: "
                      f"{type(err).__name__}: {err}", flush=True)
                continue
            record["commit"] = commit
            out.write(json.dumps(record) + "\n")
            out.flush()
            if i % 20 == 0 or i == len(tasks):
                print(f"  {i}/{len(tasks)} runs, {time.perf_counter() - started:.0f} s",
                      flush=True)
    return read_results(results_path)


# ----------------------------------------------------------------------------- scoring
def regrets(records):
    """{problem: {label: [final regret per seed]}} and {problem: optimum used}."""
    optimum = {}
    for name in {r["problem"] for r in records}:
        known = make(name).optimum
        if known is None:  # a real task: the best value any run found
            known = min(r["incumbent"][-1] for r in records if r["problem"] == name)
        optimum[name] = known
    out = {}
    for r in records:
        label = _label(r["method"], r["variant"])
        out.setdefault(r["problem"], {}).setdefault(label, {})[r["seed"]] = \
            max(r["incumbent"][-1] - optimum[r["problem"]], 0.0)
    return ({p: {m: [v[s] for s in sorted(v)] for m, v in by.items()}
             for p, by in out.items()}, optimum)


def _floor(by_method):
    rand = by_method.get("random")
    return 1e-6 * float(np.median(rand)) if rand else 1e-12


def summarise(records, labels, focus):
    """Per problem: median, IQR, rank, normalised score of each label; and for ``focus``
    the ratio to the best peer, stalled seeds and the ratio of random to it."""
    reg, optimum = regrets(records)
    rows, ranks = {}, {m: [] for m in labels}
    for problem in sorted(reg, key=list(PROBLEMS).index):
        by = reg[problem]
        present = [m for m in labels if m in by]
        if len(present) < len(labels):
            continue  # a problem not every compared method ran on is left out of the ranks
        if len({len(by[m]) for m in present}) > 1:
            continue  # and one where some method has not run every seed yet
        floor = _floor(by)
        med = {m: max(float(np.median(by[m])), floor) for m in present}
        order = sorted(present, key=lambda m: med[m])
        rank = {}
        for m in present:  # ties (equal medians, e.g. at the floor) share their mean rank
            same = [i + 1 for i, o in enumerate(order) if math.isclose(med[o], med[m],
                                                                       rel_tol=1e-9)]
            rank[m] = float(np.mean(same))
            ranks[m].append(rank[m])
        rand = med.get("random")
        row = {"optimum": optimum[problem], "n_seeds": {m: len(by[m]) for m in present},
               "median": med, "rank": rank,
               "q1": {m: float(np.percentile(by[m], 25)) for m in present},
               "q3": {m: float(np.percentile(by[m], 75)) for m in present},
               "score": {m: (1.0 - med[m] / rand) if rand else None for m in present},
               "stalled": {m: int(sum(r > 10 * med[m] for r in by[m])) for m in present}}
        peers = [m for m in present if m in PEERS]
        if focus in present and peers:
            best_peer = min(peers, key=lambda m: med[m])
            row["best_peer"] = best_peer
            row["ratio_to_best_peer"] = med[focus] / med[best_peer]
            row["peer_without_stalls"] = any(row["stalled"][m] == 0 for m in peers)
            row["random_ratio"] = rand / med[focus] if rand else None
            row["peer_3x_random"] = bool(rand) and any(rand / med[m] >= 3 for m in peers)
        rows[problem] = row
    avg = {m: float(np.mean(r)) for m, r in ranks.items() if r}
    return rows, avg


def _fmt(x):
    if x is None:
        return "-"
    if x == 0:
        return "0"
    return f"{x:.2g}" if abs(x) < 1e-2 or abs(x) >= 1e3 else f"{x:.3g}"


def report(records, focus=DEFAULT, markdown=None, methods=None):
    """Print (and with ``markdown`` write) the tables; ``methods``: compare only these
    labels (e.g. the peers that have run on every problem so far)."""
    if methods:
        records = [r for r in records if _label(r["method"], r["variant"]) in methods
                   or r["method"] == DEFAULT]
    labels_all = sorted({_label(r["method"], r["variant"]) for r in records})
    main_labels = [m for m in [DEFAULT, "random"] + PEERS if m in labels_all]
    if focus not in main_labels:
        main_labels = [focus] + [m for m in main_labels if m != DEFAULT]
    rows, avg = summarise(records, main_labels, focus)
    lines = []
    lines.append("| problem (evals) | " + " | ".join(main_labels) + " |")
    lines.append("|---" * (len(main_labels) + 1) + "|")
    for problem, row in rows.items():
        best = min(row["median"].values())
        cells = []
        for m in main_labels:
            text = f"{_fmt(row['median'][m])} [{_fmt(row['q1'][m])}, {_fmt(row['q3'][m])}]"
            if math.isclose(row["median"][m], best, rel_tol=1e-9):
                text = f"**{text}**"
            if row["stalled"][m]:
                text += f" ({row['stalled'][m]} stalled)"
            cells.append(text)
        lines.append(f"| {problem} ({make(problem).n_evals}) | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("| | " + " | ".join(main_labels) + " |")
    lines.append("|---" * (len(main_labels) + 1) + "|")
    lines.append("| average rank | " + " | ".join(f"{avg.get(m, float('nan')):.2f}"
                                                 for m in main_labels) + " |")
    def mean_score(m):
        scores = [r["score"][m] for r in rows.values() if r["score"][m] is not None]
        return f"{np.mean(scores):.3f}" if scores else "-"

    lines.append("| mean normalised score | " + " | ".join(mean_score(m) for m in main_labels)
                 + " |")
    lines.append("| problems ranked first | " + " | ".join(
        str(sum(r["rank"][m] == min(r["rank"].values()) for r in rows.values()))
        for m in main_labels) + " |")
    secs = {m: [r["ask_s_mean"] for r in records if _label(r["method"], r["variant"]) == m]
            for m in main_labels}
    lines.append("| seconds per suggestion (mean) | " + " | ".join(
        f"{np.mean(secs[m]):.3f}" if secs[m] else "-" for m in main_labels) + " |")
    lines.append("| runs that crashed (ended before the budget) | " + " | ".join(
        str(sum(1 for r in records if _label(r["method"], r["variant"]) == m
                and r.get("crashed"))) for m in main_labels) + " |")
    lines.append("| initial design | " + " | ".join(
        INITIAL_DESIGN.get(m.split("[")[0], "") for m in main_labels) + " |")
    lines.append("")
    with_peer = {p: r for p, r in rows.items() if "ratio_to_best_peer" in r}
    if with_peer:
        worst = max(with_peer, key=lambda p: with_peer[p]["ratio_to_best_peer"])
        w = with_peer[worst]
        lines.append(f"{focus}: worst ratio to the best peer {w['ratio_to_best_peer']:.2f} "
                     f"on {worst} ({w['best_peer']}); above 2 on "
                     f"{sum(r['ratio_to_best_peer'] > 2 for r in with_peer.values())} of "
                     f"{len(with_peer)} problems: " + ", ".join(
                         f"{p} {r['ratio_to_best_peer']:.1f}x ({r['best_peer']})"
                         for p, r in with_peer.items() if r["ratio_to_best_peer"] > 2) + ".")
        stalls = [f"{p} ({r['stalled'][focus]})" for p, r in with_peer.items()
                  if r["stalled"][focus] and r["peer_without_stalls"]]
        lines.append(f"Seeds more than 10x its median where a peer has none: "
                     f"{', '.join(stalls) or 'none'}.")
        weak = [f"{p} ({r['random_ratio']:.1f}x)" for p, r in with_peer.items()
                if r["random_ratio"] is not None and r["random_ratio"] < 3
                and r["peer_3x_random"]]
        lines.append(f"Less than 3x better than random search where a peer is: "
                     f"{', '.join(weak) or 'none'}.")
        lines.append("")
    variants = sorted(m for m in labels_all if m.startswith(DEFAULT))
    if len(variants) > 1:
        lines.extend(ablation(records, variants))
    text = "\n".join(lines)
    print(text)
    if markdown:
        with open(markdown, "w") as fh:
            fh.write(text + "\n")
    return rows, avg


def ablation(records, variants):
    """One row per repurpose.bo variant, each ranked alone among the peers and random, next
    to the default's rank on the same problems (a variant may have run on fewer)."""
    peers = sorted({_label(r["method"], r["variant"]) for r in records} - set(variants))
    reg, _ = regrets(records)
    lines = ["| variant | problems | average rank among peers | the default's rank there | "
             "worst ratio to best peer | problems > 2x best peer | "
             "geometric mean of median / default's | better / worse than default |",
             "|---|---|---|---|---|---|---|---|"]
    for v in variants:
        rows, avg = summarise(records, [v] + peers, v)
        same = [r for r in records if r["problem"] in rows]
        _, avg_default = summarise(same, [DEFAULT] + peers, DEFAULT)
        ratios = [r["ratio_to_best_peer"] for r in rows.values() if "ratio_to_best_peer" in r]
        rel, better, worse = [], 0, 0
        for p in rows:
            by = reg[p]
            if DEFAULT in by and len(by[DEFAULT]) == len(by[v]):
                floor = _floor(by)
                a = max(float(np.median(by[v])), floor)
                b = max(float(np.median(by[DEFAULT])), floor)
                rel.append(math.log(a / b))
                better += a < b / 1.1
                worse += a > b * 1.1
        lines.append(f"| {v} | {len(rows)} | {avg.get(v, float('nan')):.2f} | "
                     f"{avg_default.get(DEFAULT, float('nan')):.2f} | "
                     f"{max(ratios) if ratios else float('nan'):.2f} | "
                     f"{sum(r > 2 for r in ratios)} | "
                     f"{math.exp(np.mean(rel)) if rel else float('nan'):.2f} | "
                     f"{better} / {worse} |")
    lines.append("")
    return lines


# ----------------------------------------------------------------------------- timing, demo
def suggestion_time(n_obs=100, repeats=5):
    """Seconds per suggestion from ``n_obs`` observations on: ``repeats`` suggestions in a row,
    each told before the next. With the default ``output_warping='auto'``, the first of
    every 5 also chooses the warping (one more surrogate fit), so the mean over 5 is the
    cost per suggestion in a study and the slowest is that first one. Measured beside
    ``output_warping=True`` (one fit per suggestion) for the cost of the choice."""
    out = {}
    for pname in ("hartmann6", "mixed_nn", "zakharov10"):
        problem = make(pname)
        means = {}
        for warping in ("auto", True):
            rng = np.random.default_rng(0)
            opt = BayesianOptimizer(problem.space, seed=0, output_warping=warping)
            for _ in range(n_obs - 1):
                p = problem.space.from_uniform(rng.random(problem.space.n_dims))
                opt.tell(p, problem.objective(p))
            p = opt.ask()  # untimed: the first ask of a process also warms up GPy and scipy
            opt.tell(p, problem.objective(p))
            times = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                p = opt.ask()
                times.append(time.perf_counter() - t0)
                opt.tell(p, problem.objective(p))
            means[warping] = float(np.mean(times))
            if warping == "auto":
                slowest = max(times)
        out[pname] = means["auto"]
        print(f"{pname:12s} one suggestion with {n_obs}-{n_obs + repeats - 1} observations: "
              f"{means['auto']:.3f} s (mean of {repeats}, slowest {slowest:.3f} s; target "
              f"< 0.5 s); {means[True]:.3f} s with output_warping=True "
              f"(auto/True {means['auto'] / means[True]:.2f})", flush=True)
    return out


def demo_task(seeds, n_iter=20, n_per_class=30):
    """BayesSearchCV over the transfer choices that matter most (which layer's features, how
    to pool them, the logistic head's C) against LogisticRepurposer's defaults (the layer
    below the classifier, no pooling, C=1), on held-out test images of the demo task."""
    from repurpose import SourceModel
    from repurpose.bo import BayesSearchCV
    from repurpose.demo import make_demo_task
    from repurpose.repurposers import LogisticRepurposer

    source = SourceModel.from_zoo("digits_cnn")
    space = {"layers": Categorical(["fc1_relu_fwd", "fc1_fwd", "relu3_fwd", "relu2_fwd",
                                    "pool1_fwd"]),
             "pool": Categorical(["avg", "max"]), "C": Real(1e-3, 1e2, log=True)}
    rows = []
    for seed in seeds:
        X_train, y_train, X_test, y_test = make_demo_task(n_per_class, seed)
        default = LogisticRepurposer(source, random_state=seed).fit(X_train, y_train)
        t0 = time.perf_counter()
        search = BayesSearchCV(LogisticRepurposer(source, random_state=seed), space,
                               n_iter=n_iter, cv=5, random_state=seed).fit(X_train, y_train)
        row = {"seed": seed, "n_per_class": n_per_class,
               "default_acc": float(default.score(X_test, y_test)),
               "tuned_acc": float(search.score(X_test, y_test)),
               "best_params": search.best_params_, "cv_score": float(search.best_score_),
               "search_s": time.perf_counter() - t0}
        rows.append(row)
        print(f"seed {seed}: default acc {row['default_acc']:.3f} | tuned "
              f"{row['best_params']} (CV {row['cv_score']:.3f}) acc {row['tuned_acc']:.3f} "
              f"| search {row['search_s']:.1f} s", flush=True)
    d = np.mean([r["default_acc"] for r in rows])
    t = np.mean([r["tuned_acc"] for r in rows])
    wins = sum(r["tuned_acc"] > r["default_acc"] for r in rows)
    print(f"{n_per_class} labels per class, mean held-out accuracy over {len(rows)} seed(s): "
          f"default {d:.3f}, tuned {t:.3f}; tuned better on {wins} of {len(rows)}")
    return rows


# ----------------------------------------------------------------------------- command line
def _subset(parser, text, allowed, what):
    if text is None:
        return list(allowed)
    chosen = [t for t in text.split(",") if t]
    unknown = sorted(set(chosen) - set(allowed))
    if unknown:
        parser.error(f"unknown {what} {unknown}; choose from {list(allowed)}")
    return chosen


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_suite = sub.add_parser("suite", help="run the suite (and report)")
    p_suite.add_argument("--methods", help="comma-separated subset of " + ",".join(METHODS))
    p_suite.add_argument("--variants", default="default",
                         help="repurpose.bo settings to run: " + ",".join(VARIANTS))
    p_suite.add_argument("--problems", help="comma-separated subset of " + ",".join(PROBLEMS))
    p_suite.add_argument("--seeds", type=int, default=10, help="seeds 0..N-1 (10)")
    p_suite.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                         help="runs at a time (the number of CPUs)")
    p_suite.add_argument("--results", default="bo_suite.jsonl",
                         help="JSON-lines file the runs are added to (bo_suite.jsonl)")
    for p in (p_suite, sub.add_parser("report", help="report the runs in --results")):
        p.add_argument("--markdown", help="also write the report's tables here")
        p.add_argument("--focus", default=DEFAULT,
                       help="the method the ratios are computed for (repurpose.bo)")
    sub.choices["report"].add_argument("--results", required=True,
                                       help="results file(s), comma-separated")
    sub.choices["report"].add_argument("--methods",
                                       help="compare only these methods (comma-separated)")
    sub.add_parser("timing", help="seconds per suggestion at 100 observations")
    p_demo = sub.add_parser("demo", help="BayesSearchCV on the demo task")
    p_demo.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args(argv)
    print(f"python {platform.python_version()}, numpy {np.__version__}, "
          f"{platform.machine()} {platform.system()}, {os.cpu_count()} CPUs")
    if args.command == "timing":
        suggestion_time()
        return
    if args.command == "demo":
        demo_task(range(args.seeds))
        return
    if args.command == "suite":
        methods = _subset(parser, args.methods, METHODS, "method(s)")
        missing = [m for m in methods if not available(m)]
        if missing and args.methods:
            parser.error(f"{missing} cannot be imported here; build the peers' environment "
                         f"with benchmarks/make_bo_peers.sh and run this script with its "
                         f"python")
        for m in missing:
            print(f"  {m}: not installed, left out")
        methods = [m for m in methods if m not in missing]
        variants = _subset(parser, args.variants, VARIANTS, "variant(s)")
        problems = _subset(parser, args.problems, PROBLEMS, "problem(s)")
        records = suite(methods, variants, problems, list(range(args.seeds)),
                        max(args.jobs, 1), args.results)
        records = [r for r in records if r["problem"] in problems
                   and r["seed"] < args.seeds]
    else:
        records = [r for path in args.results.split(",") for r in read_results(path)]
        if not records:
            parser.error(f"no runs in {args.results!r}")
    report(records, args.focus, args.markdown,
           getattr(args, "methods", None).split(",") if getattr(args, "methods", None)
           else None)


if __name__ == "__main__":
    main()
