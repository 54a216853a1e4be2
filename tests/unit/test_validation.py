import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from repurpose._validation import (brief_list, check_choice, check_finite_batch,
                                   check_layer_names, check_positive_int, suggest)
from repurpose.exceptions import DataError, InvalidParameterError, UnknownLayerError


def test_unknown_layer_lists_close_matches():
    names = ["conv1", "relu4", "relu5_1", "pool5", "fc6"]
    with pytest.raises(UnknownLayerError, match=r"Unknown layer 'relu5'\. Did you mean "
                                                r"'relu5_1' or 'relu4'\?"):
        check_layer_names(["relu5"], names, "SourceModel.layer_names")
    with pytest.raises(KeyError):  # also catchable as a KeyError
        check_layer_names(["nope"], names, "x")


def test_known_layers_ok():
    check_layer_names(["fc6", "conv1"], ["conv1", "fc6"], "x")


@given(st.lists(st.text(min_size=1, max_size=8), min_size=0, max_size=40),
       st.integers(min_value=2, max_value=12))
def test_brief_list_is_short_and_complete_when_short(items, limit):
    text = brief_list(items, limit)
    if len(items) <= limit:
        for item in items:
            assert repr(item) in text
    else:
        assert f"({len(items)} in all)" in text and "..." in text


@given(st.integers(min_value=-5, max_value=5))
def test_check_positive_int(value):
    if value >= 1:
        assert check_positive_int(value, "n") == value
    else:
        with pytest.raises(InvalidParameterError, match="n must be an integer >= 1"):
            check_positive_int(value, "n")


@pytest.mark.parametrize("value", [1.0, "3", True, None])
def test_check_positive_int_type_error(value):
    with pytest.raises(TypeError, match="must be an integer"):
        check_positive_int(value, "batch_size")


def test_check_choice_suggests():
    with pytest.raises(InvalidParameterError, match="Did you mean 'avg'"):
        check_choice("avgs", "pool", (None, "avg", "max"))


def test_suggest_substring_fallback():
    assert "conv0_fwd" in suggest("conv0", ["resnet_conv0_fwd_output_long", "conv0_fwd"])


@given(st.integers(0, 9), st.sampled_from([np.nan, np.inf, -np.inf]))
def test_finite_check_names_first_bad_sample(row, value):
    batch = np.zeros((10, 3), dtype=np.float32)
    batch[row, 1] = value
    with pytest.raises(DataError, match=rf"first in sample {row} of data\[0:10\]"):
        check_finite_batch(batch, "data[0:10]")
    check_finite_batch(np.zeros((10, 3), dtype=np.float32), "ok")
