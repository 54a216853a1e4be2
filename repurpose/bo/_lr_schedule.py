"""The learning-rate schedule a :class:`~repurpose.bo.HyperbandScheduler` is told its trials
follow, and the two things the scheduler reads from it.

Every trial trains on the same schedule, set up for the full ``max_budget`` (so its rate at
budget ``b`` does not depend on whether it is stopped later): trials compared at the same
budget are at the same point of their schedule. What the schedule changes is how much a value
at ``b`` says about the final one. While the rate is still to fall (at the peak of a cosine,
before the step of a step schedule, during a warm-up), the values jump with the high rate and
the drop that the annealing brings is still ahead; a value taken there ranks configurations
poorly and cannot be extrapolated by curve families made for curves that flatten out
(:mod:`repurpose.bo.curves`). :class:`ScheduleProfile` samples the schedule once and gives
:meth:`~ScheduleProfile.annealed`, the fraction of the decay from the peak rate to the final
rate that lies behind a budget: 0 during warm-up and at the peak, 1 at the end, and 1 for a
schedule that never decays (nothing is ahead: the constant-rate rules apply unchanged).
:func:`matched_final` predicts a trial's final value from the completed trials at the same
point of the schedule.

Why these rules. The scheduler's objective reports as it trains, every trial on one schedule
set up for ``max_budget``, so trials compared at the same budget are already at the same
fraction of their schedule; what the schedule changes is how informative that fraction is, and
that depends on the task as much as on the schedule (on the fine-tuning benchmark,
``docs/benchmarks/bo_early_stopping.md``, the Spearman correlation of the validation loss after
epoch 1 with the final one was 0.15 under cosine, 0.11 under a constant rate). So the rungs
keep asynchronous successive halving's rank-based promotion, and a guard measured on the run
itself decides where it may stop trials (:func:`ranks_finals`): the rank consistency between a
low budget and the full one, which multi-fidelity optimisers such as MFES-HB (Li et al. 2021)
also use to weigh their low fidelities. The alternatives: Hyperband in its original form, BOHB,
DEHB and SMAC run each budget as its own training with the schedule compressed to it, which
needs an objective that takes the budget and pays a restart per rung; Ray Tune's ASHA and
Optuna's pruners compare intermediate values whatever the schedule; a schedule-aware curve
(loss as a function of the area under the rate and of the annealing, Tissue et al. 2024) can
be fitted per trial only once its annealing has begun, which is when stopping saves least.
"""
import math
import numbers
import warnings

import numpy as np
from scipy.stats import spearmanr

from .._validation import brief_list
from ..exceptions import InvalidParameterError

__all__ = ["ScheduleProfile", "matched_final", "ranks_finals", "matched_values",
           "resume_profile"]

#: One-sided 95 % normal quantile: a rung's values must rank the final values with a Spearman
#: correlation at least this many standard errors (``1 / sqrt(n - 1)``) above 0.
Z_RANKS = 1.645
#: Fewest completed trials from which a rung under a decaying schedule may stop trials.
MIN_COMPLETED = 4

#: Budgets at which a schedule of a non-integer (or over 1000) ``max_budget`` is sampled.
N_SAMPLES = 100


def _sample_budgets(max_budget):
    """Integer budgets 1..max_budget (epochs) when max_budget is an integer <= 1000, else
    ``N_SAMPLES`` evenly spaced budgets up to max_budget."""
    if float(max_budget).is_integer() and max_budget <= 1000:
        return np.arange(1, int(max_budget) + 1, dtype=float)
    return max_budget * np.arange(1, N_SAMPLES + 1) / N_SAMPLES


class ScheduleProfile:
    """A learning-rate schedule sampled at fixed budgets (see :func:`_sample_budgets`).

    Parameters
    ----------
    budgets, rates : array-like
        Increasing budgets ending at ``max_budget``, and the rate at each.

    Examples
    --------
    >>> cosine = ScheduleProfile.from_callable(
    ...     lambda b: 0.5 * (1 + math.cos(math.pi * (b - 1) / 9)), 9)
    >>> [round(cosine.annealed(b), 2) for b in (1, 3, 5, 9)], cosine.stationary
    ([0.0, 0.12, 0.43, 1.0], False)
    >>> ScheduleProfile.from_callable(lambda b: 0.1, 9).annealed(1)
    1.0
    """

    def __init__(self, budgets, rates):
        self.budgets = np.asarray(budgets, dtype=float)
        self.rates = np.asarray(rates, dtype=float)
        peak, final = float(self.rates.max()), float(self.rates[-1])
        self.stationary = peak - final <= 1e-9 * peak
        # The highest rate still ahead of each sampled budget (itself included).
        ahead = np.maximum.accumulate(self.rates[::-1])[::-1]
        self._annealed = (np.ones_like(ahead) if self.stationary
                          else np.clip(1.0 - (ahead - final) / (peak - final), 0.0, 1.0))

    @classmethod
    def from_callable(cls, schedule, max_budget):
        """Sample ``schedule(budget)`` (the learning rate that brings the trial to ``budget``,
        on any scale) at the budgets of :func:`_sample_budgets`; InvalidParameterError if it
        is not callable or gives anything but finite rates >= 0, not all 0."""
        if not callable(schedule):
            raise InvalidParameterError(
                f"schedule must be None or a callable budget -> learning rate (e.g. lambda "
                f"epoch: lr_at(epoch)), got {type(schedule).__name__} {schedule!r}.")
        budgets = _sample_budgets(max_budget)
        rates = []
        for b in budgets:
            b = int(b) if b.is_integer() else float(b)
            try:
                rate = schedule(b)
            except Exception as err:
                raise InvalidParameterError(
                    f"schedule({b!r}) raised {type(err).__name__}: {err}. The schedule is "
                    f"called with budgets in (0, max_budget={max_budget:g}] and must return "
                    f"the learning rate there.") from err
            if (isinstance(rate, (bool, np.bool_)) or not isinstance(rate, numbers.Real)
                    or not math.isfinite(rate) or rate < 0):
                raise InvalidParameterError(
                    f"schedule({b!r}) returned {rate!r}; a learning rate must be a finite "
                    f"real number >= 0.")
            rates.append(float(rate))
        if max(rates) <= 0:
            raise InvalidParameterError(
                "schedule returned 0 at every budget; give the learning rate (any scale) of "
                "the schedule every trial follows.")
        return cls(budgets, rates)

    @classmethod
    def from_dict(cls, data, where):
        """Inverse of :meth:`to_dict`; InvalidParameterError naming ``where`` if malformed."""
        try:
            budgets, rates = (np.asarray(data[key], dtype=float) for key in ("budgets", "rates"))
            ok = (budgets.ndim == 1 and budgets.shape == rates.shape and len(budgets) > 0
                  and np.all(np.isfinite(rates)) and np.all(rates >= 0) and rates.max() > 0)
        except (KeyError, TypeError, ValueError):
            ok = False
        if not ok:
            raise InvalidParameterError(
                f"{where}: the stored schedule is malformed (expected budgets and rates of "
                f"equal length, rates >= 0, not all 0); the journal's header was altered. "
                f"Restore it, or use another state_path.")
        return cls(budgets, rates)

    def to_dict(self):
        """The samples as JSON: ``{'budgets': [...], 'rates': [...]}`` (rates to 12 digits,
        so that the same schedule compares equal after a round trip)."""
        return {"budgets": [float(b) for b in self.budgets],
                "rates": [float(f"{r:.12g}") for r in self.rates]}

    def annealed(self, budget):
        """Fraction of the schedule's decay behind ``budget`` (linear between samples)."""
        return float(np.interp(budget, self.budgets, self._annealed))


