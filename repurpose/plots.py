"""Plots of a classifier's calibration and of a fine-tuning run.

Both functions draw with matplotlib's object API: without ``ax``/``axes`` they make a new
:class:`matplotlib.figure.Figure` that pyplot does not manage (nothing to close, no window,
safe under any backend), and they return the Figure, never calling ``plt.show()``. Save it
with ``fig.savefig(path)``; in Jupyter, make it a cell's last expression or ``display(fig)``.
matplotlib is imported when a function is called, so ``import repurpose.plots`` never needs it.

Examples
--------
>>> fig = plot_reliability([0, 1, 1], [[0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
>>> [ax.get_ylabel() for ax in fig.axes]
['accuracy', 'samples']
>>> fig = plot_training_history([{'epoch': 1, 'train_loss': 0.9, 'train_accuracy': 0.6},
...                              {'epoch': 2, 'train_loss': 0.5, 'train_accuracy': 0.8}])
>>> [ax.get_ylabel() for ax in fig.axes]
['loss', 'accuracy']
"""
import numpy as np

from . import metrics
from .exceptions import InvalidParameterError

__all__ = ["plot_reliability", "plot_training_history"]


def _new_figure(figsize):
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, layout="constrained")


def _axes_pair(axes, name):
    """``axes`` as a tuple of two matplotlib Axes, or an error naming ``name``."""
    from matplotlib.axes import Axes

    pair = tuple(np.ravel(np.asarray(axes, dtype=object)))
    if len(pair) != 2 or not all(isinstance(a, Axes) for a in pair):
        raise InvalidParameterError(
            f"{name} must be None or two matplotlib Axes, got {type(axes).__name__} "
            f"of {len(pair)}. Pass e.g. fig.subplots(1, 2).")
    return pair


def plot_reliability(y_true, proba, classes=None, n_bins=10, ax=None, label=None):
    """Reliability diagram: accuracy against confidence per bin, with the samples per bin.

    The bins are those of :func:`repurpose.metrics.reliability_diagram` (equal-width bins of
    the top probability). Bars show each bin's accuracy, the dashed diagonal is perfect
    calibration, and the title gives the expected calibration error over the same bins. The
    number of samples in each bin is drawn as a bar panel under the diagram (each bar
    labelled with its count) or, when ``ax`` is one Axes, written above each accuracy bar.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels, values of ``classes``.
    proba : array-like of shape (n_samples, n_classes)
        Predicted probabilities; columns follow ``classes``.
    classes : array-like of shape (n_classes,), default=None
        The labels of the columns (a model's ``classes_``); None means ``0 .. n_classes - 1``.
    n_bins : int, default=10
        Number of equal-width confidence bins.
    ax : matplotlib Axes or pair of Axes, default=None
        Where to draw: None makes a new figure with the diagram above a count panel; one
        Axes gets the diagram with the counts written on it; a pair ``(diagram, counts)``
        gets the diagram and the count panel.
    label : str, default=None
        Name of the model, shown in the title before the ECE.

    Returns
    -------
    matplotlib.figure.Figure
        The figure drawn on (new, or that of ``ax``).

    Raises
    ------
    DataError
        If the shapes disagree, ``proba`` is not finite, or ``y_true`` holds a label that is
        not in ``classes``.
    InvalidParameterError
        If ``n_bins`` is not a positive integer or ``ax`` is neither None, one Axes nor two.

    See Also
    --------
    repurpose.metrics.reliability_diagram : the data drawn here.

    Examples
    --------
    >>> from repurpose.plots import plot_reliability
    >>> y = [0, 1, 1, 0]
    >>> proba = [[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.7, 0.3]]
    >>> fig = plot_reliability(y, proba, n_bins=5, label='my model')
    >>> fig.axes[0].get_title()
    'my model: ECE 0.300'
    >>> [t.get_text() for t in fig.axes[1].texts]  # samples per non-empty bin
    ['1', '2', '1']
    >>> fig.savefig('reliability.png')  # doctest: +SKIP
    """
    # Long for its docstring (about 55 lines); the drawing itself is some 35 lines.
    from matplotlib.axes import Axes

    d = metrics.reliability_diagram(y_true, proba, classes, n_bins=n_bins)
    ece = metrics.expected_calibration_error(y_true, proba, classes, n_bins=n_bins)
    if ax is None:
        fig = _new_figure((4.0, 4.6))
        diagram, counts = fig.subplots(2, 1, sharex=True,
                                       gridspec_kw={"height_ratios": (3, 1)})
    elif isinstance(ax, Axes):
        diagram, counts = ax, None
    else:
        diagram, counts = _axes_pair(ax, "ax")
    edges = d["bin_edges"]
    centres, width = (edges[:-1] + edges[1:]) / 2, np.diff(edges)
    filled = d["count"] > 0
    diagram.bar(centres[filled], d["accuracy"][filled], width=width[filled], color="tab:blue",
                edgecolor="black", alpha=0.7, label="accuracy")
    diagram.plot([0, 1], [0, 1], "--", color="tab:red", label="perfect calibration")
    diagram.set(xlim=(0, 1), ylim=(0, 1.08 if counts is None else 1), ylabel="accuracy",
                title=f"{label}: ECE {ece:.3f}" if label else f"ECE {ece:.3f}")
    diagram.legend(loc="upper left", fontsize="small")
    if counts is None:
        # One Axes: each bar's count is written just above it.
        for x, n, acc in zip(centres[filled], d["count"][filled], d["accuracy"][filled]):
            diagram.text(x, acc + 0.01, str(n), ha="center", va="bottom", fontsize="x-small")
        diagram.set_xlabel("confidence (top probability)")
    else:
        counts.bar(centres[filled], d["count"][filled], width=width[filled], color="grey",
                   edgecolor="black")
        for x, n in zip(centres[filled], d["count"][filled]):
            counts.text(x, n, str(n), ha="center", va="bottom", fontsize="x-small")
        counts.set(xlim=(0, 1), ylim=(0, 1.3 * d["count"].max()),
                   xlabel="confidence (top probability)", ylabel="samples")
    return diagram.figure


