"""The end-to-end demo behind ``repurpose demo``: repurpose the zoo network ``digits_cnn``
(trained on digits 0-4) for a new task (shifted digits 5-9, a few labels per class) with
every head and by fine-tuning, and compare accuracy and calibration with the same head on
raw pixels.
"""
import json
import logging
import os
import time

import numpy as np

from . import metrics
from .data import load_shifted_digits_images
from .exceptions import InvalidParameterError
from .features import FeatureExtractor
from .heads import LogisticHead
from .persist import check_writable
from .source import SourceModel

logger = logging.getLogger(__name__)

__all__ = ["make_demo_task", "run_demo", "demo_repurposers", "format_table"]

#: Layers whose (globally average-pooled) features every head sees.
DEMO_LAYERS = ("fc1_relu_fwd", "relu3_fwd")


def make_demo_task(n_per_class=10, random_state=0):
    """The demo's target task: digits 5-9 shifted by up to 1 pixel, few labels per class.

    Parameters
    ----------
    n_per_class : int, default=10
        Labelled training images per class; every other image is test data.
    random_state : int, default=0
        Seed of the shifts and of the train/test split.

    Returns
    -------
    X_train, y_train, X_test, y_test : ndarrays
        Images of shape (n, 1, 8, 8) and labels 5-9.

    Examples
    --------
    >>> X_train, y_train, X_test, y_test = make_demo_task(n_per_class=3)
    >>> X_train.shape, sorted(set(y_train)), len(X_test)
    ((15, 1, 8, 8), [5, 6, 7, 8, 9], 881)
    """
    if not isinstance(n_per_class, int) or n_per_class < 2:
        raise InvalidParameterError(f"n_per_class must be an integer >= 2, got {n_per_class!r}.")
    X, y = load_shifted_digits_images(classes=range(5, 10), max_shift=1,
                                      random_state=random_state)
    rng = np.random.RandomState(random_state)
    train = np.concatenate([rng.permutation(np.flatnonzero(y == c))[:n_per_class]
                            for c in range(5, 10)])
    test = np.setdiff1d(np.arange(len(y)), train)
    return X[train], y[train], X[test], y[test]


def demo_repurposers(source, random_state=0):
    """The repurposers the demo fits, by display name (every head of the package).

    Parameters
    ----------
    source : SourceModel
        The source network (the demo uses ``digits_cnn``).
    random_state : int, default=0
        Seed of every repurposer.

    Returns
    -------
    dict of str -> estimator
        Unfitted repurposers: one per head on the average-pooled features of
        ``DEMO_LAYERS``, then a :class:`~repurpose.repurposers.FineTuneRepurposer`
        (40 epochs with random shifts, no hold-out).

    Examples
    --------
    >>> from repurpose import SourceModel
    >>> chosen = demo_repurposers(SourceModel.from_zoo('digits_cnn'))
    >>> list(chosen)
    ['logistic', 'svm', 'gp', 'bnn', 'fine-tune']
    >>> chosen['svm'].layers, chosen['svm'].pool
    (('fc1_relu_fwd', 'relu3_fwd'), 'avg')
    """
    from . import repurposers

    layers = DEMO_LAYERS
    chosen = {
        "logistic": repurposers.LogisticRepurposer(source, layers=layers, pool="avg",
                                                   random_state=random_state),
        "svm": repurposers.SvmRepurposer(source, layers=layers, pool="avg",
                                         random_state=random_state),
    }
    if hasattr(repurposers, "GpRepurposer"):
        chosen["gp"] = repurposers.GpRepurposer(source, layers=layers, pool="avg",
                                                random_state=random_state)
    if hasattr(repurposers, "BnnRepurposer"):
        chosen["bnn"] = repurposers.BnnRepurposer(source, layers=layers, pool="avg",
                                                  random_state=random_state)
    # Fine-tuning the network itself. With 50 labels it trains on all of them with random
    # shifts (no hold-out, no early stopping): 10 validation images stop training too early.
    chosen["fine-tune"] = repurposers.FineTuneRepurposer(
        source, n_epochs=40, augment=True, validation_fraction=0.0, early_stopping=False,
        random_state=random_state)
    return chosen


