"""int8 / bf16 extraction: features close to float32, calibration cached, hardware checked.

Real int8 / bf16 runs need MKLDNN and the CPU instructions they run on (SSE4.1 for int8,
AVX512-BF16 or AMX-BF16 for bf16); on other machines they are skipped with the missing flag
in the reason. The checks that refuse such machines always run, with fake CPU flag sets.
int8 on a CPU without VNNI is run for real by capping oneDNN at AVX2 in a subprocess.
"""
import os
import platform
import subprocess
import sys
import textwrap

import mxnet as mx
import numpy as np
import pytest

from repurpose import SourceModel
from repurpose.data import load_digits_images
from repurpose.exceptions import (ContextError, DataError, HardwareNotSupportedError,
                                  InvalidParameterError)
from repurpose.features import extract_features, feature_block
from repurpose.features._quantize import (calibration_batches, calibration_fingerprint,
                                          check_precision_supported, missing_instructions,
                                          read_cpu_flags)

FLAGS = read_cpu_flags()
MKLDNN = mx.runtime.Features().is_enabled("MKLDNN")


def _needs(precision):
    missing = missing_instructions(precision, FLAGS)
    reason = (f"{precision} needs MXNet with MKLDNN" if not MKLDNN else
              f"{precision} needs {missing}, which this CPU lacks" if missing else "")
    return pytest.mark.skipif(bool(reason), reason=reason or "supported")


needs_int8 = _needs("int8")
needs_bf16 = _needs("bf16")

ZOO_LAYERS = ["relu1_fwd", "relu3_fwd", "fc1_relu_fwd"]  # conv maps (pooled) and dense
TINY_LAYERS = ["tiny_relu1_fwd", "tiny_relu2_fwd", "tiny_fc1_fwd"]


@pytest.fixture(scope="module")
def zoo_model():
    return SourceModel.from_zoo("digits_cnn")


@pytest.fixture(scope="module")
def target_images():
    X, _ = load_digits_images(classes=range(5, 10))  # digits_cnn's target task
    return X[:300]


@pytest.fixture
def tiny_model(tiny_net):
    return SourceModel.from_gluon(tiny_net, (1, 8, 8))


def _cosine(a, b):
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return (a * b).sum(axis=1) / np.maximum(norms, 1e-12)


def _check_close_to_float32(model, X, layers, precision, ctx, **kwargs):
    exact = extract_features(model, X, layers, batch_size=64, ctx=ctx, pool="avg", progress=False,
                             **kwargs)
    low = extract_features(model, X, layers, batch_size=64, ctx=ctx, pool="avg", progress=False,
                           precision=precision, **kwargs)
    assert list(low) == list(exact) == layers
    for layer in layers:
        assert low[layer].dtype == np.float32
        assert low[layer].shape == exact[layer].shape
        # Rows stay in input order: each row is closest to its own float32 row.
        cosine = _cosine(low[layer], exact[layer])
        assert cosine.min() >= 0.99, (layer, cosine.min())
    return low


def _int8_blocks(model):
    return {key: block for key, block in model._cache.items()
            if isinstance(key, tuple) and key[0] == "feature_block" and key[4] == "int8"}


# ---------------------------------------------------------------- features vs float32
# Measured on an AMD EPYC with avx512_vnni/avx512_bf16: zoo model, digits 5-9, min cosine
# over samples int8 0.9992-0.9998, bf16 0.9997-1.0000 per layer.
@needs_int8
def test_int8_zoo_features_close_to_float32(zoo_model, target_images, ctx):
    _check_close_to_float32(zoo_model, target_images, ZOO_LAYERS, "int8", ctx)


@needs_bf16
def test_bf16_zoo_features_close_to_float32(zoo_model, target_images, ctx):
    _check_close_to_float32(zoo_model, target_images, ZOO_LAYERS, "bf16", ctx)


@needs_int8
def test_int8_gluon_cnn_features_close_to_float32(tiny_model, digits_images, ctx):
    _check_close_to_float32(tiny_model, digits_images[0][:200], TINY_LAYERS, "int8", ctx)


