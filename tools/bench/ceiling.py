#!/usr/bin/python3
"""The machine's arithmetic ceiling as torch sees it: sgemm and conv3d GFLOP/s, and what BLAS ran.

Run by tools/bench/bench.py as a child with the same environment and thread count the benchmark
uses; prints one JSON object on its last line:

  {"threads", "torch", "sgemm": [{"n", "gflops"}], "conv3d": [{"shape", "gflops"}],
   "ceiling_gflops", "libs": {name: resolved path}, "openblas": {"config", "corename"}}

sgemm is an n x n x n float32 matmul (2 n^3 FLOPs); conv3d runs a few ResNet-3D-like layers
(2 x MACs FLOPs), under inference_mode. Each figure is the best of `--reps` timed runs after a
warm-up: the ceiling is what the hardware and these kernels can reach, not a typical run.
"""
import argparse
import ctypes
import json
import time

import torch
import torch.nn.functional as F

# (input N, C, T, H, W), (out channels, kernel T, H, W), stride, padding: layers as I3D/SlowFast have.
CONV3D = [
    ((1, 64, 8, 56, 56), (64, 3, 3, 3), 1, 1),      # res2 3x3x3
    ((1, 256, 8, 14, 14), (256, 3, 3, 3), 1, 1),    # res4 3x3x3
    ((1, 256, 8, 56, 56), (64, 1, 1, 1), 1, 0),     # res2 1x1x1 reduce
    ((1, 512, 8, 28, 28), (128, 3, 1, 1), 1, (1, 0, 0)),  # res3 3x1x1 (slow pathway)
]


def best_seconds(fn, reps):
    fn()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return min(ts)


def loaded_libs():
    """Resolved paths of the BLAS/LAPACK, OpenMP, oneDNN and LibTorch libraries this process mapped."""
    keys = ("blas", "lapack", "gomp", "omp.so", "dnnl", "torch_cpu", "mkl")
    out = {}
    with open("/proc/self/maps") as f:
        for line in f:
            parts = line.split()
            if len(parts) < 6 or not parts[5].startswith("/"):
                continue
            path = parts[5]
            name = path.rsplit("/", 1)[1]
            if any(k in name for k in keys):
                out.setdefault(name, path)
    return out


def openblas_info(libs):
    for name, path in libs.items():
        if "openblas" in name or "blas" in name:
            try:
                lib = ctypes.CDLL(path)
                cfg = lib.openblas_get_config
                core = lib.openblas_get_corename
            except (OSError, AttributeError):
                continue
            cfg.restype = core.restype = ctypes.c_char_p
            return {"library": path, "config": cfg().decode(), "corename": core().decode()}
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--reps", type=int, default=5)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    gen = torch.Generator().manual_seed(0)
    res = {"threads": torch.get_num_threads(), "torch": torch.__version__, "sgemm": [], "conv3d": []}
    with torch.inference_mode():
        for n in (1024, 2048, 4096):
            x = torch.randn(n, n, generator=gen)
            y = torch.randn(n, n, generator=gen)
            s = best_seconds(lambda: torch.mm(x, y), a.reps if n < 4096 else max(2, a.reps // 2))
            res["sgemm"].append({"n": n, "gflops": round(2 * n ** 3 / s / 1e9, 1)})
        for shape, (cout, kt, kh, kw), stride, pad in CONV3D:
            x = torch.randn(*shape, generator=gen)
            w = torch.randn(cout, shape[1], kt, kh, kw, generator=gen)
            out = F.conv3d(x, w, stride=stride, padding=pad)
            macs = out.numel() * shape[1] * kt * kh * kw
            s = best_seconds(lambda: F.conv3d(x, w, stride=stride, padding=pad), a.reps)
            res["conv3d"].append({"shape": f"{list(shape)} * {[cout, shape[1], kt, kh, kw]}",
                                  "gflops": round(2 * macs / s / 1e9, 1)})
    res["sgemm_best"] = max(r["gflops"] for r in res["sgemm"])
    res["conv3d_best"] = max(r["gflops"] for r in res["conv3d"])
    res["ceiling_gflops"] = max(res["sgemm_best"], res["conv3d_best"])
    res["libs"] = loaded_libs()
    res["openblas"] = openblas_info(res["libs"])
    res["mkldnn"] = torch.backends.mkldnn.is_available()
    print(json.dumps(res))


if __name__ == "__main__":
    main()
