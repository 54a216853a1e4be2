"""Search-space validation (ok/error pairs) and encoding round trips."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from repurpose.bo import Categorical, Integer, Real, SearchSpace
from repurpose.exceptions import InvalidParameterError


def test_real_ok():
    dim = Real(1e-3, 1.0, log=True)
    assert (dim.low, dim.high, dim.log) == (1e-3, 1.0, True)


@pytest.mark.parametrize("low, high", [(1.0, 1.0), (2.0, 1.0)])
def test_real_low_not_below_high_error(low, high):
    with pytest.raises(InvalidParameterError, match="low must be smaller than high"):
        Real(low, high)


def test_real_log_nonpositive_error():
    with pytest.raises(InvalidParameterError, match="log=True needs positive bounds"):
        Real(0.0, 1.0, log=True)


def test_real_non_number_error():
    with pytest.raises(InvalidParameterError, match="low must be a real number"):
        Real("0", 1.0)


def test_integer_ok():
    assert Integer(1, 8, log=True).decode([1.0]) == 8


def test_integer_low_not_below_high_error():
    with pytest.raises(InvalidParameterError, match="low must be smaller than high"):
        Integer(3, 3)


def test_integer_float_bound_error():
    with pytest.raises(InvalidParameterError, match="must be an integer"):
        Integer(0.5, 3)


def test_integer_log_nonpositive_error():
    with pytest.raises(InvalidParameterError, match="positive bounds"):
        Integer(0, 10, log=True)


def test_categorical_ok():
    assert Categorical(["a", "b"]).choices == ("a", "b")


def test_categorical_empty_error():
    with pytest.raises(InvalidParameterError, match="choices is empty"):
        Categorical([])


def test_categorical_duplicates_error():
    with pytest.raises(InvalidParameterError, match="distinct.*'a' twice"):
        Categorical(["a", "b", "a"])


def test_space_ok():
    space = SearchSpace({"x": Real(0.0, 1.0), "c": Categorical([1, 2, 3])})
    assert space.names == ["x", "c"] and space.n_columns == 4


def test_space_empty_error():
    with pytest.raises(InvalidParameterError, match="SearchSpace is empty"):
        SearchSpace({})


def test_space_non_string_name_error():
    with pytest.raises(InvalidParameterError, match="names must be non-empty strings.*int"):
        SearchSpace({1: Real(0.0, 1.0)})


def test_space_non_dimension_error():
    with pytest.raises(InvalidParameterError, match="must be a Real, Integer or Categorical"):
        SearchSpace({"x": (0, 1)})


def test_check_params_ok():
    space = SearchSpace({"n": Integer(1, 5), "x": Real(0.0, 1.0)})
    assert space.check_params({"n": np.int64(2), "x": 1}) == {"n": 2, "x": 1.0}


@pytest.mark.parametrize("params, words", [
    ({"n": 2}, "missing \\['x'\\]"),
    ({"n": 2, "x": 0.5, "z": 1}, "unknown \\['z'\\]"),
    ({"n": 2.0, "x": 0.5}, "'n' must be an integer"),
    ({"n": 9, "x": 0.5}, "outside its range"),
    ({"n": 2, "x": "0.5"}, "'x' must be a real number"),
    ([("n", 2)], "must be a dict"),
])
def test_check_params_error(params, words):
    space = SearchSpace({"n": Integer(1, 5), "x": Real(0.0, 1.0)})
    with pytest.raises(InvalidParameterError, match=words):
        space.check_params(params)


def test_space_dict_round_trip():
    space = SearchSpace({"x": Real(1e-3, 1.0, log=True), "n": Integer(1, 5),
                         "c": Categorical(["a", None, 3])})
    assert SearchSpace.from_dict(space.to_dict()) == space


@settings(max_examples=50, deadline=None)
@given(u=st.lists(st.floats(0.0, 1.0, exclude_max=True), min_size=3, max_size=3))
def test_encode_decode_round_trip(u):
    space = SearchSpace({"x": Real(1e-3, 1.0, log=True), "n": Integer(2, 300, log=True),
                         "c": Categorical(["a", "b", "c"])})
    params = space.from_uniform(u)
    row = space.encode(params)
    assert np.all((row >= 0) & (row <= 1))
    back = space.decode(row)
    assert back["n"] == params["n"] and back["c"] == params["c"]
    assert back["x"] == pytest.approx(params["x"], rel=1e-12)
