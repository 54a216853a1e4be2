"""The journal of a :class:`~repurpose.bo.BayesSearchCV` search, so that a killed search
resumes without re-fitting the candidates it finished.

It is a :data:`~repurpose.bo.state.SEARCH_CV` journal, written and locked by the machinery of
:mod:`repurpose.bo.state` (one JSON object per line, each line fsynced, a torn last line
dropped on reading). The header holds the search space and what must match to resume: the
optimiser's settings (seed included), ``n_points``, the scoring and refit metric,
``return_train_score``, ``error_score``, the number of CV splits, a fingerprint of the
estimator (its class and plain parameters) and one of the data (shapes, dtypes and SHA-256 of
``X`` and ``y``, and of the CV splits' indices). Each later line is one cross-validated
candidate: its trial as told to the optimiser (``params``, ``value``, ``status``,
``seconds``, ``error``), the batch it was suggested in (``[first candidate, size]``), and for
each CV split what scikit-learn's ``_fit_and_score`` returned (test scores, train scores,
one per metric, fit and score times, test size, fit error), from which ``cv_results_`` is
rebuilt as the uninterrupted search built it.

Examples
--------
>>> out = {'fit_error': None, 'test_scores': float('nan'), 'n_test_samples': 30,
...        'fit_time': 0.5, 'score_time': 0.25}
>>> record = split_record(out)
>>> record['test_scores']
'nan'
>>> split_from_record(record)['test_scores']
nan
"""
import dataclasses
import hashlib
import numbers
import os
import re
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import scipy.sparse

from ..exceptions import DataError, InvalidParameterError, ModelFileError
from .state import SEARCH_CV, check_same_settings, decode_float, encode_float, journal_header

__all__ = ["Candidate", "split_record", "split_from_record", "candidate_record",
           "read_candidates", "search_header", "check_header_settings", "describe_scoring",
           "estimator_fingerprint", "data_fingerprint", "check_same_estimator",
           "check_same_data", "check_same_space", "unfinished_batch", "SETTING_KEYS"]

#: The keys of the header's ``settings``.
SETTING_KEYS = ("optimizer", "n_points", "scoring", "refit", "return_train_score",
                "error_score", "n_splits", "estimator", "data")
# Estimator parameters that do not change what a fit gives (where and how loudly it runs):
# not compared on resume, so a search started on one device or core count continues on another.
_NEUTRAL_PARAMS = frozenset({"n_jobs", "verbose", "progress", "ctx"})
_NOT_PLAIN = object()


# ---------------------------------------------------------------------- candidate lines
@dataclasses.dataclass
class Candidate:
    """One journalled candidate: its trial's fields (``trial``, keyword arguments of
    :class:`~repurpose.bo.Trial`), the batch it was suggested in and its splits' results (as
    ``_fit_and_score`` returned them)."""

    trial: Dict[str, Any]
    batch: Tuple[int, int]
    splits: List[Dict[str, Any]]

    @property
    def params(self):
        return self.trial["params"]


def _encode_scores(scores):
    if isinstance(scores, dict):
        return {str(name): encode_float(value) for name, value in scores.items()}
    return encode_float(scores)


def _decode_scores(value):
    if isinstance(value, dict):
        return {str(name): decode_float(score) for name, score in value.items()}
    if isinstance(value, (bool, list)):
        raise ValueError(f"expected a score or a dict of scores, got {value!r}")
    return decode_float(value)


def split_record(out):
    """One CV split's result (a dict from scikit-learn's ``_fit_and_score``, as
    ``BaseSearchCV.fit`` gathers them) as JSON-able values; scores may be NaN or inf."""
    record = {"fit_error": None if out["fit_error"] is None else str(out["fit_error"]),
              "test_scores": _encode_scores(out["test_scores"]),
              "n_test_samples": int(out["n_test_samples"]),
              "fit_time": encode_float(out["fit_time"]),
              "score_time": encode_float(out["score_time"])}
    if "train_scores" in out:
        record["train_scores"] = _encode_scores(out["train_scores"])
    return record