def matched_values(budget, completed):
    """``(best value up to budget, final value)`` arrays (internal, minimised) of the
    completed trials ``[(budgets, values), ...]`` that reported at or before ``budget``."""
    at, finals = [], []
    for budgets, values in completed:
        budgets, values = np.asarray(budgets, dtype=float), np.asarray(values, dtype=float)
        if budgets[0] > budget:
            continue
        at.append(float(np.min(values[budgets <= budget])))
        finals.append(float(values[-1]))
    return np.asarray(at), np.asarray(finals)


def ranks_finals(budget, completed):
    """Whether the best values up to ``budget`` of the completed trials ``[(budgets,
    values), ...]`` have ranked their final values: at least :data:`MIN_COMPLETED` of them
    and a Spearman correlation above ``Z_RANKS / sqrt(n - 1)`` (its standard error when there
    is no relation). Under a schedule that still decays, a rung stops trials only then.

    Examples
    --------
    >>> same = [([1, 9], [v, v / 10]) for v in (1.0, 2.0, 3.0, 4.0, 5.0)]
    >>> inverted = [([1, 9], [v, 1 / v]) for v in (1.0, 2.0, 3.0, 4.0, 5.0)]
    >>> ranks_finals(1, same), ranks_finals(1, inverted), ranks_finals(1, same[:3])
    (True, False, False)
    """
    at, finals = matched_values(budget, completed)
    n = len(at)
    if n < MIN_COMPLETED:
        return False
    with warnings.catch_warnings():  # a constant column: no evidence (nan)
        warnings.simplefilter("ignore")
        rho = spearmanr(at, finals).correlation
    return bool(rho > Z_RANKS / math.sqrt(n - 1))  # False for nan


def matched_final(budget, value, completed):
    """Predicted final (internal) value of a trial whose best value up to ``budget`` is
    ``value``, by matching it with completed trials at the same budget (the same point of
    the schedule): its quantile among their best values up to ``budget`` is mapped to the
    same quantile of their final values (linear between order statistics; a trial worse than
    all of them gets the worst final). None with fewer than 2 completed trials.

    ``completed`` is a list of ``(budgets, internal values)`` of completed trials.

    Examples
    --------
    >>> done = [([1, 2, 3], [5.0, 2.0, 0.2]), ([1, 2, 3], [3.0, 1.0, 0.4]),
    ...         ([1, 2, 3], [9.0, 4.0, 0.6])]
    >>> [round(matched_final(1, v, done), 6) for v in (4.0, 10.0, 1.0)]
    [0.3, 0.6, 0.2]
    """
    at, finals = matched_values(budget, completed)
    if len(at) < 2:
        return None
    at, finals = np.sort(at), np.sort(finals)
    # Quantile of `value` among the matched values, as a fractional order statistic.
    position = np.interp(value, at, np.arange(len(at), dtype=float))
    return float(np.interp(position, np.arange(len(finals), dtype=float), finals))


def resume_profile(profile, stored, path):
    """The schedule of a resumed run: the given ``profile`` (a :class:`ScheduleProfile` or
    None) if it samples as the ``stored`` one (a :meth:`ScheduleProfile.to_dict` or None,
    from the journal at ``path``), the stored one if none was given; else
    InvalidParameterError."""
    if profile is None:
        return None if stored is None else ScheduleProfile.from_dict(stored, repr(path))
    if stored is None or profile.to_dict() != stored:
        what = ("without a schedule" if stored is None else
                f"with another schedule (rates {brief_list(stored.get('rates', []))})")
        raise InvalidParameterError(
            f"schedule gives rates {brief_list(profile.to_dict()['rates'])}, but {path!r} "
            f"holds a run {what}. Pass the same schedule (or schedule=None to take the "
            f"stored one) to resume, or another state_path.")
    return profile
