"""--decode-device and --precision through `vidfeat extract` (this machine has no GPU):
- --decode-device cuda warns once and falls back to CPU decoding: the features equal a cpu run's;
- --precision bf16 runs on the CPU, its features differ from fp32 by less than 2% of their norm
  (measured 0.85% for this tiny SLOW model on two generated videos, 1.2% on two real ones), and
  the file records it, so a
  resume of an fp32 file with bf16 is refused;
- bad values are refused naming the option; fp16 on the CPU is refused with the reason.

  test_gpu_options.py VIDFEAT SOURCE_DIR CORPUS_DIR   (videos from the generated corpus)
"""
import os
import subprocess
import sys
import tempfile

import h5py
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import vftest  # noqa: E402
from vftest import MPI_ENV, TINY, check, failures  # noqa: E402

VIDFEAT, SRC, CORPUS = sys.argv[1:4]
vftest.use_corpus(CORPUS)
CONFIG = os.path.join(SRC, "configs/Kinetics/SLOW_8x8_R50.yaml")

with tempfile.TemporaryDirectory() as tmp:
    manifest = os.path.join(tmp, "m.csv")
    with open(manifest, "w") as f:
        f.write("video_id,path\n")
        for name in ("h264_bframes.mp4", "vp8.webm"):
            f.write(f"{vftest.stem(name)},{vftest.corpus_video(name)}\n")

    def extract(out, *extra):
        return subprocess.run([VIDFEAT, "extract", "--config", CONFIG, *TINY, "--random-weights", "5",
                               "--manifest", manifest, "--threads", "2", "--output", os.path.join(tmp, out),
                               *extra], capture_output=True, text=True, timeout=600, env=MPI_ENV)

    def features(out):
        with h5py.File(os.path.join(tmp, out), "r") as f:
            return f["features"][:], f.attrs["weights"]

    r = extract("cpu.h5")
    check(r.returncode == 0, "fp32 CPU run exits 0")
    r = extract("cuda.h5", "--decode-device", "cuda")
    check(r.returncode == 0, "--decode-device cuda exits 0 without a GPU")
    warnings = [l for l in r.stderr.splitlines() + r.stdout.splitlines() if "--decode-device cuda:" in l]
    check(len(warnings) == 1 and "decoding on the CPU" in warnings[0],
          f"one fallback warning for two videos: {warnings}")
    (a, wa), (b, _) = features("cpu.h5"), features("cuda.h5")
    check(a.shape[0] > 2 and np.array_equal(a, b), f"fallback features equal CPU decoding's ({a.shape})")

    r = extract("bf16.h5", "--precision", "bf16")
    check(r.returncode == 0, "--precision bf16 runs on the CPU")
    c, wc = features("bf16.h5")
    rel = float(np.linalg.norm(c - a) / np.linalg.norm(a))
    print(f"bf16 relative feature error {rel:.4g}")
    check(0 < rel < 0.02, f"bf16 features within 2% of fp32 and not equal ({rel:.3g})")
    check(wc.endswith(", bf16 forward") and wa == wc[: -len(", bf16 forward")], f"weights attribute: {wc!r}")
    r = extract("cpu.h5", "--precision", "bf16")
    check(r.returncode == 1 and "bf16 forward" in r.stdout + r.stderr, "resuming an fp32 file with bf16 is refused")

    for opt, value, needle in (("--precision", "fp8", "--precision must be"),
                               ("--precision", "fp16", "fp16 needs a CUDA device"),
                               ("--decode-device", "gpu", "--decode-device must be")):
        r = extract("bad.h5", opt, value)
        check(r.returncode != 0 and needle in r.stdout + r.stderr, f"{opt} {value} refused: {needle}")

sys.exit(1 if failures else 0)
