"""Acquisition optimiser: scrambled Sobol candidates at valid points, L-BFGS-B on the real
columns from the best few, then one sweep of discrete moves (integer +-1, other categories).

Integer and categorical columns are never relaxed at evaluation time: candidates are decoded
to valid parameters and re-encoded, the gradient step moves only the columns of ``Real``
dimensions, and discrete moves jump between lattice points / one-hot vertices.
"""
import numpy as np
from scipy.optimize import minimize as scipy_minimize
from scipy.stats import qmc

from .space import Categorical, Integer

__all__ = ["AcquisitionOptimizer", "sobol_points"]

LBFGS_MAXITER = 50  # iterations per local search of the acquisition


def _has_gradient(acquisition, x):
    """Whether the acquisition (and its model) give analytic gradients at row ``x``."""
    try:
        acquisition.evaluate_with_gradient(x[None])
    except NotImplementedError:
        return False
    return True


def sobol_points(n, d, rng):
    """``n`` scrambled Sobol points in ``[0, 1)^d`` (drawn as a power of 2, first ``n`` kept)."""
    m = max(int(np.ceil(np.log2(max(n, 1)))), 0)
    return qmc.Sobol(d, scramble=True, seed=rng).random_base2(m)[:n]


class AcquisitionOptimizer:
    """Maximise an acquisition over a :class:`SearchSpace`.

    Parameters
    ----------
    space : SearchSpace
    n_candidates : int, default=1024
        Sobol candidates scored before the local search.
    n_local : int, default=4
        Best candidates refined by L-BFGS-B and discrete moves.
    max_rounds : int, default=3
        Rounds of (L-BFGS-B on the real columns, then discrete moves) per local search; a
        round after the first runs only if the discrete moves changed the row; 1 is a single
        pass.

    Examples
    --------
    >>> from repurpose.bo import Acquisition, Real, SearchSpace
    >>> class Closeness(Acquisition):  # highest where x is 0.3 of the way up the range
    ...     def evaluate(self, X):
    ...         return -np.abs(X[:, 0] - 0.3)
    >>> space = SearchSpace({'x': Real(0.0, 10.0)})
    >>> optimizer = AcquisitionOptimizer(space, n_candidates=64, n_local=2)
    >>> row, score = optimizer.maximize(Closeness(), np.random.default_rng(0))
    >>> round(space.decode(row)['x'], 3)
    3.0
    """

    def __init__(self, space, n_candidates=1024, n_local=4, max_rounds=3):
        self.space = space
        self.n_candidates = n_candidates
        self.n_local = n_local
        self.max_rounds = max_rounds

    def candidates(self, rng, bounds=None):
        """``n_candidates`` valid encoded rows from scrambled Sobol points; with ``bounds``
        (lower and upper rows), their real columns are mapped into those bounds."""
        U = sobol_points(self.n_candidates, self.space.n_dims, rng)
        X = np.array([self.space.encode(self.space.from_uniform(u)) for u in U])
        if bounds is not None:
            cols = self.space.real_columns
            lower, upper = self._real_bounds(bounds)
            X[:, cols] = lower + X[:, cols] * (upper - lower)
        return X

    def _real_bounds(self, bounds):
        """Lower and upper bounds of the real columns: the unit interval if ``bounds`` is
        None, else those columns of the pair of encoded rows."""
        if bounds is None:
            return 0.0, 1.0
        cols = self.space.real_columns
        return (np.asarray(bounds[0], dtype=float)[cols],
                np.asarray(bounds[1], dtype=float)[cols])

    def _refine(self, acquisition, x, score, bounds=None):
        """Local search from ``x``: L-BFGS-B on the real columns, then one sweep of discrete
        moves; while a discrete move improves the score, the real columns are optimised again
        for the new integer/category (a category's best learning rate is rarely the previous
        one's), for ``MAX_ROUNDS`` rounds at most."""
        cols = np.asarray(self.space.real_columns, dtype=int)
        analytic = None
        for _ in range(self.max_rounds):
            if len(cols):
                if analytic is None:
                    analytic = _has_gradient(acquisition, x)
                x, score = self._gradient_step(acquisition, x, score, cols, analytic, bounds)
            x, score, moved = self._discrete_step(acquisition, x, score)
            if not moved or not len(cols):
                break
        return x, score

    def _gradient_step(self, acquisition, x, score, cols, analytic, bounds=None):
        lower, upper = self._real_bounds(bounds)

        def row_at(z):
            row = x.copy()
            row[cols] = z
            return row[None]

        def negative(z):
            if not analytic:  # scipy's finite differences (a custom acquisition)
                return -float(acquisition.evaluate(row_at(z))[0])
            value, grad = acquisition.evaluate_with_gradient(row_at(z))
            return -float(value[0]), -np.asarray(grad[0], dtype=float)[cols]

        with np.errstate(all="ignore"):
            res = scipy_minimize(negative, x[cols], method="L-BFGS-B", jac=analytic,
                                 bounds=list(zip(np.broadcast_to(lower, len(cols)),
                                                 np.broadcast_to(upper, len(cols)))),
                                 options={"maxiter": LBFGS_MAXITER})
        if np.all(np.isfinite(res.x)):
            trial = row_at(np.clip(res.x, lower, upper))[0]
            # Re-scored by evaluate(), the way every candidate is scored.
            trial_score = float(np.asarray(acquisition.evaluate(trial[None]))[0])
            if np.isfinite(trial_score) and trial_score > score:
                return trial, trial_score
        return x, score

    def _discrete_step(self, acquisition, x, score):
        """One sweep of moves over integer (+-1) and categorical (every other category)
        dimensions; the best move is taken if it improves the score."""
        space = self.space
        moves = []
        params = space.decode(x)
        for name, dim in space.dimensions.items():
            if isinstance(dim, Integer):
                for step in (-1, 1):
                    value = params[name] + step
                    if dim.low <= value <= dim.high:
                        moves.append({**params, name: value})
            elif isinstance(dim, Categorical):
                moves.extend({**params, name: c} for c in dim.choices if c != params[name])
        if moves:
            rows = np.array([space.encode(p) for p in moves])
            # Moves keep the real columns as they are (decode/encode rounds them).
            rows[:, space.real_columns] = x[space.real_columns]
            scores = acquisition.evaluate(rows)
            i = int(np.nanargmax(scores)) if np.any(np.isfinite(scores)) else -1
            if i >= 0 and scores[i] > score:
                return rows[i], float(scores[i]), True
        return x, score, False

    def local_candidates(self, incumbents, rng, n_per=32, scale=0.05, bounds=None):
        """Gaussian perturbations (sd ``scale`` in the unit cube) of the real columns of each
        row of ``incumbents``, clipped to ``bounds`` (lower and upper rows; the unit cube if
        None); integer and categorical columns are kept, so rows stay valid."""
        cols = self.space.real_columns
        if incumbents is None or len(incumbents) == 0 or not len(cols):
            return np.empty((0, self.space.n_columns))
        rows = np.repeat(np.asarray(incumbents, dtype=float), n_per, axis=0)
        lower, upper = self._real_bounds(bounds)
        rows[:, cols] = np.clip(rows[:, cols] + scale * rng.standard_normal((len(rows),
                                                                            len(cols))),
                                lower, upper)
        return rows

    def _starts(self, scores, order, rng):
        """Indices of the local-search starts: the best candidate, then ``n_local - 1`` drawn
        without replacement with probability proportional to ``exp(score - best)`` (for
        log-scale acquisitions: proportional to the acquisition itself). Drawing instead of
        taking the next best spreads the starts over several modes of the acquisition,
        where the top few candidates usually sit in one basin."""
        if self.n_local == 0 or not np.isfinite(scores[order[0]]):
            return order[: self.n_local]
        weights = np.exp(np.clip(scores - scores[order[0]], -700.0, 0.0))
        weights[order[0]] = 0.0
        n_more = min(self.n_local - 1, int(np.count_nonzero(weights > 0)))
        if n_more <= 0:
            return order[:1]
        more = rng.choice(len(scores), size=n_more, replace=False, p=weights / weights.sum())
        return np.concatenate([order[:1], more])

    def maximize(self, acquisition, rng, exclude=None, incumbents=None, bounds=None):
        """Return the best encoded row found and its score, avoiding rows within 1e-6 of any
        row of ``exclude`` (points already observed or pending).

        ``incumbents`` (encoded rows, best first) add perturbed candidates around them, and
        the first one is also a start of the local search, so the optimiser can refine the
        neighbourhood of the best point seen, where Sobol points are sparse; it must lie
        within ``bounds``.

        ``bounds``: a pair of encoded rows, lower and upper, that bound the real columns of
        the search (a trust region); None searches the whole unit cube."""
        X = self.candidates(rng, bounds)
        X = np.vstack([X, self.local_candidates(incumbents, rng, bounds=bounds)])
        scores = np.asarray(acquisition.evaluate(X), dtype=float)
        scores = np.where(np.isfinite(scores), scores, -np.inf)
        order = np.argsort(-scores)
        results = []
        for i in self._starts(scores, order, rng):
            results.append(self._refine(acquisition, X[i], scores[i], bounds))
        if incumbents is not None and len(incumbents) and self.n_local > 0:
            x0 = np.asarray(incumbents[0], dtype=float)
            s0 = float(np.asarray(acquisition.evaluate(x0[None]), dtype=float)[0])
            results.append(self._refine(acquisition, x0, s0 if np.isfinite(s0) else -np.inf,
                                        bounds))
        results.extend((X[i], scores[i]) for i in order[self.n_local:])
        results.sort(key=lambda r: -r[1])
        exclude = np.empty((0, self.space.n_columns)) if exclude is None else exclude
        for x, score in results:
            if len(exclude) == 0 or np.min(np.max(np.abs(exclude - x), axis=1)) > 1e-6:
                return x, score
        return results[0]  # every candidate is taken (a tiny discrete space): repeat the best