def split_from_record(record):
    """Inverse of :func:`split_record`: the dict ``_fit_and_score`` returned."""
    error = record["fit_error"]
    if error is not None and not isinstance(error, str):
        raise ValueError(f"fit_error must be a string or null, got {error!r}")
    out = {"fit_error": error, "test_scores": _decode_scores(record["test_scores"]),
           "n_test_samples": int(record["n_test_samples"]),
           "fit_time": decode_float(record["fit_time"]),
           "score_time": decode_float(record["score_time"])}
    if "train_scores" in record:
        out["train_scores"] = _decode_scores(record["train_scores"])
    return out


def candidate_record(trial, splits, batch):
    """The journal line of a candidate: its told ``trial`` (a :class:`~repurpose.bo.Trial`),
    its ``splits``' results and its ``batch`` (first candidate, size)."""
    record = dataclasses.asdict(trial)
    record["batch"] = [int(batch[0]), int(batch[1])]
    record["splits"] = [split_record(out) for out in splits]
    return record


def _trial_fields(record, space):
    status, value, error = record["status"], record["value"], record.get("error")
    if status == "ok":
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or error is not None:
            raise ValueError(f"an 'ok' trial needs a number value and no error, got "
                             f"value={value!r}, error={error!r}")
    elif status == "failed":
        if value is not None or not isinstance(error, str):
            raise ValueError(f"a failed trial needs value null and an error string, got "
                             f"value={value!r}, error={error!r}")
    else:
        raise ValueError(f"status must be 'ok' or 'failed', got {status!r}")
    seconds = record.get("seconds")
    return {"params": space.check_params(record["params"]),
            "value": None if value is None else float(value), "status": status,
            "seconds": None if seconds is None else float(seconds), "error": error}


def read_candidates(path, journal, space, n_splits):
    """Decode the candidate lines of ``journal`` (a :class:`~repurpose.bo.state.Journal`).

    Raises
    ------
    ModelFileError
        Naming the line, for a line that is not a valid candidate of ``n_splits`` splits.
    """
    candidates = []
    for number, record in enumerate(journal.records, start=2):
        try:
            start, size = (int(v) for v in record["batch"])
            if not 0 <= start <= len(candidates) or size < 1:
                raise ValueError(f"batch {record['batch']} does not follow the "
                                 f"{len(candidates)} candidates before it")
            splits = [split_from_record(split) for split in record["splits"]]
            if len(splits) != n_splits:
                raise ValueError(f"{len(splits)} splits, but the header says {n_splits}")
            candidates.append(Candidate(_trial_fields(record, space), (start, size), splits))
        except (KeyError, TypeError, ValueError) as err:  # InvalidParameterError included
            raise ModelFileError(
                f"BayesSearchCV journal file {os.fspath(path)!r}: line {number} is not a valid "
                f"candidate ({type(err).__name__}: {err}); the file is corrupted. Restore it "
                f"from a backup or start a new search with another state_path.") from err
    return candidates


# ---------------------------------------------------------------------- header
def search_header(space, settings):
    """The header line of a search over ``space`` (a SearchSpace) with ``settings``."""
    return journal_header(SEARCH_CV, space.to_dict(), settings)


def check_header_settings(path, settings):
    """Raise ModelFileError unless the header's ``settings`` hold every key of
    :data:`SETTING_KEYS` with values of the right kind."""
    missing = [key for key in SETTING_KEYS if key not in settings]
    kinds = {"optimizer": dict, "estimator": dict, "data": dict, "n_points": int,
             "n_splits": int, "return_train_score": bool}
    wrong = [key for key, kind in kinds.items()
             if key in settings and not isinstance(settings[key], kind)]
    if missing or wrong:
        raise ModelFileError(
            f"BayesSearchCV journal file {os.fspath(path)!r} has a header whose settings lack "
            f"{missing} or have bad values for {wrong}; it is corrupted. Remove it (or choose "
            f"another state_path) to start afresh.")