@needs_bf16
def test_bf16_gluon_cnn_features_close_to_float32(tiny_model, digits_images, ctx):
    _check_close_to_float32(tiny_model, digits_images[0][:200], TINY_LAYERS, "bf16", ctx)


@needs_int8
def test_int8_of_fused_chain_outputs(tiny_model, digits_images):
    # conv, batch norm and relu are fused into one int8 kernel; asking for all three
    # outputs must keep each (the fusion must not swallow a requested output).
    layers = ["tiny_conv1_fwd", "tiny_bn1_fwd", "tiny_relu1_fwd", "tiny_out_fwd"]
    X = digits_images[0][:128]
    exact = extract_features(tiny_model, X, layers, pool=None, progress=False)
    low = extract_features(tiny_model, X, layers, pool=None, progress=False, precision="int8")
    for layer in layers:
        assert _cosine(low[layer], exact[layer]).min() >= 0.99, layer
    assert not np.allclose(low["tiny_conv1_fwd"], low["tiny_bn1_fwd"])


@needs_int8
def test_int8_multi_context_equals_single_context(zoo_model, target_images):
    X = target_images[:50]
    single = extract_features(zoo_model, X, ZOO_LAYERS, batch_size=16, ctx="cpu", pool="avg",
                              precision="int8", calib_data=X, progress=False)
    multi = extract_features(zoo_model, X, ZOO_LAYERS, batch_size=16, ctx="cpu:0,1", pool="avg",
                             precision="int8", calib_data=X, progress=False)
    for layer in ZOO_LAYERS:
        np.testing.assert_allclose(multi[layer], single[layer], atol=1e-5)


# ---------------------------------------------------------------- calibration cache
@needs_int8
def test_int8_second_call_reuses_the_calibrated_block(zoo_model, target_images):
    model = SourceModel.from_zoo("digits_cnn")  # a fresh cache
    X = target_images[:100]
    first = extract_features(model, X, ["fc1_relu_fwd"], batch_size=32, precision="int8",
                             progress=False)
    blocks = _int8_blocks(model)
    assert len(blocks) == 1
    block = next(iter(blocks.values()))
    second = extract_features(model, X, ["fc1_relu_fwd"], batch_size=32, precision="int8",
                              progress=False)
    assert _int8_blocks(model) == blocks and next(iter(_int8_blocks(model).values())) is block
    np.testing.assert_array_equal(first["fc1_relu_fwd"], second["fc1_relu_fwd"])
    # The engine asks for the block with the same calibration batches: the cached object.
    batches = calibration_batches(X, 32, 4, model)
    assert feature_block(model, ["fc1_relu_fwd"], None, [mx.cpu()], "int8", batches) is block


@needs_int8
def test_int8_other_calibration_data_calibrates_anew(zoo_model, target_images):
    model = SourceModel.from_zoo("digits_cnn")
    X = target_images[:64]
    extract_features(model, X, ["fc1_relu_fwd"], precision="int8", calib_data=X[:32],
                     progress=False)
    extract_features(model, X, ["fc1_relu_fwd"], precision="int8", calib_data=X[32:],
                     progress=False)
    assert len(_int8_blocks(model)) == 2


@needs_int8
def test_int8_from_a_dataiter_skips_no_sample(zoo_model, target_images):
    # Calibrating on the data itself must not move a DataIter on under the extraction.
    X = target_images[:70]
    expected = extract_features(zoo_model, X, ["fc1_relu_fwd"], batch_size=10, precision="int8",
                                calib_data=X, progress=False)["fc1_relu_fwd"]
    it = mx.io.NDArrayIter(X, batch_size=10)
    got = extract_features(zoo_model, it, ["fc1_relu_fwd"], batch_size=10, precision="int8",
                           n_calib_batches=3, calib_data=None, progress=False)["fc1_relu_fwd"]
    assert got.shape == expected.shape
    assert _cosine(got, expected).min() >= 0.99  # row i is sample i


