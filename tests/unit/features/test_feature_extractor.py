import numpy as np
import pytest
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from repurpose import FeatureExtractor, SourceModel
from repurpose.data import load_digits_images
from repurpose.exceptions import InvalidParameterError, UnknownLayerError
from repurpose.features import FeatureCache, default_cache, extract_features


@pytest.fixture(scope="module")
def source():
    return SourceModel.from_zoo("digits_cnn")


@pytest.fixture(scope="module")
def digits():
    return load_digits_images(classes=range(5, 10))


def test_transform_concatenates_layers_in_order(source, digits):
    X, _ = digits
    fx = FeatureExtractor(source, layers=("relu3_fwd", "fc1_relu_fwd"), pool="avg").fit()
    out = fx.transform(X[:20])
    parts = extract_features(source, X[:20], ["relu3_fwd", "fc1_relu_fwd"], pool="avg",
                             progress=False)
    np.testing.assert_array_equal(out, np.hstack([parts["relu3_fwd"], parts["fc1_relu_fwd"]]))
    assert fx.layer_dims_ == {"relu3_fwd": 64, "fc1_relu_fwd": 64}
    assert fx.get_feature_names_out()[64] == "fc1_relu_fwd_0"


def test_default_layer_from_model_card(source, digits):
    fx = FeatureExtractor(source).fit()
    assert fx.layers_ == ["fc1_relu_fwd"]


def test_in_pipeline_and_clone(source, digits):
    X, y = digits
    pipe = make_pipeline(FeatureExtractor(source), LogisticRegression(max_iter=1000))
    assert clone(pipe).fit(X[:100], y[:100]).score(X[100:], y[100:]) > 0.7
    assert clone(FeatureExtractor(source)).source is source  # never copies the network


def test_cache_reuses_identical_inputs_only(source, digits):
    X, _ = digits
    default_cache.clear()
    fx = FeatureExtractor(source).fit()
    a = fx.transform(X[:30])
    hits = default_cache.hits
    b = fx.transform(X[:30].copy())
    assert default_cache.hits == hits + 1
    np.testing.assert_array_equal(a, b)
    b[0, 0] = 123.0  # the caller's copy; the cache is untouched
    np.testing.assert_array_equal(fx.transform(X[:30]), a)
    fx.transform(X[:31])
    assert default_cache.hits == hits + 2 - 1 + 1  # one more hit (X[:30]), one miss (X[:31])
    no_cache = FeatureExtractor(source, cache=False).fit()
    hits = default_cache.hits
    no_cache.transform(X[:30])
    assert default_cache.hits == hits


def test_cache_bounded():
    cache = FeatureCache(max_bytes=800)
    cache.put(("a",), {"x": np.zeros(50)})  # 400 bytes
    cache.put(("b",), {"x": np.zeros(50)})
    cache.put(("c",), {"x": np.zeros(50)})  # evicts "a"
    assert cache.get(("a",)) is None and cache.get(("c",)) is not None and len(cache) == 2
    cache.put(("huge",), {"x": np.zeros(1000)})  # larger than the cache: not stored
    assert cache.get(("huge",)) is None


@pytest.mark.parametrize("kwargs, error, match", [
    ({"layers": ("nope",)}, UnknownLayerError, "Unknown layer 'nope'"),
    ({"layers": ()}, InvalidParameterError, "layers is empty"),
    ({"pool": "sum"}, InvalidParameterError, "pool must be one of"),
    ({"precision": "fp16"}, InvalidParameterError, "precision must be one of"),
])
def test_bad_params_error_at_fit(source, kwargs, error, match):
    fx = FeatureExtractor(source, **kwargs)  # the constructor stores, never checks
    with pytest.raises(error, match=match):
        fx.fit()


def test_not_a_source_model_error():
    with pytest.raises(InvalidParameterError, match="needs source=SourceModel"):
        FeatureExtractor("digits_cnn").fit()


def test_layers_none_needs_card(tiny_net):
    model = SourceModel.from_gluon(tiny_net, (1, 8, 8))
    with pytest.raises(InvalidParameterError, match="layers=None needs a model whose metadata"):
        FeatureExtractor(model).fit()
