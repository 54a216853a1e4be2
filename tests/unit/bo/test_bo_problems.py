"""The benchmark problem suite (benchmarks/bo_problems.py): known optima hold, shifted
optima sit inside the box away from its centre and corners, noise is reproducible."""
import importlib.util
import math
import pathlib

import numpy as np
import pytest

from repurpose.bo import Categorical, Integer, Real

_PATH = pathlib.Path(__file__).resolve().parents[3] / "benchmarks" / "bo_problems.py"


def _load():
    spec = importlib.util.spec_from_file_location("bo_problems", _PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bp = _load()
ALL = sorted(bp.PROBLEMS)
SYNTHETIC = [n for n in ALL if bp.make(n).optimum is not None]
REAL = [n for n in ALL if "real" in bp.make(n).tags]
NOISY = [n for n in ALL if bp.make(n).noise > 0]
MIXED = [n for n in SYNTHETIC if "mixed" in bp.make(n).tags]


def _close(value, optimum):
    return abs(value - optimum) <= max(1e-6, 1e-4 * abs(optimum))


def test_suite_size_and_kinds():
    assert len(SYNTHETIC) - len(NOISY) >= 15
    assert len(NOISY) >= 2 and len(MIXED) >= 2 and len(REAL) >= 2
    dims = {bp.make(n).dim for n in SYNTHETIC}
    assert min(dims) == 2 and max(dims) == 10


@pytest.mark.parametrize("name", ALL)
def test_record_fields(name):
    p = bp.make(name)
    assert p.name == name
    assert set(p.tags) <= bp.TAGS and p.tags
    assert p.n_evals == (30 if p.dim <= 2 or name.startswith("mixed_nn") else 50)
    assert p.noise >= 0 and ("noisy" in p.tags) == (p.noise > 0)
    assert callable(p.objective) and callable(p.clean)


@pytest.mark.parametrize("name", SYNTHETIC)
def test_argmin_reaches_optimum(name):
    p = bp.make(name)
    assert _close(p.clean(p.space.check_params(p.argmin)), p.optimum)
    if p.noise == 0:
        assert p.objective(p.argmin) == p.clean(p.argmin)


@pytest.mark.parametrize("name", SYNTHETIC)
def test_random_points_never_below_optimum(name):
    p = bp.make(name)
    rng = np.random.default_rng(0)
    values = [p.clean(p.space.from_uniform(u)) for u in rng.random((2000, p.dim))]
    assert min(values) >= p.optimum - 1e-6


@pytest.mark.parametrize("name", SYNTHETIC)
def test_argmin_inside_not_centre_nor_corner(name):
    p = bp.make(name)
    p.space.check_params(p.argmin)  # inside the space, right types
    u = np.array([float(d.encode(p.argmin[n])[0]) for n, d in p.space.dimensions.items()
                  if isinstance(d, Real)])  # Integer too; position on the (log) scale
    assert u.size
    assert not np.allclose(u, 0.5), "argmin at the centre of the box"
    assert not np.all((u < 0.05) | (u > 0.95)), "argmin in a corner of the box"


@pytest.mark.parametrize("name", [n for n in SYNTHETIC if bp.make(n).shift is not None])
def test_shift_moves_the_optimum(name):
    p = bp.make(name)
    assert any(s != 0 for s in p.shift) and len(p.shift) == p.dim


@pytest.mark.parametrize("name", NOISY)
def test_noise_reproducible_per_seed(name):
    def run(seed):
        p = bp.make(name, seed=seed)
        rng = np.random.default_rng(1)
        return [p.objective(p.space.from_uniform(u)) for u in rng.random((20, p.dim))]

    a, b, c = run(0), run(0), run(1)
    assert a == b
    assert a != c
    p = bp.make(name, seed=0)
    residuals = np.array([p.objective(p.argmin) - p.optimum for _ in range(200)])
    assert abs(residuals.std() - p.noise) < 0.2 * p.noise
    assert abs(residuals.mean()) < 0.3 * p.noise


@pytest.mark.parametrize("name", MIXED)
def test_mixed_argmin_types(name):
    p = bp.make(name)
    kinds = set()
    for n, d in p.space.dimensions.items():
        value = p.argmin[n]
        if isinstance(d, Categorical):
            kinds.add("categorical")
            assert value in d.choices
        elif isinstance(d, Integer):
            kinds.add("integer")
            assert type(value) is int
        else:
            kinds.add("log" if d.log else "real")
            assert type(value) is float
    assert {"categorical", "integer"} <= kinds


@pytest.mark.parametrize("name", REAL)
def test_real_tasks_in_unit_interval_and_deterministic(name):
    p = bp.make(name)
    assert p.optimum is None and p.argmin is None
    params = p.space.from_uniform(np.full(p.dim, 0.3))
    first = p.objective(params)
    assert 0.0 <= first <= 1.0 and math.isfinite(first)
    assert bp.make(name, seed=5).objective(params) == first


def test_make_unknown_name_suggests():
    with pytest.raises(KeyError, match="Did you mean 'hartmann6'"):
        bp.make("hartman6")
