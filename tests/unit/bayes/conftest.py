"""Fixtures of the VI tests: a small seeded regression data set."""
import numpy as np
import pytest


@pytest.fixture
def linear_data():
    """24 correlated 2-d inputs and noisy targets (noise std 0.5) of a linear model."""
    rng = np.random.default_rng(3)
    X = rng.standard_normal((24, 2)) @ np.array([[1.0, 0.6], [0.0, 0.8]])
    w_true = np.array([1.0, -0.5])
    y = X @ w_true + 0.5 * rng.standard_normal(24)
    return X.astype(np.float32), y.astype(np.float32)
