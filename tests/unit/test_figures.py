"""repurpose.plots: the reliability diagram shows the data of metrics.reliability_diagram and
the samples in each bin; the training history shows every measured curve per whole epoch."""
import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.figure import Figure

from repurpose import metrics
from repurpose.exceptions import DataError, InvalidParameterError
from repurpose.plots import plot_reliability, plot_training_history


@pytest.fixture
def predictions():
    rng = np.random.RandomState(0)
    classes = np.array(["cat", "dog", "fox"])
    proba = rng.dirichlet([0.5, 0.5, 0.5], size=200)
    y = classes[np.where(rng.rand(200) < 0.7, proba.argmax(axis=1), rng.randint(0, 3, 200))]
    return y, proba, classes


def _bar_heights(ax):
    return [patch.get_height() for patch in ax.patches]


def test_reliability_figure_shows_accuracy_and_counts_per_bin(predictions):
    y, proba, classes = predictions
    open_figures = plt.get_fignums()
    fig = plot_reliability(y, proba, classes, n_bins=8, label="head")
    assert isinstance(fig, Figure) and plt.get_fignums() == open_figures  # not pyplot's
    d = metrics.reliability_diagram(y, proba, classes, n_bins=8)
    filled = d["count"] > 0
    diagram, counts = fig.axes
    np.testing.assert_allclose(_bar_heights(diagram), d["accuracy"][filled])
    assert _bar_heights(counts) == d["count"][filled].tolist()
    assert [t.get_text() for t in counts.texts] == [str(n) for n in d["count"][filled]]
    ece = metrics.expected_calibration_error(y, proba, classes, n_bins=8)
    assert diagram.get_title() == f"head: ECE {ece:.3f}"
    assert diagram.get_ylabel() == "accuracy" and counts.get_ylabel() == "samples"
    assert counts.get_xlabel().startswith("confidence")
    assert diagram.get_xlim() == (0, 1) and diagram.get_legend() is not None


def test_reliability_on_given_axes(predictions, tmp_path):
    y, proba, classes = predictions
    fig = Figure()
    one = fig.add_subplot(1, 3, 1)
    assert plot_reliability(y, proba, classes, ax=one) is fig
    d = metrics.reliability_diagram(y, proba, classes, n_bins=10)
    # One Axes: the counts are written above the bars.
    assert [t.get_text() for t in one.texts] == [str(n) for n in d["count"][d["count"] > 0]]
    assert one.get_title().startswith("ECE ")
    pair = fig.add_subplot(1, 3, 2), fig.add_subplot(1, 3, 3)
    assert plot_reliability(y, proba, classes, ax=pair) is fig
    assert pair[1].get_ylabel() == "samples"
    fig.savefig(tmp_path / "r.png")  # Agg-safe: no pyplot, no display
    assert (tmp_path / "r.png").read_bytes()[:4] == b"\x89PNG"


def test_reliability_checks_its_inputs(predictions):
    y, proba, classes = predictions
    with pytest.raises(InvalidParameterError, match="ax must be None or two matplotlib Axes"):
        plot_reliability(y, proba, classes, ax="left")
    with pytest.raises(InvalidParameterError, match="n_bins"):
        plot_reliability(y, proba, classes, n_bins=0)
    with pytest.raises(DataError, match="classes has 2 entries"):
        plot_reliability(y, proba, classes[:2])


HISTORY = [{"epoch": e, "lr": 0.1, "train_loss": 1.0 / e, "train_accuracy": 1 - 0.5 / e,
            "val_loss": 1.2 / e, "val_accuracy": None if e == 1 else 0.6 + 0.01 * e}
           for e in range(1, 15)]


def test_training_history_draws_losses_and_accuracies():
    open_figures = plt.get_fignums()
    fig = plot_training_history(HISTORY)
    assert isinstance(fig, Figure) and plt.get_fignums() == open_figures
    loss, accuracy = fig.axes
    assert (loss.get_ylabel(), accuracy.get_ylabel()) == ("loss", "accuracy")
    assert loss.get_xlabel() == accuracy.get_xlabel() == "epoch"
    for ax, what in ((loss, "loss"), (accuracy, "accuracy")):
        assert [line.get_label() for line in ax.lines] == ["train", "validation"]
        train, val = ax.lines
        np.testing.assert_allclose(train.get_xdata(), range(1, 15))
        np.testing.assert_allclose(train.get_ydata(), [row[f"train_{what}"] for row in HISTORY])
        np.testing.assert_allclose(val.get_ydata(), [np.nan if row[f"val_{what}"] is None
                                                     else row[f"val_{what}"] for row in HISTORY])
        ticks = ax.xaxis.get_major_locator().tick_values(1, 14)
        assert np.all(ticks == np.round(ticks)), "epoch ticks must be whole numbers"


def test_training_history_without_validation_on_given_axes():
    fig = Figure()
    axes = fig.subplots(1, 2)
    train_only = [{k: v for k, v in row.items() if not k.startswith("val")} for row in HISTORY]
    assert plot_training_history(train_only[:2], axes=axes) is fig
    assert [[line.get_label() for line in ax.lines] for ax in axes] == [["train"], ["train"]]


@pytest.mark.parametrize("history", [[], {"elbo": [1.0]}, [{"loss": 1.0}], None])
def test_training_history_refuses_what_is_not_a_history(history):
    with pytest.raises(InvalidParameterError, match="history must be a non-empty list of dicts"):
        plot_training_history(history)


def test_training_history_of_a_fitted_model(tmp_path):
    from repurpose import FineTuneRepurposer, SourceModel
    from repurpose.demo import make_demo_task

    X, y, _, _ = make_demo_task(n_per_class=4)
    model = FineTuneRepurposer(SourceModel.from_zoo("digits_cnn"), n_epochs=3,
                               validation_fraction=0.25, early_stopping=False,
                               random_state=0).fit(X, y)
    fig = plot_training_history(model.history_)
    assert [len(ax.lines) for ax in fig.axes] == [2, 2]
    fig.savefig(tmp_path / "curve.png")
    assert (tmp_path / "curve.png").stat().st_size > 0
