"""Rounds of a :class:`~repurpose.bo.BayesSearchCV` search in which every fit failed.

scikit-learn's ``BaseSearchCV.fit`` (1.7.2) cross-validates each call of
``evaluate_candidates`` with ``_fit_and_score``, which turns a fit's exception into a result
(``fit_error``: the traceback; test and train scores: ``error_score``; ``fit_time``: the time
until the error; ``score_time``: 0), then calls ``_warn_or_raise_about_fit_failures`` on that
call's results: a ``FitFailedWarning`` if some fits failed, a ``ValueError('All the N fits
failed ...')`` if all did, raised before the results are added to the search's. That suits
``RandomizedSearchCV``, whose one call holds every candidate; a Bayesian search calls it once
per round of ``n_points`` candidates, so a single bad candidate would end the search.

BayesSearchCV therefore catches that error and records the round itself, as
``_fit_and_score`` records failed fits. What it relies on, and why it is the least it can:

* the error's type and first line (``All the N fits failed.``, N the round's fits): the only
  sign that the round ended so. It is caught only when ``error_score`` is a number (with
  ``'raise'`` the fit's own exception propagates at the first failure, as before) and when
  ``BaseSearchCV`` did not record the round (its ``_format_results`` was not called), so
  nothing is counted twice if scikit-learn ever changes this;
* the tracebacks in the error's message, which are the fit errors (``N fits failed with the
  following error:`` blocks, in the order the fits ran). The results of the round are gone
  with the exception, and fitting again only to read the errors would double the cost of a
  failing round (and may not fail the same way). If the blocks cannot be read, each fit's
  error is the whole message;
* times: a failed fit's ``fit_time`` is the round's wall time shared among its fits (the
  error does not carry them), its ``score_time`` 0, as ``_fit_and_score`` sets it;
* when every candidate of the whole search failed, :func:`raise_if_every_fit_failed` raises
  scikit-learn's own error through ``_warn_or_raise_about_fit_failures`` over all the
  search's fits, so the message is the one ``RandomizedSearchCV`` gives for such a search.
"""
import re
import warnings

from sklearn.exceptions import FitFailedWarning
# Private, but it is the function whose error BaseSearchCV.fit raises: calling it on every fit
# of the search gives that error word for word, instead of a copy of its text here.
from sklearn.model_selection._validation import _warn_or_raise_about_fit_failures

__all__ = ["all_fits_failed", "failed_round_outs", "candidate_error", "with_metric_names",
           "raise_if_every_fit_failed"]

_ALL_FAILED = re.compile(r"\s*All the (\d+) fits failed\.")
_BLOCK = re.compile(r"-{80}\n(\d+) fits failed with the following error:\n(.*?)(?=\n-{80}\n|\Z)",
                    re.DOTALL)


def all_fits_failed(err, n_fits):
    """Whether ``err`` is scikit-learn's error for a call of ``evaluate_candidates`` whose
    ``n_fits`` fits all failed."""
    match = _ALL_FAILED.match(str(err))
    return isinstance(err, ValueError) and match is not None and int(match.group(1)) == n_fits


def _fit_errors(message, n_fits):
    """The ``n_fits`` fit errors (tracebacks) of the message, in the order of the fits."""
    errors = [error for count, error in _BLOCK.findall(message) for _ in range(int(count))]
    return errors if len(errors) == n_fits else [message] * n_fits


def failed_round_outs(err, n_candidates, test_sizes, seconds, error_score, return_train_score):
    """What ``_fit_and_score`` returned for each fit of a round whose fits all failed
    (candidate by candidate, split by split, as ``BaseSearchCV`` orders them), rebuilt from
    its error ``err``; and a ``FitFailedWarning`` with the errors, as scikit-learn warns
    about the failed fits of a round that goes on.

    Examples
    --------
    >>> err = ValueError("\\nAll the 2 fits failed.\\n...\\n" + "-" * 80 +
    ...                  "\\n2 fits failed with the following error:\\nValueError: bad\\n")
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     outs = failed_round_outs(err, 1, [5, 4], 1.0, float("nan"), False)
    >>> [(out["fit_error"], out["n_test_samples"], out["fit_time"]) for out in outs]
    [('ValueError: bad\\n', 5, 0.5), ('ValueError: bad\\n', 4, 0.5)]
    """
    n_fits = n_candidates * len(test_sizes)
    errors = _fit_errors(str(err), n_fits)
    outs = []
    for i, error in enumerate(errors):
        out = {"fit_error": error, "test_scores": error_score,
               "n_test_samples": test_sizes[i % len(test_sizes)], "fit_time": seconds / n_fits,
               "score_time": 0.0}
        if return_train_score:
            out["train_scores"] = error_score
        outs.append(out)
    warnings.warn(f"Every fit of {n_candidates} candidate(s) failed; BayesSearchCV records "
                  f"them as failed trials (scores set to {error_score}) and goes on.{err}",
                  FitFailedWarning, stacklevel=4)
    return outs


def candidate_error(outs):
    """A failed candidate's error for its trial: the last line of its first fit's traceback
    (``'ValueError: ...'``).

    Examples
    --------
    >>> candidate_error([{"fit_error": "Traceback ...\\nValueError: bad C\\n"}])
    'ValueError: bad C'
    """
    lines = [line for line in outs[0]["fit_error"].splitlines() if line.strip()]
    return lines[-1].strip() if lines else "every fit failed"


def with_metric_names(outs):
    """``outs`` with the scalar scores of failed fits made dicts of metric name -> score
    when the others are dicts (several metrics), as scikit-learn's ``_insert_error_scores``
    does for a callable scoring; a failed round does not know the names of a callable's
    metrics."""
    names = next((list(out["test_scores"]) for out in outs
                  if isinstance(out["test_scores"], dict)), None)
    if names is None:
        return outs
    fixed = []
    for out in outs:
        if not isinstance(out["test_scores"], dict):
            out = dict(out, test_scores=dict.fromkeys(names, out["test_scores"]))
            if "train_scores" in out:
                out["train_scores"] = dict.fromkeys(names, out["train_scores"])
        fixed.append(out)
    return fixed


def raise_if_every_fit_failed(outs, error_score):
    """Raise scikit-learn's ``ValueError('All the N fits failed ...')`` if every fit of
    ``outs`` (all of the search's) failed."""
    if outs and all(out["fit_error"] is not None for out in outs):
        _warn_or_raise_about_fit_failures(outs, error_score)