def _evaluate(name, fit, predict_proba, classes_of, X_train, y_train, X_test, y_test):
    started = time.perf_counter()
    fitted = fit(X_train, y_train)
    fit_seconds = time.perf_counter() - started
    started = time.perf_counter()
    proba = predict_proba(fitted, X_test)
    predict_seconds = time.perf_counter() - started
    classes = classes_of(fitted)
    row = {"model": name, **metrics.summary(y_test, proba, classes),
           "fit_s": fit_seconds, "predict_s": predict_seconds}
    row["reliability"] = {k: np.asarray(v).tolist() for k, v in
                          metrics.reliability_diagram(y_test, proba, classes, n_bins=10).items()}
    logger.info("%s: accuracy %.3f, NLL %.3f, ECE %.3f, fit %.2f s", name, row["accuracy"],
                row["nll"], row["ece"], fit_seconds)
    return row


def run_demo(out=None, n_per_class=10, random_state=0, overwrite=False, plots=True):
    """Fit every head on the demo task and, with ``out``, write a report there.

    Parameters
    ----------
    out : str or path-like, default=None
        Folder for ``results.json``, ``results.md`` and ``reliability.png``; must not exist
        unless ``overwrite``.
    n_per_class : int, default=10
    random_state : int, default=0
    overwrite : bool, default=False
    plots : bool, default=True
        Draw the reliability diagrams (matplotlib).

    Returns
    -------
    dict
        ``task`` (sizes) and ``results``: one row per model with accuracy, nll, brier, ece,
        fit_s, predict_s and reliability-diagram data; the last row is the raw-pixel baseline.

    Raises
    ------
    FileExistsError
        If ``out`` exists and ``overwrite`` is False (checked before any work).

    Examples
    --------
    >>> import os, tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     report = run_demo(out=os.path.join(tmp, 'demo'), n_per_class=5, plots=False)
    ...     sorted(os.listdir(os.path.join(tmp, 'demo')))
    ['results.json', 'results.md']
    >>> report['task']['n_train'], [row['model'] for row in report['results']][-2:]
    (25, ['fine-tune (digits_cnn)', 'logistic (raw pixels)'])
    >>> all(0 <= row['accuracy'] <= 1 for row in report['results'])
    True
    """
    if out is not None and os.path.exists(out) and not overwrite:
        raise FileExistsError(f"out={os.fspath(out)!r} already exists. Choose another folder, "
                              f"remove it, or pass overwrite=True (--overwrite).")
    X_train, y_train, X_test, y_test = make_demo_task(n_per_class, random_state)
    source = SourceModel.from_zoo("digits_cnn")
    chosen = demo_repurposers(source, random_state)
    # Extract once (timed on its own); every repurposer then reads the feature cache, so
    # their fit / predict times are the heads' own.
    started = time.perf_counter()
    extractor = FeatureExtractor(source, layers=DEMO_LAYERS, pool="avg").fit()
    extractor.transform(X_train)
    extractor.transform(X_test)
    extract_seconds = time.perf_counter() - started
    rows = []
    for name, model in chosen.items():
        label = f"{name} (digits_cnn)" if name == "fine-tune" else f"{name} (digits_cnn features)"
        rows.append(_evaluate(label, lambda X, y, m=model: m.fit(X, y),
                              lambda m, X: m.predict_proba(X), lambda m: m.classes_,
                              X_train, y_train, X_test, y_test))
    flat = lambda X: X.reshape(len(X), -1)  # noqa: E731
    rows.append(_evaluate("logistic (raw pixels)",
                          lambda X, y: LogisticHead(random_state=random_state).fit(flat(X), y),
                          lambda m, X: m.predict_proba(flat(X)), lambda m: m.classes_,
                          X_train, y_train, X_test, y_test))
    report = {"task": {"source_model": "digits_cnn (trained on digits 0-4)",
                       "target": "digits 5-9 shifted by up to 1 px",
                       "n_train": int(len(y_train)), "n_test": int(len(y_test)),
                       "n_per_class": n_per_class, "random_state": random_state,
                       "layers": list(DEMO_LAYERS),
                       "extract_s": extract_seconds},
              "results": rows}
    if out is not None:
        write_report(report, out, overwrite=overwrite, plots=plots)
    return report


