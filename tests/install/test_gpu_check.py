"""tools/gpu/check.py degrades and keeps its time on a machine without a GPU (its CPU fallback).

  test_gpu_check.py VIDFEAT GPU_PROBE OUT_DIR

Runs the check's --quick variant on two models and the decoding row, with two failures forced
(--force-fail parity: the first model's probe is given a missing config; --force-fail decode: the
1080p H.264 video is "missing"), inside a 120 s budget. Then, from check.json and check.md: the
forced failures are FAILED cells with their reasons; the other model still has its CPU fp32
feature measured (row 1's CPU side: seconds > 0, feature dimension 2048) and its CUDA cells say
"no CUDA device"; the HEVC decode cells have CPU frames/s > 0 at sampling 1 and 8 with NVDEC
failed for the same reason; the table names every row; the check ended inside its budget.
"""
import json
import os
import subprocess
import sys
import time

VIDFEAT, PROBE, OUT = sys.argv[1:4]
HERE = os.path.dirname(os.path.abspath(__file__))
CHECK = os.path.join(HERE, "..", "..", "tools", "gpu", "check.py")
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


budget = 120
t0 = time.monotonic()
r = subprocess.run([sys.executable, CHECK, "--vidfeat", VIDFEAT, "--probe", PROBE, "--quick",
                    "--models", "C2D_8x8_R50,I3D_8x8_R50", "--skip", "anchor,e2e",
                    "--force-fail", "parity,decode", "--budget", str(budget), "--threads", "2",
                    "--out", OUT], capture_output=True, text=True, timeout=budget + 120)
wall = time.monotonic() - t0
print(r.stdout[-4000:], r.stderr[-2000:], sep="\n")
check(r.returncode == 0, f"check.py exits 0 (got {r.returncode})")
check(wall <= budget + 30, f"check.py ends inside its budget ({wall:.0f} s for {budget} s)")
data = json.load(open(os.path.join(OUT, "check.json")))
md = open(os.path.join(OUT, "check.md")).read()
check(data["cuda"] is False, "no CUDA device seen")
rows = {(x["row"], x["item"], x["setting"]): x for x in data["rows"]}

c2d = rows.get(("1 parity", "C2D_8x8_R50", "fp32 (TF32 off)"))
check(c2d is not None and c2d["failed"] and "forced-failure.yaml" in c2d["result"],
      "the forced parity failure is a FAILED cell naming its cause")
i3d = rows.get(("1 parity", "I3D_8x8_R50", "fp32 (TF32 off)"))
cpu = (i3d or {}).get("data", {}).get("cpu", {})
check(i3d is not None and "no CUDA device" in i3d["result"], "I3D's CUDA parity cell says no CUDA device")
check(cpu.get("cpu_s", 0) > 0 and cpu.get("feature_dim") == 2048 and cpu.get("input") == "8x256x256",
      f"I3D's CPU fp32 feature was still computed after C2D failed ({cpu})")
for p in ("fp32", "bf16", "fp16"):
    t = rows.get(("2 throughput", "I3D_8x8_R50", p))
    check(t is not None and "no CUDA device" in t["result"], f"I3D throughput {p}: no CUDA device")

h264 = rows.get(("4 decoding", "1080p H264", "sampling 1, 8"))
check(h264 is not None and h264["failed"] and "forced failure" in h264["result"],
      "the forced decode failure is a FAILED cell")
for s in (1, 8):
    d = rows.get(("4 decoding", "1080p HEVC", f"sampling {s}"))
    got = (d or {}).get("data", {})
    check(d is not None and got.get("cpu", {}).get("frames_per_s", 0) > 0 and
          got["cpu"].get("frames") == 120,
          f"1080p HEVC sampling {s}: the CPU decoder's frames/s measured after the H.264 failure")
    check(d is not None and got.get("cuda", {}).get("error") == "no CUDA device",
          f"1080p HEVC sampling {s}: NVDEC cell says no CUDA device")
for name in ("1 parity", "2 throughput", "4 decoding", "CPU fallback"):
    check(name in md, f"check.md shows {name!r}")

if failures:
    sys.exit(f"{len(failures)} failed: " + "; ".join(failures))
print("0 failed")
