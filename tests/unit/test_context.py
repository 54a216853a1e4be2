import mxnet as mx
import numpy as np
import pytest

from repurpose.context import num_gpus, resolve_contexts, split_batch
from repurpose.exceptions import ContextError


@pytest.mark.parametrize("spec, expected", [
    ("cpu", [mx.cpu(0)]),
    ("cpu:0,1,2", [mx.cpu(0), mx.cpu(1), mx.cpu(2)]),
    (" CPU ( 1 ) ", [mx.cpu(1)]),
    (mx.cpu(3), [mx.cpu(3)]),
    (["cpu:0", mx.cpu(1), "cpu:0"], [mx.cpu(0), mx.cpu(1)]),
])
def test_resolve_contexts_ok(spec, expected):
    assert resolve_contexts(spec) == expected


@pytest.mark.parametrize("spec, match", [
    ("tpu", "Cannot parse ctx 'tpu'"),
    ("gpu:a", "Cannot parse"),
    ([], "empty list"),
    (3, "got 3 of type int"),
])
def test_resolve_contexts_error(spec, match):
    with pytest.raises(ContextError, match=match):
        resolve_contexts(spec)


def test_missing_gpu_names_id_and_count():
    missing = num_gpus()
    with pytest.raises(ContextError, match=rf"asks for GPU {missing}, but this machine has "
                                           rf"{missing} GPU"):
        resolve_contexts(f"gpu:{missing}")
    # Also a plain ValueError for callers who do not know our classes.
    with pytest.raises(ValueError):
        resolve_contexts(f"gpu:{missing + 3}")


@pytest.mark.parametrize("n, k, sizes", [(7, 3, [3, 2, 2]), (6, 3, [2, 2, 2]), (2, 3, [1, 1]),
                                         (1, 1, [1])])
def test_split_batch_ragged(n, k, sizes):
    batch = np.arange(n * 2, dtype=np.float32).reshape(n, 2)
    contexts = [mx.cpu(i) for i in range(k)]
    parts = split_batch(batch, contexts)
    assert [p.shape[0] for _, p in parts] == sizes
    assert [c for c, _ in parts] == contexts[: len(sizes)]
    assert all(p.context == c for c, p in parts)
    np.testing.assert_array_equal(np.concatenate([p.asnumpy() for _, p in parts]), batch)
