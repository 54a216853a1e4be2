"""A head's hyper-parameters have one home, the head: every feature repurposer takes them
with the head's defaults and checks them with the head's own constraint objects."""
import inspect

import numpy as np
import pytest
from sklearn.datasets import make_blobs

from repurpose import (BnnRepurposer, GpRepurposer, LogisticRepurposer, SourceModel,
                       SvmRepurposer)
from repurpose.exceptions import InvalidParameterError
from repurpose.heads import BnnHead, GpHead, LogisticHead, SvmHead
from repurpose.repurposers._base import EXTRACTION_CONSTRAINTS, EXTRACTION_PARAMS

REPURPOSERS = [LogisticRepurposer, SvmRepurposer, GpRepurposer, BnnRepurposer]
HEADS = [LogisticHead, SvmHead, GpHead, BnnHead]


def _signature(cls):
    return {name: p.default for name, p in inspect.signature(cls.__init__).parameters.items()
            if name != "self"}


@pytest.fixture(scope="module")
def source():
    return SourceModel.from_zoo("digits_cnn")


@pytest.fixture(scope="module")
def blobs():
    return make_blobs(60, n_features=4, centers=3, random_state=0)


@pytest.mark.parametrize("cls", REPURPOSERS, ids=lambda c: c.__name__)
def test_signature_is_extraction_params_and_the_heads(cls):
    head = cls._head_class
    renamed = [cls._head_renames.get(name, name) for name in _signature(head)]
    expected = list(EXTRACTION_PARAMS) + [n for n in renamed if n not in EXTRACTION_PARAMS]
    assert list(_signature(cls)) == expected
    # Only a head parameter whose name extraction takes is renamed, and the renames are
    # documented in the class's docstring.
    for name, new in cls._head_renames.items():
        assert name in EXTRACTION_PARAMS and new not in EXTRACTION_PARAMS
        assert f"``{new}`` is its ``{name}``" in cls.__doc__


@pytest.mark.parametrize("cls", REPURPOSERS, ids=lambda c: c.__name__)
def test_defaults_are_the_heads(cls):
    own, head = _signature(cls), _signature(cls._head_class)
    for name, default in head.items():
        assert own[cls._head_renames.get(name, name)] == default, name


@pytest.mark.parametrize("cls", REPURPOSERS, ids=lambda c: c.__name__)
def test_constraints_are_the_heads_own_objects(cls):
    table, head_table = cls._parameter_constraints, cls._head_class._parameter_constraints
    for name, constraint in head_table.items():
        assert table[cls._head_renames.get(name, name)] is constraint, name
    for name, constraint in EXTRACTION_CONSTRAINTS.items():
        assert table[name] is constraint or cls._head_renames.get(name, name) != name, name
    assert set(table) <= set(_signature(cls))


@pytest.mark.parametrize("head", HEADS, ids=lambda c: c.__name__)
def test_head_table_names_constructor_params(head):
    assert set(head._parameter_constraints) <= set(_signature(head))


def test_head_params_under_the_heads_names(source):
    model = BnnRepurposer(source, batch_size=7, train_batch_size=16, ctx="cpu")
    params = model._head_params()
    assert params["batch_size"] == 16 and params["ctx"] == "cpu"
    assert "train_batch_size" not in params and set(params) == set(_signature(BnnHead))


@pytest.mark.parametrize("cls, params, words", [
    (LogisticRepurposer, {"C": 0}, "C must be a positive number, got 0."),
    (LogisticRepurposer, {"class_weight": "balnced"},
     "class_weight must be None, 'balanced' or a dict of class -> weight, got 'balnced'. "
     "Did you mean 'balanced'?"),
    (SvmRepurposer, {"gamma": -1}, "gamma must be 'scale' or a positive number, got -1."),
    (GpRepurposer, {"alpha_eps": "atuo"}, "alpha_eps must be 'auto' or a positive number"),
    (BnnRepurposer, {"train_batch_size": 0}, "train_batch_size must be an integer >= 1, got 0."),
    (BnnRepurposer, {"learning_rate": 0}, "learning_rate must be a positive number, got 0. "
                                          "Try 1e-2 with adam"),
    (BnnRepurposer, {"batch_size": 0}, "batch_size must be an integer >= 1, got 0."),
], ids=lambda p: "-".join(p) if isinstance(p, dict) else getattr(p, "__name__", ""))
def test_head_params_checked_by_the_heads_table_before_extraction(cls, params, words, source,
                                                                   monkeypatch):
    import repurpose.features._transformer as transformer

    monkeypatch.setattr(transformer, "extract_features", lambda *a, **k: pytest.fail("extracted"))
    X = np.zeros((4,) + source.input_shape, dtype=np.float32)
    with pytest.raises(InvalidParameterError) as info:
        cls(source, cache_features=False, **params).fit(X, [0, 0, 1, 1])
    assert str(info.value).startswith(words)


# ---------------------------------------------------------------------- the heads' tables
@pytest.mark.parametrize("value", [None, "balanced", {0: 1.0, 1: 2.0, 2: 1.0}])
def test_logistic_class_weight_ok(blobs, value):
    LogisticHead(class_weight=value).fit(*blobs)


@pytest.mark.parametrize("value", ["balnced", ["balanced"], 1.0, True])
def test_logistic_class_weight_error(blobs, value):
    with pytest.raises(InvalidParameterError, match="class_weight must be None, 'balanced' or a "
                                                    "dict of class -> weight"):
        LogisticHead(class_weight=value).fit(*blobs)


@pytest.mark.parametrize("head, params, words", [
    (LogisticHead, {"C": 0}, "C must be a positive number, got 0."),
    (LogisticHead, {"C": float("inf")}, "C must be a positive number, got inf."),
    (LogisticHead, {"standardize": "yes"}, "standardize must be True or False, got 'yes'."),
    (LogisticHead, {"max_iter": 0}, "max_iter must be an integer >= 1, got 0."),
    (SvmHead, {"C": True}, "C must be a positive number, got True."),
    (SvmHead, {"kernel": "poly"}, "kernel must be one of 'rbf', 'linear', got 'poly'."),
    (SvmHead, {"gamma": "auto"}, "gamma must be 'scale' or a positive number, got 'auto'."),
    (SvmHead, {"n_folds": 1}, "n_folds must be an integer >= 2, got 1."),
    (SvmHead, {"n_folds": 2.0}, "n_folds must be an integer >= 2, got 2.0."),
])
def test_head_param_error(blobs, head, params, words):
    with pytest.raises(InvalidParameterError) as info:
        head(**params).fit(*blobs)
    assert str(info.value) == words


@pytest.mark.parametrize("head, params", [
    (LogisticHead, {"C": 2}), (LogisticHead, {"standardize": np.bool_(False)}),
    (SvmHead, {"gamma": 0.5}), (SvmHead, {"gamma": "scale", "C": 3, "n_folds": 2}),
    (SvmHead, {"kernel": "linear", "C": 0.5}),
])
def test_head_param_ok(blobs, head, params):
    head(random_state=0, **params).fit(*blobs)


@pytest.mark.parametrize("cls", REPURPOSERS, ids=lambda c: c.__name__)
def test_constructor_stores_params_unchanged(cls, source):
    from sklearn.utils.estimator_checks import (check_get_params_invariance,
                                                check_no_attributes_set_in_init,
                                                check_set_params)

    for check in (check_no_attributes_set_in_init, check_get_params_invariance,
                  check_set_params):
        check(cls.__name__, cls(source))
