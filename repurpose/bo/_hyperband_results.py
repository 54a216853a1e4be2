"""The records of :mod:`repurpose.bo.scheduler`: one trial (:class:`ScheduledTrial`) and a
run's result (:class:`EarlyStoppingResult`); both are exported by :mod:`repurpose.bo`."""
import dataclasses
from typing import Any, Dict, List, Optional

__all__ = ["ScheduledTrial", "EarlyStoppingResult"]


@dataclasses.dataclass
class ScheduledTrial:
    """One configuration's run. ``status``: ``'completed'`` (ran until the objective returned),
    ``'stopped'`` (by the scheduler: ``stop_reason`` is ``'rung'`` or ``'curve'``) or
    ``'failed'`` (raised, or reported nothing). ``told_value`` is what the optimiser was told;
    ``predicted_final``/``predicted_std`` the extrapolation used for a stopped trial.

    The scheduler builds these (:attr:`HyperbandScheduler.history`,
    :attr:`EarlyStoppingResult.history`); the fields are also its attributes.

    Parameters
    ----------
    params : dict
        The configuration, by parameter name.
    bracket : int
        Its Hyperband bracket ``s`` (rungs at ``max_budget * eta**-k``, ``k = s .. 1``).
    budgets, values : list of float
        The reported ``(budget, value)`` points, in order.
    status : {'completed', 'stopped', 'failed'}, default='completed'
        How the trial ended.
    stop_reason : {'rung', 'curve', None}, default=None
        Why a stopped trial was stopped: successive halving or the learning-curve rule.
    told_value : float, default=None
        The value the optimiser was told (the last value, or the predicted final value of a
        stopped trial); None if it was not told one.
    predicted_final, predicted_std : float, default=None
        The extrapolated final value of a stopped trial and its standard deviation; under a
        decaying ``schedule``, the final value matched with the completed trials at its last
        budget (``predicted_std`` None).
    error : str, default=None
        What went wrong in a failed trial.
    seconds : float, default=None
        Wall-clock time of the trial.

    Examples
    --------
    >>> trial = ScheduledTrial(params={'lr': 0.1}, bracket=1, budgets=[1.0, 3.0],
    ...                        values=[0.9, 0.7], status='stopped', stop_reason='rung',
    ...                        told_value=0.65, predicted_final=0.65)
    >>> trial.budget_used
    3.0
    """

    params: Dict[str, Any]
    bracket: int
    budgets: List[float]
    values: List[float]
    status: str = "completed"
    stop_reason: Optional[str] = None
    told_value: Optional[float] = None
    predicted_final: Optional[float] = None
    predicted_std: Optional[float] = None
    error: Optional[str] = None
    seconds: Optional[float] = None

    @property
    def budget_used(self):
        """The last budget reported (0 if none)."""
        return self.budgets[-1] if self.budgets else 0.0


@dataclasses.dataclass
class EarlyStoppingResult:
    """Best completed trial (None if none completed), the history, and the total budget used
    (sum over trials of the last budget each reported).

    Returned by :func:`minimize_with_early_stopping` and :meth:`HyperbandScheduler.run`; the
    fields are also its attributes.

    Parameters
    ----------
    best_params : dict or None
        Parameters of the best completed trial (judged by its last value).
    best_value : float or None
        Its last reported value.
    history : list of ScheduledTrial
        Every trial, in the order they finished.
    total_budget_used : float
        Sum over trials of the last budget each reported.

    Examples
    --------
    >>> from repurpose.bo import Real, SearchSpace, minimize_with_early_stopping
    >>> def train(params, report):
    ...     for epoch in range(1, 4):
    ...         report(epoch, params["x"] ** 2 + 1.0 / epoch)
    >>> res = minimize_with_early_stopping(train, SearchSpace({"x": Real(-1.0, 1.0)}),
    ...                                    max_budget=3, n_trials=4, seed=0)
    >>> [t.status for t in res.history], res.total_budget_used
    (['completed', 'stopped', 'completed', 'completed'], 10.0)
    >>> res.best_value == min(t.values[-1] for t in res.history if t.status == 'completed')
    True
    """

    best_params: Optional[Dict[str, Any]]
    best_value: Optional[float]
    history: List[ScheduledTrial]
    total_budget_used: float
