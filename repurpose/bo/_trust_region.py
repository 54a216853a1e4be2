"""The trust region a :class:`~repurpose.bo.BayesianOptimizer` searches the acquisition in.

After Eriksson et al. (2019), TuRBO: a box of side ``L`` (in the unit cube of the encoded
inputs) centred on the best trial so far. ``L`` starts at :data:`INITIAL_LENGTH`; after
:data:`SUCCESS_TOLERANCE` improving trials in a row it doubles (up to :data:`MAX_LENGTH`),
after ``max(4, n_dims)`` trials in a row that do not improve it halves, and once below
:data:`MIN_LENGTH` it starts again at :data:`INITIAL_LENGTH` (TuRBO restarts there with a
fresh design; here the surrogate keeps every trial and the next box is wide again). A trial
improves if it beats the best value before it by more than a thousandth of its size.

The length is recomputed from the told values on every suggestion, not kept as state: a
study resumed from its journal suggests what the uninterrupted one would have. Only the real
(continuous) columns are bounded; integer and categorical parameters stay free, as the
acquisition optimiser moves them by discrete steps.

Unlike TuRBO, the box is a cube, not stretched by the surrogate's length-scales, and one box
is kept, not several.
"""
import numpy as np

__all__ = ["side_length", "bounds"]

INITIAL_LENGTH = 0.8
MIN_LENGTH = 0.5 ** 7
MAX_LENGTH = 1.6
SUCCESS_TOLERANCE = 3
#: Improvements smaller than this fraction of the best value's size count as failures.
RELATIVE_IMPROVEMENT = 1e-3


def side_length(y, n_initial, n_dims):
    """The box's side after the minimised values ``y`` (trial order; failed trials carry a
    value no better than the best), of which the first ``n_initial`` are the initial design.

    Examples
    --------
    >>> side_length([5.0, 4.0, 3.0], n_initial=3, n_dims=2)  # still the design
    0.8
    >>> side_length([5.0, 4.0, 3.0] + [3.0] * 4, n_initial=3, n_dims=2)  # 4 failures
    0.4
    >>> side_length([5.0, 4.0, 3.0, 2.0, 1.0, 0.5], n_initial=3, n_dims=2)  # 3 successes
    1.6
    """
    y = np.asarray(y, dtype=float).ravel()
    n_initial = max(int(n_initial), 1)
    length = INITIAL_LENGTH
    if len(y) <= n_initial:
        return length
    failure_tolerance = max(4, int(n_dims))
    best = float(np.min(y[:n_initial]))
    successes = failures = 0
    for value in y[n_initial:]:
        if value < best - RELATIVE_IMPROVEMENT * abs(best):
            successes, failures = successes + 1, 0
        else:
            successes, failures = 0, failures + 1
        best = min(best, float(value))
        if successes == SUCCESS_TOLERANCE:
            length, successes = min(2.0 * length, MAX_LENGTH), 0
        elif failures == failure_tolerance:
            length, failures = length / 2.0, 0
        if length < MIN_LENGTH:
            length = INITIAL_LENGTH
    return length


def bounds(center, length, n_columns, real_columns):
    """Lower and upper bounds (each of shape ``(n_columns,)``) of the box of side ``length``
    around the encoded row ``center``, clipped to the unit cube; columns other than
    ``real_columns`` keep ``[0, 1]``.

    Examples
    --------
    >>> lower, upper = bounds(np.array([0.9, 0.5, 1.0]), 0.4, 3, [0, 1])
    >>> lower.round(2).tolist(), upper.round(2).tolist()
    ([0.7, 0.3, 0.0], [1.0, 0.7, 1.0])
    """
    lower, upper = np.zeros(n_columns), np.ones(n_columns)
    cols = np.asarray(real_columns, dtype=int)
    center = np.asarray(center, dtype=float)
    lower[cols] = np.clip(center[cols] - length / 2.0, 0.0, 1.0)
    upper[cols] = np.clip(center[cols] + length / 2.0, 0.0, 1.0)
    return lower, upper
