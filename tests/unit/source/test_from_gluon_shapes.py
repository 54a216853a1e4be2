"""SourceModel.from_gluon with an input shape the block refuses: an InvalidParameterError in
the toolkit's words (what shape, which layer, what to pass), MXNet's error as the cause."""
import re

import mxnet as mx
import numpy as np
import pytest
from mxnet.gluon import nn

from repurpose import SourceModel
from repurpose.exceptions import InvalidParameterError


def _cnn(in_channels=1, deferred=False):
    """Conv 3x3 -> ReLU -> max-pool 2 -> dense, made for (in_channels, 8, 8) samples."""
    net = nn.HybridSequential(prefix="cnn_")
    with net.name_scope():
        net.add(nn.Conv2D(4, 3, padding=1, in_channels=0 if deferred else in_channels,
                          prefix="conv_"),
                nn.Activation("relu", prefix="relu_"), nn.MaxPool2D(2, prefix="pool_"),
                nn.Flatten(prefix="flat_"), nn.Dense(3, prefix="fc_"))
    net.initialize(mx.init.Xavier())
    if not deferred:
        net(mx.nd.zeros((1, in_channels, 8, 8)))
    return net


@pytest.mark.parametrize("deferred", [False, True])
def test_input_shape_with_the_batch_axis_is_named_as_such(deferred):
    net = _cnn(deferred=deferred)
    with pytest.raises(InvalidParameterError) as info:
        SourceModel.from_gluon(net, (1, 1, 8, 8))
    message = str(info.value)
    assert "does not accept inputs of shape (1, 1, 8, 8)" in message
    assert "layer 'cnn_conv_fwd' fails" in message
    assert "ONE sample, without the batch axis" in message
    assert message.endswith("Pass input_shape=(1, 8, 8).")
    assert isinstance(info.value.__cause__, mx.base.MXNetError)
    assert "Traceback" not in message and ".cc:" not in message
    # The failed call left the block usable: the right shape works afterwards.
    model = SourceModel.from_gluon(net, (1, 8, 8))
    assert model.input_shape == (1, 8, 8)
    assert model.output_shapes((1, 8, 8))["cnn_fc_fwd_output"] == (1, 3)


@pytest.mark.parametrize("shape, window", [((1, 2, 2), "kernel size"),
                                           ((1, 1, 1), "kernel size")])
def test_input_smaller_than_a_kernel(shape, window):
    net = nn.HybridSequential(prefix="small_")
    with net.name_scope():
        net.add(nn.Conv2D(2, 3, prefix="conv_"), nn.MaxPool2D(2, prefix="pool_"))
    net.initialize()
    with pytest.raises(InvalidParameterError, match=rf"shape {re.escape(str(shape))}.*layer "
                                                    rf"'small_conv_fwd' "
                                                    rf"fails: {window}.*smaller than a "
                                                    r"convolution or pooling window.*larger "
                                                    r"input_shape") as info:
        SourceModel.from_gluon(net, shape)
    assert isinstance(info.value.__cause__, mx.base.MXNetError)


def test_pooling_window_larger_than_the_input():
    net = nn.HybridSequential(prefix="p_")
    with net.name_scope():
        net.add(nn.Conv2D(2, 3, padding=1, prefix="conv_"), nn.MaxPool2D(4, prefix="pool_"))
    net.initialize()
    with pytest.raises(InvalidParameterError, match=r"layer 'p_pool_fwd' fails: kernel size "
                                                    r"\(4\) exceeds input.*larger input_shape"):
        SourceModel.from_gluon(net, (1, 3, 3))


def test_missing_channel_axis_and_wrong_channel_count_say_what_fits():
    with pytest.raises(InvalidParameterError, match=r"channel axis first: pass "
                                                    r"input_shape=\(1, 8, 8\)"):
        SourceModel.from_gluon(_cnn(), (8, 8))
    with pytest.raises(InvalidParameterError, match=r"shape \[4,1,3,3\] would need shape "
                                                    r"\(4,3,3,3\).*made for 1 channel: pass "
                                                    r"input_shape=\(1, 8, 8\)"):
        SourceModel.from_gluon(_cnn(), (3, 8, 8))
    with pytest.raises(InvalidParameterError, match=r"made for 3 channels: pass "
                                                    r"input_shape=\(3, 8, 8\) \(RGB\)"):
        SourceModel.from_gluon(_cnn(in_channels=3), (1, 8, 8))


def test_spatial_size_the_dense_layer_was_not_made_for():
    with pytest.raises(InvalidParameterError, match=r"layer 'cnn_fc_fwd' fails: its parameter "
                                                    r"of shape \[3,64\] would need shape "
                                                    r"\(3,36\).*Pass the shape of one sample "
                                                    r"the block was made for"):
        SourceModel.from_gluon(_cnn(), (1, 6, 6))


def test_right_shape_still_loads_and_matches_the_block(seed):
    net = _cnn(deferred=True)
    model = SourceModel.from_gluon(net, (1, 8, 8))
    x = np.random.RandomState(seed).rand(2, 1, 8, 8).astype(np.float32)
    expected = net(mx.nd.array(x)).asnumpy()
    got = model.to_gluon()(mx.nd.array(x))
    got = (got[0] if isinstance(got, (list, tuple)) else got).asnumpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
