"""Search spaces: named dimensions (real, integer, categorical) and their unit-cube encoding.

Every dimension maps to columns in ``[0, 1]``: a real or integer dimension to one column
(in log space when ``log=True``), a categorical one to one one-hot column per choice. The
surrogate and the acquisition see only encoded rows; the loop hands out decoded parameters
(Python ``float``, Python ``int``, the choice objects themselves).
"""
import math
import numbers

import numpy as np

from ..exceptions import InvalidParameterError

__all__ = ["Real", "Integer", "Categorical", "SearchSpace"]

_JSON_TYPES = (str, int, float, bool, type(None))


def _is_real_number(value):
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def _check_bounds(kind, low, high, log, integer):
    for name, bound in (("low", low), ("high", high)):
        ok = (isinstance(bound, numbers.Integral) if integer else _is_real_number(bound))
        if isinstance(bound, (bool, np.bool_)) or not ok:
            want = "an integer" if integer else "a real number"
            raise InvalidParameterError(
                f"{kind}: {name} must be {want}, got {bound!r} of type {type(bound).__name__}.")
        if not math.isfinite(bound):
            raise InvalidParameterError(f"{kind}: {name} must be finite, got {bound!r}.")
    if not low < high:
        raise InvalidParameterError(
            f"{kind}: low must be smaller than high, got low={low!r}, high={high!r}. "
            f"Swap them, or fix the parameter instead of searching over it.")
    if not isinstance(log, (bool, np.bool_)):
        raise InvalidParameterError(f"{kind}: log must be True or False, got {log!r}.")
    if log and low <= 0:
        raise InvalidParameterError(
            f"{kind}: log=True needs positive bounds, got low={low!r}. "
            f"Use log=False or shift the range above 0.")


class Real:
    """A real parameter in ``[low, high]``, searched on a log scale when ``log=True``.

    Parameters
    ----------
    low, high : float
        Finite bounds, ``low < high``; both can be suggested.
    log : bool, default=False
        Search ``log(value)`` uniformly (for learning rates, weight decays); needs
        ``low > 0``.

    Raises
    ------
    InvalidParameterError
        If a bound is not a finite real number, ``low >= high``, ``log`` is not a bool, or
        ``log=True`` with ``low <= 0``.

    Examples
    --------
    >>> Real(1e-4, 1e-1, log=True)
    Real(0.0001, 0.1, log=True)
    >>> Real(1e-4, 1e-1, log=True).decode([0.5])  # the geometric midpoint
    0.0031622...
    """

    n_columns = 1

    def __init__(self, low: float, high: float, log: bool = False):
        _check_bounds("Real", low, high, log, integer=False)
        self.low, self.high, self.log = float(low), float(high), bool(log)

    def __repr__(self):
        return f"{type(self).__name__}({self.low!r}, {self.high!r}, log={self.log})"

    def __eq__(self, other):
        return type(self) is type(other) and self.to_dict() == other.to_dict()

    def _warp(self, value):
        return np.log(value) if self.log else np.asarray(value, dtype=float)

    def _unwarp(self, value):
        return np.exp(value) if self.log else value

    def encode(self, value):
        """Return the unit-cube column(s) of ``value`` as an array of shape (n_columns,)."""
        lo, hi = self._warp(self.low), self._warp(self.high)
        return np.array([(self._warp(value) - lo) / (hi - lo)], dtype=float)

    def decode(self, columns):
        """Return the parameter value of the unit-cube column(s) ``columns``."""
        lo, hi = self._warp(self.low), self._warp(self.high)
        u = float(np.clip(columns[0], 0.0, 1.0))
        return float(np.clip(self._unwarp(lo + u * (hi - lo)), self.low, self.high))

    def from_uniform(self, u):
        """Map ``u`` in [0, 1) to a value so that uniform ``u`` covers the range evenly."""
        return self.decode([u])

    def check(self, value, name):
        """Raise unless ``value`` is a valid value of this dimension; return it normalised."""
        if not _is_real_number(value):
            raise InvalidParameterError(
                f"Parameter {name!r} must be a real number, got {value!r} of type "
                f"{type(value).__name__}.")
        if not (self.low <= value <= self.high):
            raise InvalidParameterError(
                f"Parameter {name!r} = {value!r} is outside its range "
                f"[{self.low!r}, {self.high!r}].")
        return float(value)

    def to_dict(self):
        return {"type": "real", "low": self.low, "high": self.high, "log": self.log}