def _callable_name(obj):
    name = getattr(obj, "__qualname__", None)
    if name is not None:  # a function: its module and name, no memory address
        return f"{getattr(obj, '__module__', '?')}.{name}"
    text = repr(obj)  # a scorer from make_scorer says what it wraps
    if re.search(r" at 0x[0-9a-fA-F]+", text):
        return f"{type(obj).__module__}.{type(obj).__qualname__}"
    return text


def describe_scoring(scoring):
    """``scoring`` as JSON, to compare on resume: None, a metric name, a callable's name, a
    sorted list of names, or a dict of name -> description.

    Examples
    --------
    >>> describe_scoring(None), describe_scoring(('f1', 'accuracy'))
    (None, ['accuracy', 'f1'])
    """
    if scoring is None or isinstance(scoring, str):
        return scoring
    if isinstance(scoring, dict):
        return {str(name): _callable_name(value) if callable(value) else str(value)
                for name, value in sorted(scoring.items())}
    if callable(scoring):
        return _callable_name(scoring)
    return sorted(str(name) for name in scoring)


def _plain(value):
    """``value`` as JSON if it is a plain value (None, bool, number, str, or a list/tuple of
    those), else ``_NOT_PLAIN``."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return encode_float(value)
    if isinstance(value, (list, tuple)):
        items = [_plain(v) for v in value]
        return _NOT_PLAIN if any(v is _NOT_PLAIN for v in items) else items
    return _NOT_PLAIN


def estimator_fingerprint(estimator, searched):
    """The estimator's class and its plain parameters (``get_params(deep=True)``), without
    the ``searched`` names and those that do not change a fit's result (``n_jobs``,
    ``verbose``, ``progress``, ``ctx``). Objects (a source model, a callable) are left out.

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> fingerprint = estimator_fingerprint(LogisticRegression(C=2.0), ['C'])
    >>> fingerprint['class'], fingerprint['params']['max_iter'], 'C' in fingerprint['params']
    ('sklearn.LogisticRegression', 100, False)
    """
    params = {}
    for name, value in sorted(estimator.get_params(deep=True).items()):
        if name in searched or name.rsplit("__", 1)[-1] in _NEUTRAL_PARAMS:
            continue
        value = _plain(value)
        if value is not _NOT_PLAIN:
            params[name] = value
    cls = type(estimator)
    # The top-level package only: scikit-learn moves classes between private modules.
    return {"class": f"{cls.__module__.split('.')[0]}.{cls.__qualname__}", "params": params}


def check_same_estimator(path, given, stored):
    """Raise InvalidParameterError naming the estimator's class or first parameter that
    differs from the journal's (parameters known to only one side are not compared: a newer
    library may add parameters)."""
    try:
        pairs = [("estimator", given["class"], stored["class"])]
        pairs += [(f"estimator__{name}", value, stored["params"][name])
                  for name, value in given["params"].items() if name in stored["params"]]
    except (KeyError, TypeError) as err:
        raise ModelFileError(f"BayesSearchCV journal file {os.fspath(path)!r} has a header "
                             f"without a valid estimator entry ({err!r}); it is corrupted. "
                             f"Remove it (or choose another state_path) to start afresh.") from err
    check_same_settings(path, pairs, noun="search")


# ---------------------------------------------------------------------- data
def _array_fingerprint(data):
    if data is None:
        return None
    if scipy.sparse.issparse(data):
        csr = scipy.sparse.csr_matrix(data)
        digest = hashlib.sha256()
        for part in (csr.data, csr.indices, csr.indptr):
            digest.update(np.ascontiguousarray(part).tobytes())
        return {"shape": list(csr.shape), "dtype": f"sparse {csr.dtype}",
                "sha256": digest.hexdigest()}
    try:
        array = np.asarray(data)
    except (TypeError, ValueError):  # ragged lists and other objects: their length only
        array = None
    if array is None or array.dtype.kind not in "biufcUSMm":
        return {"shape": [len(data)], "dtype": None, "sha256": None}
    digest = hashlib.sha256(np.ascontiguousarray(array).tobytes())
    return {"shape": list(array.shape), "dtype": str(array.dtype), "sha256": digest.hexdigest()}


def data_fingerprint(X, y, splits):
    """What identifies the data of a search: the shape, dtype and SHA-256 of ``X`` and ``y``
    (number arrays and strings; of anything else only the length) and the SHA-256 of the CV
    ``splits`` (``(train, test)`` index arrays).

    Examples
    --------
    >>> import numpy as np
    >>> fingerprint = data_fingerprint(np.zeros((4, 2)), np.arange(4),
    ...                                [(np.arange(2), np.arange(2, 4))])
    >>> fingerprint['X']['shape'], fingerprint['y']['dtype']
    ([4, 2], 'int64')
    """
    digest = hashlib.sha256()
    for train, test in splits:
        for indices in (train, test):
            indices = np.asarray(indices, dtype=np.int64)
            digest.update(len(indices).to_bytes(8, "little") + indices.tobytes())
    return {"X": _array_fingerprint(X), "y": _array_fingerprint(y),
            "splits": digest.hexdigest()}


def _data_difference(name, given, stored):
    if given is None or stored is None:
        return (f"{name} is {'None' if given is None else 'given'} here but was "
                f"{'None' if stored is None else 'given'} in the journalled search")
    shape, old_shape = tuple(given.get("shape") or ()), tuple(stored.get("shape") or ())
    if shape != old_shape:
        return f"{name} has shape {shape} here, {old_shape} in the journalled search"
    if given.get("dtype") != stored.get("dtype"):
        return (f"{name} has dtype {given.get('dtype')} here, {stored.get('dtype')} in the "
                f"journalled search")
    return f"{name} holds other values than in the journalled search (same shape {shape})"


def check_same_data(path, given, stored):
    """Raise DataError saying what differs between the data of this fit (``given``, a
    :func:`data_fingerprint`) and the journal's (``stored``), and what to do."""
    advice = ("Resume with the same X, y, groups and cv as the journalled search, or choose "
              "another state_path to start a new search.")
    for name in ("X", "y"):
        if given[name] != stored.get(name):
            raise DataError(f"state_path {os.fspath(path)!r} holds a search on other data: "
                            f"{_data_difference(name, given[name], stored.get(name))}. {advice}")
    if given["splits"] != stored.get("splits"):
        raise DataError(
            f"state_path {os.fspath(path)!r} holds a search with other CV splits: the same X "
            f"and y are split into other train/test indices here (a cv that shuffles needs a "
            f"fixed random_state; groups must be the same). {advice}")


def _space_mismatch(path, stored, space):
    return InvalidParameterError(
        f"search_space {space!r} differs from the space stored in {os.fspath(path)!r} "
        f"({stored.get('dimensions')}). Use the same search_space to resume, or another "
        f"state_path to start a new search.")


def check_same_space(path, stored, space):
    """Raise InvalidParameterError if ``space`` is not the journal's (``stored``)."""
    if stored != space.to_dict():
        raise _space_mismatch(path, stored, space)


def unfinished_batch(candidates) -> Optional[Tuple[int, int]]:
    """``(m, size)`` if the last ``m`` of ``candidates`` are the start of a batch of ``size``
    that the journal does not hold whole (the search stopped while journalling it), else
    None. A batch's size is that recorded by its last candidate."""
    if not candidates:
        return None
    start, size = candidates[-1].batch
    count = sum(1 for c in candidates if c.batch[0] == start)
    return (count, size) if count < size else None