def test_calibration_fingerprint_follows_content():
    a = [np.zeros((4, 1, 8, 8), np.float32), np.ones((2, 1, 8, 8), np.float32)]
    assert calibration_fingerprint(a) == calibration_fingerprint([x.copy() for x in a])
    assert calibration_fingerprint(a) != calibration_fingerprint(a[:1])
    assert calibration_fingerprint(a) != calibration_fingerprint([a[0] + 1e-3, a[1]])


# ---------------------------------------------------------------- calibration data checks
def test_calibration_batches_ok(zoo_model, target_images):
    batches = calibration_batches(target_images[:50], 16, 2, zoo_model)
    assert [b.shape for b in batches] == [(16, 1, 8, 8)] * 2
    assert all(b.dtype == np.float32 for b in batches)
    np.testing.assert_array_equal(np.concatenate(batches), target_images[:32])
    assert len(calibration_batches(target_images[:20], 16, 4, zoo_model)) == 2  # data ran out


@pytest.mark.parametrize("data, n, error, match", [
    (np.zeros((8, 1, 8, 8), np.float32), 0, InvalidParameterError,
     "n_calib_batches must be an integer >= 1"),
    (np.zeros((8, 3, 8, 8), np.float32), 2, DataError,
     r"calib_data has samples of shape \(3, 8, 8\).*expects input shape \(1, 8, 8\)"),
    (np.full((8, 1, 8, 8), np.nan, np.float32), 2, DataError, "calib_data.*contains NaN"),
    (np.zeros((0, 1, 8, 8), np.float32), 2, DataError, "calib_data is empty"),
])
def test_calibration_batches_error(zoo_model, data, n, error, match):
    with pytest.raises(error, match=match):
        calibration_batches(data, 4, n, zoo_model)


# ---------------------------------------------------------------- int8 without VNNI
# The child extracts float32 and int8 features of digits_cnn's target images with oneDNN
# capped at AVX2 (no VNNI) and prints oneDNN's instruction-set line (DNNL_VERBOSE) and the
# smallest cosine similarity; the cap is read once, when oneDNN starts, hence a subprocess.
_CAPPED_CHILD = textwrap.dedent("""
    import numpy as np
    from repurpose import SourceModel
    from repurpose.data import load_digits_images
    from repurpose.features import extract_features
    model = SourceModel.from_zoo("digits_cnn")
    X, _ = load_digits_images(classes=range(5, 10))
    X = X[:200]
    layers = ["relu1_fwd", "relu3_fwd", "fc1_relu_fwd"]
    exact = extract_features(model, X, layers, pool="avg", progress=False)
    low = extract_features(model, X, layers, pool="avg", precision="int8", progress=False)
    cos = []
    for layer in layers:
        a, b = low[layer], exact[layer]
        norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
        cos.append(((a * b).sum(axis=1) / np.maximum(norms, 1e-12)).min())
    print("MIN_COSINE", min(cos))
""")


@pytest.mark.skipif(not MKLDNN or "avx2" not in FLAGS or platform.machine() != "x86_64",
                    reason="needs MKLDNN on an x86-64 CPU with AVX2")
