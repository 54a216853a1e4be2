"""Check helpers shared by the whole package: close-match suggestions, short lists, finite
checks and integer/positive parameter checks.

Every helper raises an error whose message says what was wrong, where, and what to do.
"""
import difflib
import math
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
    return Options(*choices).check(value, name)  # the constraint type, defined below


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


# ---------------------------------------------------------------------- numbers
def is_number(value):
    """True for a finite real number that is not a bool (``True`` is an int in Python).

    Examples
    --------
    >>> is_number(0.5), is_number(True), is_number(float('nan')), is_number('1')
    (True, False, False, False)
    """
    return (isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))
            and math.isfinite(value))


def is_integer(value):
    """True for an integer that is not a bool.

    Examples
    --------
    >>> is_integer(3), is_integer(np.int64(3)), is_integer(3.0), is_integer(False)
    (True, True, False, False)
    """
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


# ---------------------------------------------------------------------- constraint tables
# An estimator declares each constructor parameter's allowed values once, in a class
# attribute ``_parameter_constraints = {name: Constraint}`` (scikit-learn's name for the same
# idea; its own validator is private API, so the constraint types are ours). The estimator
# checks itself with :func:`check_params`; the job schema, ``--set``, the tuner's search
# spaces and the docs read the same table (repurpose.jobs).
class Problem(ValueError):
    """A value a :class:`Constraint` refuses; ``hint`` is an optional 'Did you mean' sentence."""

    def __init__(self, hint=""):
        super().__init__(hint)
        self.hint = hint


class Constraint:
    """The allowed values of one parameter.

    ``what`` says them in words (``'a number in (0, 1000]'``); :meth:`normalise` returns the
    value in its canonical type (float, int, list) or raises :class:`Problem`.
    """

    what = "a valid value"

    def normalise(self, value):
        raise NotImplementedError

    def message(self, name, value, problem):
        """``'<name> must be <what>, got <value>.'`` plus the hint."""
        hint = f" {problem.hint}" if problem.hint else ""
        return f"{name} must be {self.what}, got {value!r}.{hint}"

    def check(self, value, name):
        """Return the normalised ``value``, or raise InvalidParameterError naming ``name``."""
        try:
            return self.normalise(value)
        except Problem as problem:
            raise InvalidParameterError(self.message(name, value, problem)) from None

    def __repr__(self):
        return f"{type(self).__name__}({self.what})"


class Real(Constraint):
    """A finite number in an interval (closed ends unless ``low_open``/``high_open``)."""

    def __init__(self, low=None, high=None, low_open=False, high_open=False, what=None):
        self.low, self.high, self.low_open, self.high_open = low, high, low_open, high_open
        if what is None:
            if high is None and low is not None:
                what = f"a number {'>' if low_open else '>='} {low:g}"
                what = "a positive number" if (low == 0 and low_open) else what
            else:
                what = (f"a number in {'(' if low_open else '['}{low:g}, {high:g}"
                        f"{')' if high_open else ']'}")
        self.what = what

    def contains(self, value):
        if not is_number(value):
            return False
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            return False
        if self.high is not None and (value > self.high
                                      or (self.high_open and value == self.high)):
            return False
        return True

    def normalise(self, value):
        if not self.contains(value):
            raise Problem()
        return float(value)


class Integer(Constraint):
    """An integer (not a bool) from ``minimum`` to ``maximum`` (None: no upper bound)."""

    def __init__(self, minimum=0, maximum=None):
        self.low, self.high = minimum, maximum
        self.what = (f"an integer >= {minimum}" if maximum is None
                     else f"an integer from {minimum} to {maximum}")

    def contains(self, value):
        return is_integer(value) and value >= self.low and (self.high is None
                                                            or value <= self.high)

    def normalise(self, value):
        if not self.contains(value):
            raise Problem()
        return int(value)


class Boolean(Constraint):
    """True or False (numpy bools too)."""

    what = "True or False"

    def normalise(self, value):
        if not isinstance(value, (bool, np.bool_)):
            raise Problem()
        return bool(value)


class Options(Constraint):
    """One of a fixed set of values (strings get a 'Did you mean' hint)."""

    def __init__(self, *choices):
        self.choices = tuple(choices)
        self.what = f"one of {brief_list(self.choices, 12)}"

    def normalise(self, value):
        # ``is`` first: True == 1 and False == 0 must not pass for each other.
        if any(value is c for c in self.choices) or (
                not isinstance(value, (bool, np.bool_)) and value in
                [c for c in self.choices if not isinstance(c, bool)]):
            return value
        strings = [c for c in self.choices if isinstance(c, str)]
        raise Problem(suggest(value, strings) if isinstance(value, str) and strings else "")


