"""The end-to-end demo behind ``repurpose demo``: repurpose the zoo network ``digits_cnn``
(trained on digits 0-4) for a new task (shifted digits 5-9, a few labels per class) with
every head and by fine-tuning, and compare accuracy and calibration with the same head on
raw pixels.
"""
import logging
import os
import pathlib
import time

import numpy as np

from . import metrics, repurposers
from .data import load_shifted_digits_images
from .exceptions import InvalidParameterError
from .features import FeatureExtractor
from .heads import LogisticHead
from .persist import atomic_write, check_writable, write_json
from .plots import plot_reliability
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
    """The report row of one model, and its test probabilities with their classes."""
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
    return row, (proba, classes)


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
    evaluated = []  # (row, (test probabilities, classes)) per model
    for name, model in chosen.items():
        label = f"{name} (digits_cnn)" if name == "fine-tune" else f"{name} (digits_cnn features)"
        evaluated.append(_evaluate(label, lambda X, y, m=model: m.fit(X, y),
                                   lambda m, X: m.predict_proba(X), lambda m: m.classes_,
                                   X_train, y_train, X_test, y_test))
    flat = lambda X: X.reshape(len(X), -1)  # noqa: E731
    evaluated.append(_evaluate("logistic (raw pixels)",
                               lambda X, y: LogisticHead(random_state=random_state)
                               .fit(flat(X), y),
                               lambda m, X: m.predict_proba(flat(X)), lambda m: m.classes_,
                               X_train, y_train, X_test, y_test))
    rows = [row for row, _ in evaluated]
    report = {"task": {"source_model": "digits_cnn (trained on digits 0-4)",
                       "target": "digits 5-9 shifted by up to 1 px",
                       "n_train": int(len(y_train)), "n_test": int(len(y_test)),
                       "n_per_class": n_per_class, "random_state": random_state,
                       "layers": list(DEMO_LAYERS),
                       "extract_s": extract_seconds},
              "results": rows}
    if out is not None:
        predictions = {row["model"]: predicted for row, predicted in evaluated}
        write_report(report, out, overwrite=overwrite,
                     reliability=(y_test, predictions) if plots else None)
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


def write_report(report, out, overwrite=False, reliability=None):
    """Write ``results.json`` (strict JSON: empty reliability bins hold ``null``),
    ``results.md`` and, given ``reliability``, ``reliability.png``.

    Parameters
    ----------
    report : dict
        What :func:`run_demo` returns.
    out : str or path-like
        The report folder; created, and must not exist unless ``overwrite``.
    overwrite : bool, default=False
    reliability : tuple, default=None
        ``(y_test, {model: (proba, classes)})``: the test labels and each model's test
        probabilities, drawn with :func:`repurpose.plots.plot_reliability`, one column per
        model in report order. None writes no figure.
    """
    out = os.fspath(out)
    if os.path.exists(out) and not overwrite:
        raise FileExistsError(f"{out!r} already exists; pass overwrite=True.")
    os.makedirs(out, exist_ok=True)
    files = [os.path.join(out, n) for n in ("results.json", "results.md", "reliability.png")]
    check_writable(files, overwrite=True)
    write_json(files[0], report, overwrite=True)
    task = report["task"]
    text = (f"# repurpose demo\n\nSource: {task['source_model']}. Target: {task['target']}, "
            f"{task['n_per_class']} labels per class ({task['n_train']} training, "
            f"{task['n_test']} test images). Features of {', '.join(task['layers'])} "
            f"(average-pooled) extracted once in {task['extract_s']:.2f} s and shared by every "
            f"head; fit and predict times are the heads' own.\n\n"
            + format_table(report["results"]) + "\n")
    atomic_write(files[1], lambda tmp: pathlib.Path(tmp).write_text(text, encoding="utf-8"),
                 overwrite=True)
    if reliability is not None:
        figure = _reliability_figure(*reliability)
        atomic_write(files[2], lambda tmp: figure.savefig(tmp, dpi=100, format="png"),
                     overwrite=True)
    logger.info("Wrote the demo report to %s", out)


def _reliability_figure(y_test, predictions):
    """One column per model: its reliability diagram above its samples per bin."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(3.2 * len(predictions), 4.6), layout="constrained")
    axes = fig.subplots(2, len(predictions), sharex=True, squeeze=False,
                        gridspec_kw={"height_ratios": (3, 1)})
    for column, (name, (proba, classes)) in zip(axes.T, predictions.items()):
        plot_reliability(y_test, proba, classes, n_bins=10, ax=column, label=name)
        column[0].title.set_fontsize("small")
    return fig