def format_table(rows):
    """A markdown table of the scalar metrics of ``rows``.

    Parameters
    ----------
    rows : list of dict
        One dict per model with ``model``, ``accuracy``, ``nll``, ``brier``, ``ece``,
        ``fit_s`` and ``predict_s`` (as in ``run_demo()['results']``; other keys are
        ignored).

    Returns
    -------
    str
        The table, one line per row after a header, without a trailing newline.

    Examples
    --------
    >>> print(format_table([{'model': 'svm', 'accuracy': 0.9, 'nll': 0.31, 'brier': 0.15,
    ...                      'ece': 0.04, 'fit_s': 0.02, 'predict_s': 0.01}]))
    | model | accuracy | NLL | Brier | ECE | fit s | predict s |
    |---|---|---|---|---|---|---|
    | svm | 0.900 | 0.310 | 0.150 | 0.040 | 0.02 | 0.01 |
    """
    lines = ["| model | accuracy | NLL | Brier | ECE | fit s | predict s |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['accuracy']:.3f} | {r['nll']:.3f} | "
                     f"{r['brier']:.3f} | {r['ece']:.3f} | {r['fit_s']:.2f} | "
                     f"{r['predict_s']:.2f} |")
    return "\n".join(lines)


def write_report(report, out, overwrite=False, plots=True):
    """Write ``results.json``, ``results.md`` and (with ``plots``) ``reliability.png``."""
    out = os.fspath(out)
    if os.path.exists(out) and not overwrite:
        raise FileExistsError(f"{out!r} already exists; pass overwrite=True.")
    os.makedirs(out, exist_ok=True)
    files = [os.path.join(out, n) for n in ("results.json", "results.md", "reliability.png")]
    check_writable(files, overwrite=True)
    with open(files[0], "w", encoding="utf-8") as handle:
        json.dump(report, handle, indent=2)
    task = report["task"]
    with open(files[1], "w", encoding="utf-8") as handle:
        handle.write(f"# repurpose demo\n\nSource: {task['source_model']}. Target: "
                     f"{task['target']}, {task['n_per_class']} labels per class "
                     f"({task['n_train']} training, {task['n_test']} test images). Features "
                     f"of {', '.join(task['layers'])} (average-pooled) extracted once in "
                     f"{task['extract_s']:.2f} s and shared by every head; fit and predict "
                     f"times are the heads' own.\n\n")
        handle.write(format_table(report["results"]) + "\n")
    if plots:
        _plot_reliability(report["results"], files[2])
    logger.info("Wrote the demo report to %s", out)


def _plot_reliability(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(rows), figsize=(3.2 * len(rows), 3.4), squeeze=False)
    for ax, row in zip(axes[0], rows):
        d = row["reliability"]
        edges = np.asarray(d["bin_edges"])
        centres = (edges[:-1] + edges[1:]) / 2
        acc = np.nan_to_num(np.asarray(d["accuracy"], dtype=float))
        ax.bar(centres, acc, width=edges[1] - edges[0], edgecolor="k", alpha=0.7,
               label="accuracy")
        ax.plot([0, 1], [0, 1], "r--", label="perfect")
        ax.set_title(f"{row['model']}\nECE {row['ece']:.3f}", fontsize=8)
        ax.set_xlabel("confidence")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
    axes[0][0].set_ylabel("accuracy")
    axes[0][0].legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