class Text(Constraint):
    """A non-empty string (``what`` can say what kind, e.g. ``'a layer name'``)."""

    def __init__(self, what="a non-empty string"):
        self.what = what

    def normalise(self, value):
        if not isinstance(value, str) or not value.strip():
            raise Problem()
        return value


class Nullable(Constraint):
    """A value ``inner`` allows, or None."""

    def __init__(self, inner):
        self.inner = inner
        self.what = f"{inner.what} or None"

    def normalise(self, value):
        return None if value is None else self.inner.normalise(value)


class ListOf(Constraint):
    """A sequence (list, tuple, range, array, ...) of values ``inner`` allows; a single str
    (or None) stands for a sequence of one (or none) when ``single`` is True. Normalised to
    a tuple (immutable, as constructor defaults are)."""

    def __init__(self, inner, what=None, single=False):
        self.inner, self.single = inner, single
        self.what = what or f"a sequence of {inner.what.replace('a ', '', 1)}s"

    def normalise(self, value):
        if self.single and (isinstance(value, str) or value is None):
            value = () if value is None else (value,)
        if isinstance(value, (str, bytes, dict)) or not hasattr(value, "__iter__"):
            raise Problem()
        out = []
        for i, item in enumerate(value):
            try:
                out.append(self.inner.normalise(item))
            except Problem:
                raise Problem(f"Item {i} ({item!r}) is not {self.inner.what}.") from None
        return tuple(out)


class AnyOf(Constraint):
    """A value one of ``constraints`` allows (the first that does normalises it)."""

    def __init__(self, *constraints, what=None):
        self.constraints = constraints
        self.what = what or " or ".join(c.what for c in constraints)

    def normalise(self, value):
        hints = []
        for constraint in self.constraints:
            try:
                return constraint.normalise(value)
            except Problem as problem:
                hints.append(problem.hint)
        raise Problem(next((h for h in hints if h), ""))


class Custom(Constraint):
    """A check the types above cannot say: ``function(value)`` returns the normalised value
    or raises :class:`Problem` (or ValueError, whose text becomes the hint)."""

    def __init__(self, function, what):
        self.function, self.what = function, what

    def normalise(self, value):
        try:
            return self.function(value)
        except Problem:
            raise
        except ValueError as err:
            raise Problem(str(err)) from None


def check_params(params, table):
    """Check every entry of ``params`` that ``table`` constrains; return them normalised.

    Parameters
    ----------
    params : dict of str -> object
        Parameter values, e.g. ``estimator.get_params(deep=False)``.
    table : dict of str -> Constraint
        The estimator's ``_parameter_constraints``.

    Raises
    ------
    InvalidParameterError
        For the first value its constraint refuses, naming the parameter.

    Examples
    --------
    >>> table = {'C': Real(0, None, low_open=True), 'kernel': Options('rbf', 'linear')}
    >>> check_params({'C': 2, 'kernel': 'rbf'}, table)
    {'C': 2.0, 'kernel': 'rbf'}
    >>> check_params({'C': 1.0, 'kernel': 'rfb'}, table)
    Traceback (most recent call last):
    ...
    repurpose.exceptions.InvalidParameterError: kernel must be one of 'rbf', 'linear', got 'rfb'. Did you mean 'rbf'?
    """
    return {name: table[name].check(value, name) if name in table else value
            for name, value in params.items()}


def store_params(estimator, values):
    """Set every constructor parameter of ``estimator`` from ``values`` (``locals()`` of its
    ``__init__``), unchanged, as scikit-learn's estimator contract asks; checks happen in
    ``fit``. One line in ``__init__`` instead of one assignment per parameter, so a new
    parameter is its signature entry, its docstring line and its constraint.

    Examples
    --------
    >>> from sklearn.base import BaseEstimator
    >>> class Model(BaseEstimator):
    ...     def __init__(self, alpha=1.0, beta=None):
    ...         store_params(self, locals())
    >>> Model(alpha=2.0).get_params()
    {'alpha': 2.0, 'beta': None}
    """
    for name in type(estimator)._get_param_names():
        setattr(estimator, name, values[name])