def test_int8_runs_without_vnni_close_to_float32():
    env = dict(os.environ, DNNL_MAX_CPU_ISA="AVX2", MKLDNN_MAX_CPU_ISA="AVX2",
               DNNL_VERBOSE="1", OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-c", _CAPPED_CHILD], env=env, capture_output=True,
                          text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    output = proc.stdout + proc.stderr
    # oneDNN ran at AVX2 (no VNNI), int8 convolutions included.
    assert "isa:Intel AVX2\n" in output, [l for l in output.splitlines() if "isa:" in l]
    assert "src_u8" in output or "src_s8" in output
    cosine = float(output.split("MIN_COSINE")[1].split()[0])
    assert cosine >= 0.99


# ---------------------------------------------------------------- hardware checks
@pytest.mark.parametrize("precision", ["int8", "bf16"])
def test_gpu_context_error(precision):
    with pytest.raises(HardwareNotSupportedError, match=r"CPUs only.*gpu\(0\).*'float32'"):
        check_precision_supported(precision, [mx.cpu(), mx.gpu(0)], flags=FLAGS)


@pytest.mark.parametrize("precision", ["int8", "bf16"])
def test_gpu_context_error_through_extract(zoo_model, precision):
    # A machine without that GPU stops in context parsing; one with it, in the precision
    # check. Either way before any work.
    with pytest.raises((HardwareNotSupportedError, ContextError), match="GPU|CPUs only"):
        extract_features(zoo_model, np.zeros((2, 1, 8, 8), np.float32), ["fc1_relu_fwd"],
                         ctx="gpu:0", precision=precision, progress=False)


@pytest.mark.skipif(not MKLDNN, reason="MXNet without MKLDNN fails before the CPU flags")
@pytest.mark.parametrize("precision, flags", [
    # int8 wherever oneDNN has int8 kernels, VNNI or not (measured faster than float32 at
    # every level from SSE4.1 up).
    ("int8", {"sse4_1", "avx2"}), ("int8", {"sse4_1", "avx", "avx2", "avx512f", "avx512bw"}),
    ("int8", {"sse4_1"}), ("int8", {"sse4_1", "avx2", "avx512_vnni"}),
    ("int8", {"sse4_1", "avx2", "avx_vnni"}), ("int8", {"sse4_1", "amx_int8"}),
    ("int8", set()),  # no flag list (not Linux): not held against int8
    ("bf16", {"avx512f", "avx512_bf16"}), ("bf16", {"amx_bf16"}),
    ("float32", set()),
])
@pytest.mark.parametrize("machine", ["x86_64", "AMD64"])
def test_cpu_flags_ok(precision, flags, machine):
    check_precision_supported(precision, [mx.cpu()], flags=flags, machine=machine)


@pytest.mark.skipif(not MKLDNN, reason="MXNet without MKLDNN fails before the CPU flags")
@pytest.mark.parametrize("precision, flags, machine, match", [
    ("int8", {"fpu", "sse2", "ssse3"}, "x86_64",
     r"precision='int8' needs a CPU with SSE4.1 \(one of the CPU flags 'sse4_1'\).*no int8 "
     r"kernels.*precision='float32', which works everywhere"),
    ("bf16", {"sse4_1", "avx2", "avx512f", "avx512_vnni"}, "x86_64",
     r"precision='bf16' needs a CPU with AVX512-BF16 or AMX-BF16 \(one of the CPU flags "
     r"'avx512_bf16', 'amx_bf16'\).*slower than float32.*precision='float32', which "
     r"works everywhere"),
    ("bf16", set(), "x86_64", "AVX512-BF16"),
    ("int8", {"fp", "asimd"}, "aarch64",
     r"precision='int8' runs on x86 CPUs only.*'aarch64'.*precision='float32'"),
    ("bf16", {"avx512_bf16"}, "arm64", r"x86 CPUs only.*'arm64'"),
])
def test_cpu_flags_error(precision, flags, machine, match):
    with pytest.raises(HardwareNotSupportedError, match=match):
        check_precision_supported(precision, [mx.cpu()], flags=flags, machine=machine)


def test_read_cpu_flags(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Some CPU\n"
                       "flags\t\t: fpu sse4_1 AVX2\n\nprocessor\t: 1\nflags\t: fpu\n")
    assert read_cpu_flags(cpuinfo) == {"fpu", "sse4_1", "avx2"}
    assert read_cpu_flags(tmp_path / "missing") == frozenset()
    assert missing_instructions("int8", read_cpu_flags(cpuinfo)) is None  # no VNNI needed
    assert "AVX512-BF16" in missing_instructions("bf16", read_cpu_flags(cpuinfo))
    old = tmp_path / "old_cpuinfo"
    old.write_text("processor\t: 0\nflags\t\t: fpu sse2 ssse3\n")
    assert "SSE4.1" in missing_instructions("int8", read_cpu_flags(old))
