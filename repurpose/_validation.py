"""Check helpers shared by the whole package: close-match suggestions, short lists, finite
checks and integer/positive parameter checks.

Every helper raises an error whose message says what was wrong, where, and what to do.
"""
import difflib
import numbers

import numpy as np

from .exceptions import DataError, InvalidParameterError, UnknownLayerError


def brief_list(items, limit=6):
    """Format ``items`` as a short comma-separated list, eliding the middle of long ones.

    Parameters
    ----------
    items : iterable of object
        Items to show; each is formatted with ``repr``.
    limit : int, default=6
        Lists longer than this show their first and last ``limit // 2`` items.

    Returns
    -------
    str
        For example ``"'a', 'b', ..., 'y', 'z' (26 in all)"``.

    Examples
    --------
    >>> brief_list(['a', 'b'])
    "'a', 'b'"
    >>> brief_list(range(10), limit=4)
    '0, 1, ..., 8, 9 (10 in all)'
    """
    items = list(items)
    if len(items) <= limit:
        return ", ".join(repr(i) for i in items)
    half = max(limit // 2, 1)
    head = ", ".join(repr(i) for i in items[:half])
    tail = ", ".join(repr(i) for i in items[-half:])
    return f"{head}, ..., {tail} ({len(items)} in all)"


def suggest(name, choices, n=3):
    """Return a 'Did you mean ...?' sentence for ``name`` among ``choices`` ('' if none).

    Examples
    --------
    >>> suggest('relu5', ['relu4', 'conv1', 'relu5_1'])
    "Did you mean 'relu5_1' or 'relu4'?"
    """
    matches = difflib.get_close_matches(str(name), [str(c) for c in choices], n=n, cutoff=0.5)
    if not matches:
        # Substring matches catch prefixes that difflib scores low ('conv' -> 'conv0_fwd').
        matches = [c for c in map(str, choices) if str(name) in c][:n]
    if not matches:
        return ""
    quoted = [repr(m) for m in matches]
    if len(quoted) == 1:
        return f"Did you mean {quoted[0]}?"
    return f"Did you mean {', '.join(quoted[:-1])} or {quoted[-1]}?"


def check_layer_names(names, available, where):
    """Check that every name in ``names`` is in ``available``.

    Parameters
    ----------
    names : sequence of str
        Requested layer names.
    available : sequence of str
        The names the model has, in model order.
    where : str
        Says where ``available`` comes from, e.g. ``'SourceModel.layer_names'``.

    Raises
    ------
    UnknownLayerError
        For the first unknown name, with close matches and the count of known names.
    """
    known = set(available)
    for name in names:
        if name not in known:
            hint = suggest(name, available)
            raise UnknownLayerError(
                f"Unknown layer {name!r}. {hint + ' ' if hint else ''}"
                f"({where}: {len(available)} layers, e.g. {brief_list(available, 6)})"
            )


def check_positive_int(value, name, minimum=1):
    """Return ``value`` as an int if it is an integer >= ``minimum``, else raise.

    Examples
    --------
    >>> check_positive_int(32, 'batch_size')
    32
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise InvalidParameterError(
            f"{name} must be an integer >= {minimum}, got {value!r} of type "
            f"{type(value).__name__}."
        )
    if value < minimum:
        raise InvalidParameterError(f"{name} must be an integer >= {minimum}, got {value}.")
    return int(value)


def check_choice(value, name, choices):
    """Raise unless ``value`` is one of ``choices``; return it.

    Examples
    --------
    >>> check_choice('avg', 'pool', (None, 'avg', 'max'))
    'avg'
    """
    if value not in choices:
        hint = suggest(value, [c for c in choices if isinstance(c, str)]) if isinstance(
            value, str) else ""
        raise InvalidParameterError(
            f"{name} must be one of {brief_list(choices, 12)}, got {value!r}."
            + (f" {hint}" if hint else "")
        )
    return value


def check_finite_batch(batch, where):
    """Raise :class:`DataError` if ``batch`` holds NaN or inf, naming the first bad sample.

    Parameters
    ----------
    batch : ndarray
        A numeric array whose first axis indexes samples.
    where : str
        Describes the batch, e.g. ``'data[64:96]'``.
    """
    if batch.dtype.kind not in "fc":
        return
    finite = np.isfinite(batch)
    if finite.all():
        return
    bad_rows = np.flatnonzero(~finite.reshape(len(batch), -1).all(axis=1))
    kind = "NaN" if np.isnan(batch).any() else "inf"
    raise DataError(
        f"{where} contains {kind} values in {len(bad_rows)} sample(s), first in sample "
        f"{int(bad_rows[0])} of {where}. Remove or impute non-finite inputs before "
        f"extracting features."
    )
