"""repurpose.bo.plots: convergence, parameter and learning-curve plots (Agg backend); the
new tests draw on Figure objects, off pyplot."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from repurpose.bo import (BayesianOptimizer, Categorical, Integer, OptimizeResult,  # noqa: E402
                          Real, SearchSpace, Trial, minimize, minimize_with_early_stopping)
from repurpose.bo.plots import (best_so_far, plot_convergence, plot_learning_curves,  # noqa: E402
                                plot_parameters)
from repurpose.exceptions import InvalidParameterError  # noqa: E402

SPACE = SearchSpace({"x": Real(1e-3, 1.0, log=True), "n": Integer(1, 5),
                     "c": Categorical(["a", "b"])})


def _objective(p):
    return (np.log10(p["x"]) + 1) ** 2 + 0.1 * p["n"] + (p["c"] == "b")


def _random_result(seed, n=8):
    rng = np.random.default_rng(seed)
    hist = []
    for _ in range(n):
        p = SPACE.from_uniform(rng.random(3))
        hist.append(Trial(p, _objective(p), "ok"))
    best = min(hist, key=lambda t: t.value)
    return OptimizeResult(best.params, best.value, hist)


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def bo_result():
    return minimize(_objective, SPACE, n_trials=9, seed=0)


def test_best_so_far_min_max_and_failures():
    hist = [Trial({}, None, "failed"), Trial({}, 2.0, "ok"), Trial({}, 5.0, "ok"),
            Trial({}, 1.0, "ok")]
    res = OptimizeResult({}, 1.0, hist)
    np.testing.assert_array_equal(best_so_far(res)[1:], [2.0, 2.0, 1.0])
    assert np.isnan(best_so_far(res)[0])
    np.testing.assert_array_equal(best_so_far(res, maximize=True)[1:], [2.0, 5.0, 5.0])


def test_convergence_one_line_per_run(bo_result):
    ax = plot_convergence(bo_result)
    assert len(ax.lines) == 1 and len(ax.lines[0].get_xdata()) == 9
    ydata = np.asarray(ax.lines[0].get_ydata())
    assert np.all(np.diff(ydata) <= 0) and ydata[-1] == bo_result.best_value

    ax = plot_convergence([bo_result, _random_result(0, 9), _random_result(1, 9)])
    assert len(ax.lines) == 3


def test_convergence_groups_over_seeds_with_regret(bo_result):
    fig, ax = plt.subplots()
    out = plot_convergence({"BO": [bo_result, bo_result],
                            "random search": [_random_result(s) for s in range(3)]},
                           ax=ax, optimum=0.1, log=True)
    assert out is ax and len(ax.lines) == 2 and len(ax.collections) == 2  # IQR bands
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["BO", "random search"]
    assert ax.get_yscale() == "log" and ax.get_ylabel() == "simple regret"
    assert len(ax.lines[1].get_xdata()) == 8


def test_convergence_maximize_from_optimizer():
    opt = BayesianOptimizer(SearchSpace({"x": Real(0.0, 1.0)}), seed=0, maximize=True)
    opt.run(lambda p: -(p["x"] - 0.5) ** 2, 6)
    ax = plot_convergence(opt)
    ydata = np.asarray(ax.lines[0].get_ydata())
    assert np.all(np.diff(ydata) >= 0) and ydata[-1] == opt.result().best_value


def test_parameters_one_panel_per_parameter(bo_result):
    axes = plot_parameters(bo_result, space=SPACE)
    assert len(axes) == 3
    for ax in axes:
        points, star = ax.collections
        assert len(points.get_offsets()) == 9 and len(star.get_offsets()) == 1
    assert axes[0].get_xscale() == "log"
    assert [t.get_text() for t in axes[2].get_xticklabels()] == ["a", "b"]


def test_parameters_given_axes_and_failed_trials():
    hist = [Trial({"x": 0.1, "c": "a"}, 1.0, "ok"), Trial({"x": 0.5, "c": "b"}, None, "failed"),
            Trial({"x": 0.9, "c": "b"}, 0.5, "ok")]
    fig, axes = plt.subplots(1, 2)
    out = plot_parameters(OptimizeResult({"x": 0.9, "c": "b"}, 0.5, hist), ax=axes)
    assert list(out) == list(axes)
    assert len(out[0].collections[0].get_offsets()) == 2
    np.testing.assert_allclose(out[0].collections[1].get_offsets(), [[0.9, 0.5]])
    with pytest.raises(InvalidParameterError, match="one Axes per parameter"):
        plot_parameters(OptimizeResult(None, None, hist), ax=axes[:1])
    with pytest.raises(InvalidParameterError, match="Expected an OptimizeResult"):
        plot_convergence("not a result")


# --------------------------------------------------------------- labels, ticks, Hyperband
def _axes(n=None):
    from matplotlib.figure import Figure

    fig = Figure()
    return fig.subplots() if n is None else list(fig.subplots(1, n, squeeze=False)[0])


def test_metric_labels_and_integer_trial_ticks(bo_result):
    ax = plot_convergence(bo_result, ax=_axes(), metric="accuracy (CV)")
    assert ax.get_ylabel() == "best accuracy (CV) so far"
    assert all(float(t).is_integer() for t in ax.get_xticks())
    axes = plot_parameters(bo_result, ax=_axes(3), space=SPACE, metric="val_loss")
    assert axes[0].get_ylabel() == "val_loss"
    assert all(float(t).is_integer() for t in axes[1].get_xticks())  # Integer(1, 5)
    assert axes[0].get_xlim()[0] < 1e-3 and axes[0].get_xlim()[1] > 1.0  # the searched range


def test_long_categories_are_shortened_and_rotated():
    names = ["fc1_relu_fwd", "a_very_long_layer_name_indeed", None]
    space = SearchSpace({"layer": Categorical(names)})
    hist = [Trial({"layer": name}, float(i), "ok") for i, name in enumerate(names)]
    ax, = plot_parameters(OptimizeResult({"layer": None}, 2.0, hist), ax=_axes(1),
                          space=space, maximize=True)
    labels = ax.get_xticklabels()
    assert [t.get_text() for t in labels] == ["fc1_relu_fwd", "a_very_long_l\u2026", "None"]
    assert all(t.get_rotation() == 30 for t in labels)


def _train(params, report):
    for epoch in range(1, 10):
        report(epoch, (params["x"] - 0.3) ** 2 + np.exp(-epoch / 2))


@pytest.fixture(scope="module")
def hyperband(tmp_path_factory):
    path = tmp_path_factory.mktemp("hb") / "journal.jsonl"
    res = minimize_with_early_stopping(_train, SearchSpace({"x": Real(0.0, 1.0)}),
                                       max_budget=9, n_trials=8, seed=0, state_path=path)
    assert any(t.status == "stopped" for t in res.history)
    return res, path


def test_learning_curves_of_a_result_and_of_its_journal(hyperband):
    res, path = hyperband
    for run in (res, path, str(path)):
        ax = plot_learning_curves(run, ax=_axes(), metric="val_loss", budget="epoch")
        assert ax.get_xlabel() == "epoch" and ax.get_ylabel() == "val_loss"
        curves = [line for line in ax.lines if len(line.get_xdata()) > 1]
        assert [list(line.get_xdata()) for line in curves] == [
            t.budgets for t in res.history if len(t.budgets) > 1]
        star, = [line for line in ax.lines if line.get_marker() == "*"]
        assert star.get_ydata()[0] == res.best_value
    with pytest.raises(InvalidParameterError, match="needs an EarlyStoppingResult"):
        plot_learning_curves(OptimizeResult(None, None, []))


def test_convergence_and_parameters_of_a_hyperband_study(hyperband):
    res, path = hyperband
    completed = [t.values[-1] for t in res.history if t.status == "completed"]
    for run in (res, path):
        ax = plot_convergence(run, ax=_axes())
        assert np.nanmin(ax.lines[0].get_ydata()) == min(completed) == res.best_value
        panel, = plot_parameters(run, ax=_axes(1))
        dots, star, crosses = panel.collections
        assert len(dots.get_offsets()) == len(completed)
        assert len(crosses.get_offsets()) == sum(t.status == "stopped" for t in res.history)


def test_an_optimizer_journal_is_plotted_too(tmp_path):
    path = tmp_path / "study.jsonl"
    res = minimize(_objective, SPACE, n_trials=6, seed=0, maximize=True, state_path=path)
    ax = plot_convergence(path, ax=_axes())
    assert ax.lines[0].get_ydata()[-1] == res.best_value  # maximize read from the journal
    assert len(plot_parameters(path, ax=_axes(3))) == 3
    with pytest.raises(InvalidParameterError, match="not a file"):
        plot_convergence(tmp_path / "missing.jsonl")