def _column(history, key):
    return np.array([np.nan if row.get(key) is None else row[key] for row in history],
                    dtype=float)


def plot_training_history(history, axes=None):
    """Losses and accuracies per epoch, on the training and (when there is one) the
    validation set.

    Parameters
    ----------
    history : list of dict
        One row per epoch with ``epoch`` and any of ``train_loss``, ``train_accuracy``,
        ``val_loss``, ``val_accuracy`` (None or NaN where not measured), as
        :attr:`FineTuneRepurposer.history_ <repurpose.repurposers.FineTuneRepurposer>` and
        the ``history`` of a fine-tuning job's ``metrics.json`` hold them.
    axes : pair of matplotlib Axes, default=None
        Where to draw the losses and the accuracies; None makes a new figure.

    Returns
    -------
    matplotlib.figure.Figure
        The figure drawn on (new, or that of ``axes``).

    Raises
    ------
    InvalidParameterError
        If ``history`` is not a non-empty list of dicts with an ``epoch`` each, or ``axes``
        is not None or two Axes.

    Examples
    --------
    >>> from repurpose.plots import plot_training_history
    >>> history = [{'epoch': 1, 'train_loss': 1.2, 'train_accuracy': 0.5,
    ...             'val_loss': 1.3, 'val_accuracy': 0.4},
    ...            {'epoch': 2, 'train_loss': 0.7, 'train_accuracy': 0.8,
    ...             'val_loss': 0.9, 'val_accuracy': None}]
    >>> fig = plot_training_history(history)
    >>> [line.get_label() for line in fig.axes[0].lines]
    ['train', 'validation']
    >>> fig.savefig('training_curve.png')  # doctest: +SKIP

    With a fitted model: ``plot_training_history(model.history_)``.
    """
    from matplotlib.ticker import MaxNLocator

    if (not isinstance(history, (list, tuple)) or not history
            or not all(isinstance(row, dict) and "epoch" in row for row in history)):
        raise InvalidParameterError(
            f"history must be a non-empty list of dicts with an 'epoch' each (a "
            f"FineTuneRepurposer's history_), got {type(history).__name__}"
            f"{f' of {len(history)}' if isinstance(history, (list, tuple)) else ''}.")
    if axes is None:
        fig = _new_figure((9.0, 3.4))
        axes = fig.subplots(1, 2)
    axes = _axes_pair(axes, "axes")
    epochs = _column(history, "epoch")
    for ax, what in zip(axes, ("loss", "accuracy")):
        for split, name, style in (("train", "train", "o-"), ("val", "validation", "s--")):
            values = _column(history, f"{split}_{what}")
            if np.isfinite(values).any():
                ax.plot(epochs, values, style, markersize=4, label=name)
        ax.set(xlabel="epoch", ylabel=what)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize="small")
    return axes[0].figure
