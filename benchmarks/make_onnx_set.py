"""Export a set of torchvision and timm classifiers to ONNX three ways, with seeded weights.

The second set ``benchmarks/onnx_intake.py`` was run on (docs/benchmarks/onnx_intake.md): 40
architectures that are not in the project's development set (../shared/onnx_zoo), each
exported by PyTorch's TorchScript exporter at opset 13 and 17 and by its dynamo exporter
(opset 20, weights in an external ``.onnx.data`` file), laid out like the development set:
``<arch>.<kind>.onnx``, ``<arch>.ref.npy`` (PyTorch's logits for
``numpy.random.RandomState(0).rand(2, 3, S, S)``) and ``meta.json``. Weights are seeded and
compressible as in the development set (each tensor repeats 997 random values scaled to its
initial statistics), so the whole set packs into ~30 MB of ``tar.xz``.

Needs torch, torchvision and timm (not dependencies of this project); it was run with
PyTorch 2.11 on a machine that has them::

    python benchmarks/make_onnx_set.py OUT_DIR SECONDS

and stops starting new architectures after SECONDS; the set is packed into
``OUT_DIR/ov.tar.xz.partNN`` (cat the parts, then ``tar xJf``).
"""
import json, os, subprocess, sys, time, warnings
warnings.filterwarnings("ignore")
import numpy as np, torch
out = sys.argv[1]; budget = float(sys.argv[2]); T0 = time.time(); D = "/tmp/ov"; os.makedirs(D, exist_ok=True)
torch.set_num_threads(16)
import torchvision.models as tvm
import timm
TV = ["efficientnet_b0", "mobilenet_v3_large", "mobilenet_v3_small", "regnet_y_400mf", "mnasnet0_5", "googlenet",
      "resnext50_32x4d", "alexnet", "swin_t", "shufflenet_v2_x0_5", "squeezenet1_0", "efficientnet_v2_s", "regnet_x_400mf", "maxvit_t"]
TIMM = ["rexnet_100", "lcnet_050", "mobilevit_xxs", "poolformer_s12", "cspresnet50", "dla34", "resnest14d", "tf_efficientnet_b0",
        "vit_tiny_patch16_224", "mixer_s16_224", "ese_vovnet19b_dw", "fbnetc_100", "mobilenetv3_large_100", "inception_v4", "xception41",
        "convnextv2_atto", "edgenext_xx_small", "res2net50_14w_8s", "sebotnet33ts_256", "efficientformer_l1", "coat_lite_tiny", "cait_xxs24_224",
        "pit_ti_224", "regnety_002", "hrnet_w18_small", "nf_regnet_b0", "gcresnet33ts", "selecsls42b", "tinynet_e", "repvgg_a0", "mobileone_s0", "fastvit_t8"]
def compressible(m):
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for n, p in m.named_parameters():
            s = float(p.std()) if p.numel() > 1 else 0.0
            if s == 0.0: continue
            base = torch.randn(997, generator=g) * s + float(p.mean())
            p.copy_(base.repeat(-(-p.numel() // 997))[: p.numel()].view_as(p))
    return m
jobs = [("tv_" + n, lambda n=n: getattr(tvm, n)(weights=None, **({"aux_logits": False, "init_weights": True} if n in ("inception_v3", "googlenet") else {}))) for n in TV]
jobs += [("timm_" + n, lambda n=n: timm.create_model(n, pretrained=False)) for n in TIMM]
# interleave so a time cut drops from both families
a, b = jobs[:len(TV)], jobs[len(TV):]
order = [j for pair in zip(a, b) for j in pair] + a[len(b):] + b[len(a):]
meta = {}
for name, make in order:
    if time.time() - T0 > budget: meta[name] = {"skipped": "time"}; continue
    rec = {}; t = time.time()
    try:
        torch.manual_seed(0); m = compressible(make().eval())
        size = 224
        cfg = getattr(m, "pretrained_cfg", None) or {}
        if cfg.get("input_size"): size = cfg["input_size"][-1]
        if "inception" in name or "xception" in name: size = 299
        x = np.random.RandomState(0).rand(2, 3, size, size).astype(np.float32)
        with torch.no_grad(): y = m(torch.from_numpy(x))
        if isinstance(y, (tuple, list)): y = y[0]
        np.save(f"{D}/{name}.ref.npy", y.numpy().astype(np.float32)); rec["size"] = size; rec["out"] = list(y.shape)
        for kind in ["ts13", "ts17", "dynamo"]:
            if time.time() - T0 > budget: rec[kind] = {"ok": False, "error": "time"}; continue
            f = f"{D}/{name}.{kind}.onnx"; t1 = time.time()
            try:
                if kind.startswith("ts"):
                    torch.onnx.export(m, torch.from_numpy(x), f, opset_version=int(kind[2:]), input_names=["data"], output_names=["out"],
                                      dynamic_axes={"data": {0: "batch"}, "out": {0: "batch"}}, dynamo=False)
                else:
                    torch.onnx.export(m, (torch.from_numpy(x),), f, input_names=["data"], output_names=["out"], dynamo=True)
                rec[kind] = {"ok": True, "bytes": os.path.getsize(f), "s": round(time.time() - t1, 1)}
            except Exception as e:
                for p in (f, f + ".data"):
                    if os.path.exists(p): os.remove(p)
                rec[kind] = {"ok": False, "error": f"{type(e).__name__}: {str(e)[:300]}"}
    except Exception as e:
        rec["error"] = f"{type(e).__name__}: {str(e)[:300]}"
    rec["s"] = round(time.time() - t, 1); meta[name] = rec; print(round(time.time() - T0), name, {k: (v if not isinstance(v, dict) else v.get("ok")) for k, v in rec.items()}, flush=True)
json.dump({"torch": torch.__version__, "timm": timm.__version__, "models": meta}, open(f"{D}/meta.json", "w"), indent=1)
subprocess.run(f"cd /tmp && tar cf - ov | xz -6 -T16 > /tmp/ov.tar.xz && ls -la /tmp/ov.tar.xz && split -b 15m -d /tmp/ov.tar.xz {out}/ov.tar.xz.part", shell=True)
subprocess.run(f"cp {D}/meta.json {out}/", shell=True)
print("total", round(time.time() - T0))
