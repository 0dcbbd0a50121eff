#!/usr/bin/env python3
"""Several models from one decode against one run per model (issue 19), on the same videos.

  tools/bench/multi_model.py --build build [--models SLOWFAST_8x8_R50,CLIP_ViT_B32] [--threads 2]
                             [--clip-seconds 2] [--repeat 2] [--videos V1 V2 ...]

Without --videos it makes its own with Debian's ffmpeg: two 12 s 1080p H.264 files (decoding is a
large share of the work) and one 12 s 360p one. Each configuration runs `vidfeat extract` with
--random-weights (nothing to download) into a fresh file: the models together (one pass, one
decode), then each model alone; wall times are the best of --repeat runs. `vidfeat bench decode`
gives what decoding and preprocessing alone cost per model, i.e. what each single-model run pays
again. Prints a Markdown table; the features of the one pass are checked against the single runs'
(columns equal bit for bit).
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

import h5py
import numpy as np

ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")


def sh(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True, env=ENV)
    if r.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{r.stderr[-2000:]}")
    return r


def make_videos(d):
    out = []
    for name, size in (("hd_a.mp4", "1920x1080"), ("hd_b.mp4", "1920x1080"), ("sd.mp4", "640x360")):
        p = os.path.join(d, name)
        src = "testsrc2" if "hd_a" in name or "sd" in name else "mandelbrot"
        sh(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
            f"{src}=size={size}:rate=30", "-t", "12", "-c:v", "libx264", "-preset", "veryfast",
            "-pix_fmt", "yuv420p", p])
        out.append(p)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build")
    ap.add_argument("--models", default="SLOWFAST_8x8_R50,CLIP_ViT_B32")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--clip-seconds", default="2")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--videos", nargs="*")
    a = ap.parse_args()
    vidfeat = os.path.join(a.build, "vidfeat")
    models = a.models.split(",")
    d = tempfile.mkdtemp(prefix="vidfeat_multi_")
    videos = a.videos or make_videos(d)
    manifest = os.path.join(d, "videos.txt")
    with open(manifest, "w") as f:
        f.write("\n".join(videos) + "\n")

    def extract(names, tag):
        best = float("inf")
        out = os.path.join(d, tag + ".h5")
        for _ in range(a.repeat):
            if os.path.exists(out):
                os.remove(out)
            args = [vidfeat, "extract", "--random-weights", "1", "--threads", str(a.threads),
                    "--batch", str(a.batch), "--manifest", manifest, "--output", out,
                    "--clip-seconds", a.clip_seconds]
            for n in names:
                args += ["--model", n]
            t0 = time.perf_counter()
            sh(args)
            best = min(best, time.perf_counter() - t0)
        return best, out

    together, both = extract(models, "together")
    alone = [extract([m], m) for m in models]
    decode = [sh([vidfeat, "bench", "decode", "--model", m, "--threads", "0", *videos]).stdout
              for m in models]
    # The one pass's columns against each model alone.
    with h5py.File(both) as f:
        fb, vb = f["features"][:], f["videos"][:]
        col = 0
        for (_, path), m in zip(alone, models):
            with h5py.File(path) as g:
                fg, vg = g["features"][:], g["videos"][:]
                dim = fg.shape[1]
                for i in range(len(vb)):
                    a0, n = int(vb[i]["first_row"]), int(vb[i]["segment_count"])
                    g0 = int(vg[i]["first_row"])
                    if not np.array_equal(fb[a0:a0 + n, col:col + dim], fg[g0:g0 + n]):
                        sys.exit(f"{m}: the one pass's columns differ from {m} alone")
                col += dim
    total = sum(t for t, _ in alone)
    print(f"| configuration | wall s (best of {a.repeat}) |")
    print("|---|---|")
    print(f"| {' + '.join(models)}, one pass (one decode) | {together:.1f} |")
    for (t, _), m in zip(alone, models):
        print(f"| {m} alone | {t:.1f} |")
    print(f"| the {len(models)} single runs together | {total:.1f} |")
    print(f"| one pass / single runs | **{together / total:.2f}** |")
    print()
    for text, m in zip(decode, models):
        print(f"`vidfeat bench decode --model {m}` (decode + clips + preprocessing alone):")
        print("```\n" + text.strip() + "\n```")
    print(f"\nvideos: {', '.join(os.path.basename(v) for v in videos)}; {a.threads} threads, batch {a.batch}, "
          f"--clip-seconds {a.clip_seconds}; the one pass's columns equal each single run's, bit for bit")


if __name__ == "__main__":
    main()
