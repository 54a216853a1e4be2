"""Make ``torch_tiny_resnet.onnx`` and ``torch_tiny_resnet_expected.npz`` (test data).

A tiny residual CNN with batch norm, exported by PyTorch's own ONNX exporter (opset 13), so
the tests check ``repurpose.source._onnx.import_onnx`` on a file laid out as PyTorch writes
it: initializers are *not* listed among the graph inputs, the batch axis is dynamic, and
BatchNormalization nodes carry running statistics.

The tests need only ``onnx`` and ``mxnet``; this script alone needs PyTorch. Run it from
anywhere (it writes next to itself)::

    python -m venv venv-torch
    venv-torch/bin/pip install torch==2.13.0 onnx==1.14.1 'protobuf<4' 'numpy<2'
    venv-torch/bin/python tests/data/make_torch_onnx.py

The output is deterministic for a given PyTorch build (``torch.manual_seed(0)``).
"""
import pathlib

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
ONNX_PATH = HERE / "torch_tiny_resnet.onnx"
EXPECTED_PATH = HERE / "torch_tiny_resnet_expected.npz"
INPUT_SHAPE = (2, 3, 16, 16)
OPSET = 13


def build_model(n_classes=5):
    """The tiny residual CNN, in eval mode with non-trivial batch-norm statistics.

    torch is imported here, not at the top: pytest's ``--doctest-modules`` imports every
    module under tests/, and CI has no torch.
    """
    import torch
    from torch import nn

    class Block(nn.Module):
        """Conv-BN-ReLU-Conv-BN plus identity, then ReLU."""

        def __init__(self, channels):
            super().__init__()
            self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(channels)
            self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(channels)

        def forward(self, x):
            out = torch.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            return torch.relu(out + x)

    class TinyResNet(nn.Module):
        """Stem (strided conv + BN + ReLU), one residual block, global pool, linear head."""

        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(3, 8, 3, stride=2, padding=1)
            self.bn = nn.BatchNorm2d(8)
            self.block = Block(8)
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.flatten = nn.Flatten()
            self.fc = nn.Linear(8, n_classes)

        def forward(self, x):
            x = torch.relu(self.bn(self.stem(x)))
            x = self.block(x)
            return self.fc(self.flatten(self.pool(x)))

    model = TinyResNet()
    # Non-trivial running statistics, so a test notices if they are lost or mixed up.
    with torch.no_grad():
        for bn in (model.bn, model.block.bn1, model.block.bn2):
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.2, 0.2)
    return model.eval()


def main():
    import torch

    torch.manual_seed(0)
    model = build_model()
    x = torch.rand(INPUT_SHAPE, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        logits = model(x)

    torch.onnx.export(
        model,
        (x,),
        str(ONNX_PATH),
        opset_version=OPSET,
        input_names=["input"],
        output_names=["logits"],
        dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
        do_constant_folding=True,
        # PRESERVE keeps BatchNormalization nodes (EVAL would fold them into the convs), so
        # the import of running mean/var into aux_params is exercised.
        training=torch.onnx.TrainingMode.PRESERVE,
        dynamo=False,
    )
    np.savez(
        EXPECTED_PATH,
        input=x.numpy().astype(np.float32),
        logits=logits.numpy().astype(np.float32),
    )
    print(f"wrote {ONNX_PATH} ({ONNX_PATH.stat().st_size} bytes)")
    print(f"wrote {EXPECTED_PATH} ({EXPECTED_PATH.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
