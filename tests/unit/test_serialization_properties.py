"""Property tests: saved checkpoints and streamed feature files read back exactly."""
import json

import mxnet as mx
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from repurpose import SourceModel
from repurpose.features._store import NpySink

json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6),
                         st.floats(allow_nan=False, allow_infinity=False, width=32),
                         st.text(max_size=12))
metadata = st.dictionaries(st.text(min_size=1, max_size=10),
                           st.one_of(json_scalars, st.lists(json_scalars, max_size=4)),
                           max_size=5)
spec = st.one_of(
    st.builds(lambda u: {"type": "dense", "units": u}, st.integers(1, 6)),
    st.sampled_from([{"type": "activation", "activation": a}
                     for a in ("relu", "tanh", "sigmoid")]),
    st.builds(lambda r: {"type": "dropout", "rate": r},
              st.one_of(st.just(0.0), st.floats(np.finfo(np.float32).tiny, 0.9))),
    st.just({"type": "batchnorm"}),
)


def _base_model():
    net = mx.gluon.nn.HybridSequential(prefix="b_")
    with net.name_scope():
        net.add(mx.gluon.nn.Dense(4, prefix="fc_"))
    net.initialize(mx.init.Xavier())
    return SourceModel.from_gluon(net, (3,))


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(layers=st.lists(spec, min_size=1, max_size=4), meta=metadata,
       seed=st.integers(0, 2**31 - 2), epoch=st.integers(0, 9999), freeze=st.booleans())
def test_checkpoint_round_trip(tmp_path_factory, layers, meta, seed, epoch, freeze):
    model = _base_model().add_layers(layers, random_state=seed)
    model = SourceModel(model.symbol, model.arg_params, model.aux_params,
                        input_shape=model.input_shape, metadata=meta,
                        frozen_layers=model.layer_names[:1] if freeze else ())
    prefix = tmp_path_factory.mktemp("ckpt") / "m"
    model.save_checkpoint(prefix, epoch=epoch)
    loaded = SourceModel.from_checkpoint(prefix, epoch)
    assert loaded.sha256 == model.sha256
    assert loaded.metadata == json.loads(json.dumps(meta))
    assert loaded.frozen_layers == model.frozen_layers
    assert loaded.input_shape == (3,)


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(widths=st.lists(st.integers(1, 40), min_size=1, max_size=3),
       batches=st.lists(st.integers(1, 7), min_size=1, max_size=6))
def test_streamed_npy_files_read_back(tmp_path_factory, widths, batches):
    out = tmp_path_factory.mktemp("f") / "features"
    layers = [f"layer/{i}" for i in range(len(widths))]  # odd names become safe file names
    sink = NpySink(out, layers, {"layers": layers})
    rng = np.random.RandomState(0)
    written = [[] for _ in widths]
    start = 0
    for n in batches:
        outputs = [rng.randn(n, w).astype(np.float32) for w in widths]
        sink.write(start, outputs)
        for store, arr in zip(written, outputs):
            store.append(arr)
        start += n
    arrays = sink.close(start)
    for layer, store in zip(layers, written):
        np.testing.assert_array_equal(arrays[layer], np.concatenate(store))
    manifest = json.loads((out / "features.json").read_text())
    assert manifest["n_samples"] == sum(batches)


def test_sink_abort_removes_everything(tmp_path):
    sink = NpySink(tmp_path / "f", ["a"], {})
    sink.write(0, [np.zeros((2, 3), np.float32)])
    sink.abort()
    assert list(tmp_path.iterdir()) == []


def test_sink_refuses_existing_folder(tmp_path):
    (tmp_path / "f").mkdir()
    with pytest.raises(FileExistsError, match="overwrite=True"):
        NpySink(tmp_path / "f", ["a"], {})