class Integer(Real):
    """An integer parameter in ``[low, high]`` (both included), optionally on a log scale.

    The surrogate sees it as a real column; suggestions are only ever made (and the
    acquisition only ever evaluated) at integer points.

    Parameters
    ----------
    low, high : int
        Bounds, ``low < high``, both included.
    log : bool, default=False
        Search ``log(value)`` uniformly (for widths, batch sizes); needs ``low > 0``.

    Raises
    ------
    InvalidParameterError
        If a bound is not an integer, ``low >= high``, ``log`` is not a bool, or
        ``log=True`` with ``low <= 0``.

    Examples
    --------
    >>> Integer(1, 256, log=True).decode([1.0])
    256
    >>> Integer(1, 256, log=True).decode([0.5])
    16
    """

    def __init__(self, low: int, high: int, log: bool = False):
        _check_bounds("Integer", low, high, log, integer=True)
        self.low, self.high, self.log = int(low), int(high), bool(log)

    def decode(self, columns):
        lo, hi = self._warp(float(self.low)), self._warp(float(self.high))
        u = float(np.clip(columns[0], 0.0, 1.0))
        value = int(np.rint(self._unwarp(lo + u * (hi - lo))))
        return min(max(value, self.low), self.high)

    def from_uniform(self, u):
        if self.log:  # even in log space; rounding makes the two end bins half as wide
            return self.decode([u])
        n = self.high - self.low + 1
        return min(self.low + int(math.floor(u * n)), self.high)

    def check(self, value, name):
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
            raise InvalidParameterError(
                f"Parameter {name!r} must be an integer, got {value!r} of type "
                f"{type(value).__name__}.")
        if not (self.low <= value <= self.high):
            raise InvalidParameterError(
                f"Parameter {name!r} = {value!r} is outside its range "
                f"[{self.low!r}, {self.high!r}].")
        return int(value)

    def to_dict(self):
        return {"type": "integer", "low": self.low, "high": self.high, "log": self.log}


class Categorical:
    """A choice among distinct objects, encoded one-hot.

    Parameters
    ----------
    choices : sequence
        The distinct values to choose from (compared with ``==``). Keep them to ``str``,
        ``int``, ``float``, ``bool`` or None when the study has a ``state_path``: the
        journal stores them as JSON.

    Raises
    ------
    InvalidParameterError
        If ``choices`` is not a sequence, is empty, or holds a value twice.

    Examples
    --------
    >>> Categorical(['adam', 'sgd']).encode('sgd')
    array([0., 1.])
    >>> Categorical(['adam', 'sgd']).decode([0.9, 0.1])
    'adam'
    """

    def __init__(self, choices):
        try:
            choices = tuple(choices)
        except TypeError:
            raise InvalidParameterError(
                f"Categorical: choices must be a sequence, got {choices!r}.") from None
        if len(choices) == 0:
            raise InvalidParameterError(
                "Categorical: choices is empty. Give at least one choice.")
        for i, a in enumerate(choices):
            for b in choices[:i]:
                if a == b:
                    raise InvalidParameterError(
                        f"Categorical: choices must be distinct, got {a!r} twice in "
                        f"{list(choices)!r}. Remove the duplicate.")
        self.choices = choices
        self.n_columns = len(choices)

    def __repr__(self):
        return f"Categorical({list(self.choices)!r})"

    def __eq__(self, other):
        return type(self) is type(other) and self.choices == other.choices

    def index(self, value):
        for i, choice in enumerate(self.choices):
            if type(choice) is type(value) and choice == value:
                return i
        for i, choice in enumerate(self.choices):
            if choice == value:
                return i
        return None

    def encode(self, value):
        columns = np.zeros(self.n_columns)
        columns[self.index(value)] = 1.0
        return columns

    def decode(self, columns):
        return self.choices[int(np.argmax(columns))]

    def from_uniform(self, u):
        return self.choices[min(int(math.floor(u * self.n_columns)), self.n_columns - 1)]

    def check(self, value, name):
        i = self.index(value)
        if i is None:
            raise InvalidParameterError(
                f"Parameter {name!r} = {value!r} is not one of its choices "
                f"{list(self.choices)!r}.")
        return self.choices[i]

    def to_dict(self):
        bad = [c for c in self.choices if not isinstance(c, _JSON_TYPES)]
        if bad:
            raise InvalidParameterError(
                f"Categorical choice {bad[0]!r} of type {type(bad[0]).__name__} cannot be "
                f"saved as JSON; use str, int, float, bool or None choices with state_path.")
        return {"type": "categorical", "choices": list(self.choices)}


_DIMENSION_TYPES = (Real, Categorical)


