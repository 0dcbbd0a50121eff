#!/usr/bin/python3
"""The reference side of the forward benchmark: the original model code, eager, in Python.

PySlowFast models (default): slowfast.models.build_model from a PySlowFast checkout (PYSF), the
config merged as tools/reference/pysf_ref.py merges it, the checkpoint's model_state loaded
strictly. TSM (--tsm DIR): mit-han-lab/temporal-shift-module's TSN class built as
tools/fixtures/make_tsm_fixtures.py builds it (full width), its state_dict loaded with "module." stripped,
the clip fed as TSM's test script does ([B, T*C, H, W], frame-major).

The input is the .io.pt file's (the same tensor vidfeat verify runs), under torch.inference_mode,
with torch.set_num_threads(--threads): one warm-up forward, then --repeat timed forwards. Then,
outside the timing, one forward under a dispatch mode that counts the multiply-adds of every
convolution and matrix product (aten convolution, mm, addmm, bmm, baddbmm: linear, matmul and
einsum arrive as these) -- FLOPs = 2 x MACs; elementwise ops, norms and pooling are not counted.

Prints one JSON object on its last line: {"forward_s", "runs", "gflop", "feature_rel_err", ...};
feature_rel_err compares the captured feature with the .io.pt's stored one (same weights, same
input: ~0).

  PYSF=/tmp/SlowFast /usr/bin/python3 tools/bench/pysf_forward.py CONFIG.yaml CKPT.pyth IO.pt \
      --threads 2 --repeat 5 [KEY VALUE ...]
  /usr/bin/python3 tools/bench/pysf_forward.py --tsm /tmp/tsm CONFIG.yaml CKPT.pth IO.pt --threads 2
"""
import argparse
import json
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOOLS = os.path.dirname(HERE)
REPO = os.path.dirname(TOOLS)


def count_flops(model, inputs):
    """FLOPs (2 x MACs) of convolutions and matrix products in one forward of `model(inputs)`."""
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode

    aten = torch.ops.aten
    total = {"macs": 0}

    def numel(shape):
        n = 1
        for s in shape:
            n *= int(s)
        return n

    class MacCounter(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            packet = func.overloadpacket
            if packet in (aten.convolution, aten._convolution, aten.convolution_overrideable):
                w = args[1]
                transposed = bool(args[6]) if len(args) > 6 else False
                if transposed:  # weight [Cin, Cout/g, k...]: every input element meets Cout/g * k
                    total["macs"] += numel(args[0].shape) * numel(w.shape[1:])
                else:  # weight [Cout, Cin/g, k...]: every output element costs Cin/g * k
                    total["macs"] += numel(out.shape) * numel(w.shape[1:])
            elif packet in (aten.mm, aten.addmm):
                a, b = (args[0], args[1]) if packet is aten.mm else (args[1], args[2])
                total["macs"] += int(a.shape[0]) * int(a.shape[1]) * int(b.shape[1])
            elif packet in (aten.bmm, aten.baddbmm):
                a, b = (args[0], args[1]) if packet is aten.bmm else (args[1], args[2])
                total["macs"] += int(a.shape[0]) * int(a.shape[1]) * int(a.shape[2]) * int(b.shape[2])
            return out

    with torch.no_grad(), MacCounter():
        model(inputs)
    return 2 * total["macs"]


def build_pysf(a):
    # pysf_ref.use_pysf puts its stubs (fvcore, iopath, detectron2, pytorchvideo) and the PySlowFast
    # export first on sys.path, its matplotlib / av fallbacks last.
    sys.path.insert(0, os.path.abspath(a.reference))
    import pysf_ref

    pysf_ref.use_pysf(a.pysf)
    import torch
    from slowfast.models import build_model

    cfg = pysf_ref.load_cfg(a.cfg, a.opts)
    model = build_model(cfg).eval()
    ckpt = torch.load(a.checkpoint, map_location="cpu")
    model.load_state_dict(ckpt["model_state"], strict=True)
    box = pysf_ref.capture_feature(model)
    io = torch.load(a.io, map_location="cpu")
    inputs = list(io["inputs"])
    return model, inputs, lambda: box["feat"], io["feature"], cfg.MODEL.ARCH, [list(t.shape) for t in inputs]


def build_tsm(a):
    import torch

    sys.path.insert(0, os.path.join(TOOLS, "fixtures"))  # tools/fixtures/make_tsm_fixtures.py
    import make_tsm_fixtures as mtf
    import yaml

    with open(a.cfg) as f:
        cfg = yaml.safe_load(f)
    ckpt = torch.load(a.checkpoint, map_location="cpu")
    state = {k[len("module."):] if k.startswith("module.") else k: v for k, v in ckpt["state_dict"].items()}
    io = torch.load(a.io, map_location="cpu")
    clip = io["inputs"][0]  # [B, C, T, H, W]
    B, C, T, H, W = clip.shape
    shift = str(cfg["MODEL"]["ARCH"]).lower() == "tsm"
    net = mtf.build(os.path.abspath(a.tsm), shift, T, 64, int(state["new_fc.weight"].shape[0]))
    net.load_state_dict(state, strict=True)
    net.eval()
    box = {}
    net.base_model.register_forward_hook(lambda _m, _i, out: box.__setitem__("base", out))
    x = clip.permute(0, 2, 1, 3, 4).reshape(B, T * C, H, W)  # TSM's [B, T*C, H, W]

    class Call(torch.nn.Module):  # model(inputs) with inputs = [x], as the PySlowFast side
        def forward(self, inputs):
            return net(inputs[0])

    return (Call(), [x], lambda: box["base"].reshape(B, T, -1).mean(1), io["feature"], cfg["MODEL"]["ARCH"],
            [list(clip.shape)])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("cfg")
    ap.add_argument("checkpoint")
    ap.add_argument("io")
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--pysf", default=os.environ.get("PYSF", "/tmp/SlowFast"))
    ap.add_argument("--reference", default=os.path.join(TOOLS, "reference"),
                    help="folder of pysf_ref.py and its stubs (default: tools/reference)")
    ap.add_argument("--tsm", default=None, help="export of mit-han-lab/temporal-shift-module: TSN/TSM model")
    ap.add_argument("--no-flops", action="store_true")
    a, a.opts = ap.parse_known_args()

    t_load = time.perf_counter()
    model, inputs, feature, stored, arch, shapes = (build_tsm if a.tsm else build_pysf)(a)
    import torch

    torch.set_num_threads(a.threads)
    t_load = time.perf_counter() - t_load
    runs = []
    with torch.inference_mode():
        model(inputs)  # warm-up
        for _ in range(a.repeat):
            t0 = time.perf_counter()
            model(inputs)
            runs.append(time.perf_counter() - t0)
        f = feature().double()
    ref = stored.double()
    rel = float((f - ref).norm() / ref.norm().clamp(min=1e-30)) if f.shape == ref.shape else None
    gflop = None if a.no_flops else count_flops(model, inputs) / 1e9
    print(json.dumps({"arch": arch, "threads": torch.get_num_threads(), "torch": torch.__version__,
                      "forward_s": statistics.median(runs), "runs": runs, "load_s": t_load,
                      "gflop": gflop, "feature_rel_err": rel,
                      "input": shapes}))  # the .io.pt's tensors, [B, C, T, H, W] each


if __name__ == "__main__":
    main()