def dimension_from_dict(data):
    """Rebuild a dimension from :meth:`to_dict` output."""
    kind = data.get("type")
    if kind == "real":
        return Real(data["low"], data["high"], log=data["log"])
    if kind == "integer":
        return Integer(data["low"], data["high"], log=data["log"])
    if kind == "categorical":
        return Categorical(data["choices"])
    raise InvalidParameterError(f"Unknown dimension type {kind!r} in a saved search space; "
                                f"expected 'real', 'integer' or 'categorical'.")


class SearchSpace:
    """Named dimensions, in the order given.

    Parameters
    ----------
    dimensions : dict of str to Real, Integer or Categorical
        One entry per parameter.

    Examples
    --------
    >>> space = SearchSpace({'lr': Real(1e-4, 1.0, log=True), 'layers': Integer(1, 4)})
    >>> space.names
    ['lr', 'layers']
    >>> space.n_columns
    2
    """

    def __init__(self, dimensions):
        if not isinstance(dimensions, dict):
            raise InvalidParameterError(
                f"SearchSpace needs a dict of name -> dimension, got "
                f"{type(dimensions).__name__}.")
        if not dimensions:
            raise InvalidParameterError(
                "SearchSpace is empty. Give at least one dimension, e.g. "
                "SearchSpace({'lr': Real(1e-4, 1e-1, log=True)}).")
        for name, dim in dimensions.items():
            if not isinstance(name, str) or not name:
                raise InvalidParameterError(
                    f"SearchSpace: parameter names must be non-empty strings, got {name!r} of "
                    f"type {type(name).__name__}.")
            if not isinstance(dim, _DIMENSION_TYPES):
                raise InvalidParameterError(
                    f"SearchSpace: parameter {name!r} must be a Real, Integer or Categorical, "
                    f"got {dim!r}.")
        self.dimensions = dict(dimensions)
        self.names = list(self.dimensions)
        self.n_dims = len(self.names)
        self.slices = {}
        start = 0
        for name, dim in self.dimensions.items():
            self.slices[name] = slice(start, start + dim.n_columns)
            start += dim.n_columns
        self.n_columns = start
        # Columns the continuous optimiser may move: those of Real (not Integer) dimensions.
        self.real_columns = np.array(
            [self.slices[n].start for n, d in self.dimensions.items() if type(d) is Real],
            dtype=int)
        # The one-hot columns of the Categorical dimensions (the surrogate's mixed kernel).
        self.categorical_columns = np.array(
            [i for n, d in self.dimensions.items() if isinstance(d, Categorical)
             for i in range(self.slices[n].start, self.slices[n].stop)], dtype=int)

    def __repr__(self):
        return f"SearchSpace({self.dimensions!r})"

    def __eq__(self, other):
        return isinstance(other, SearchSpace) and self.dimensions == other.dimensions

    def check_params(self, params):
        """Raise unless ``params`` is a dict with a valid value for every name; return a
        normalised copy (Python numbers, the choice objects themselves)."""
        if not isinstance(params, dict):
            raise InvalidParameterError(
                f"params must be a dict of parameter name -> value, got "
                f"{type(params).__name__}.")
        missing = [n for n in self.names if n not in params]
        extra = [n for n in params if n not in self.dimensions]
        if missing or extra:
            raise InvalidParameterError(
                f"params do not match the search space: missing {missing}, unknown {extra}. "
                f"Expected exactly {self.names}.")
        return {n: self.dimensions[n].check(params[n], n) for n in self.names}

    def encode(self, params):
        """Return the unit-cube row of shape (n_columns,) of a params dict."""
        return np.concatenate([self.dimensions[n].encode(params[n]) for n in self.names])

    def decode(self, row):
        """Return the params dict of a unit-cube row (integers rounded, one-hot argmax)."""
        return {n: d.decode(row[self.slices[n]]) for n, d in self.dimensions.items()}

    def from_uniform(self, u):
        """Map a point of ``[0, 1)^n_dims`` (one number per dimension) to a params dict."""
        return {n: d.from_uniform(float(u[i])) for i, (n, d) in
                enumerate(self.dimensions.items())}

    def snap(self, X):
        """Round encoded rows to valid points: integers to the lattice, one-hot to argmax."""
        X = np.atleast_2d(np.asarray(X, dtype=float))
        return np.array([self.encode(self.decode(row)) for row in X])

    def to_dict(self):
        return {"dimensions": {n: d.to_dict() for n, d in self.dimensions.items()}}

    @classmethod
    def from_dict(cls, data):
        return cls({n: dimension_from_dict(d) for n, d in data["dimensions"].items()})
