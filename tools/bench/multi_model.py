#!/usr/bin/env python3
"""Several models from one decode against one run per model (issue 19), on the same videos.

  tools/bench/multi_model.py --build build [--sets "SLOWFAST_8x8_R50,CLIP_ViT_B32;X3D_S,CLIP_ViT_B32"]
                             [--threads 2] [--clip-seconds 2] [--repeat 2] [--videos V1 V2 ...]
                             [--out BENCHMARKS.md] [--no-write]

Without --videos it makes its own with Debian's ffmpeg: two 12 s 1080p H.264 files (decoding is a
large share of the work) and one 12 s 360p one. Each configuration runs `vidfeat extract` with
--random-weights (nothing to download) into a fresh file: the models together (one pass, one
decode), then each model alone; wall times are the best of --repeat runs. `vidfeat bench decode`
gives what decoding and preprocessing alone cost per model, i.e. what each single-model run pays
again. Prints a Markdown section (one table per set of models) and, unless --no-write, puts it into
--out between its markers (tools/bench/bench.py keeps it); the features of the one pass are
checked against the single runs' (columns equal bit for bit).
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

import h5py
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from decode import write_section  # noqa: E402  (the marker-section writer BENCHMARKS.md uses)

BEGIN = "<!-- tools/bench/multi_model.py: begin -->"
END = "<!-- tools/bench/multi_model.py: end -->"
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

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


def measure(a, vidfeat, d, manifest, videos, models):
    """One pass and one run per model on `videos`: the section's lines for this set."""
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

    together, both = extract(models, "+".join(models))
    alone = [extract([m], m) for m in models]
    decode = []
    for m in models:
        out = sh([vidfeat, "bench", "decode", "--model", m, "--threads", "0", "--clip-seconds",
                  a.clip_seconds, *videos]).stdout
        secs = sum(float(line.split()[3]) for line in out.splitlines()[2:] if len(line.split()) >= 5)
        decode.append(secs)
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
    L = [f"| {' + '.join(models)} | wall s (best of {a.repeat}) | decode + preprocessing alone, s |",
         "|---|---|---|",
         f"| one pass (one decode) | {together:.1f} | {max(decode):.1f} (once) |"]
    for (t, _), m, dsec in zip(alone, models, decode):
        L.append(f"| {m} alone | {t:.1f} | {dsec:.1f} |")
    L.append(f"| the {len(models)} single runs together | {total:.1f} | {sum(decode):.1f} |")
    L.append(f"| **one pass / single runs** | **{together / total:.2f}** | |")
    return L


def make_heavy(d):
    """Two 8 s 1080p60 H.264 files of ~130 Mbit/s (noise): decoding dominates a light model's run."""
    a, b = os.path.join(d, "heavy_a.mp4"), os.path.join(d, "heavy_b.mp4")
    sh(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
        "testsrc2=size=1920x1080:rate=60,noise=alls=12:allf=t", "-t", "8", "-c:v", "libx264",
        "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p", a])
    shutil.copyfile(a, b)
    return [a, b]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build")
    ap.add_argument("--sets", default="SLOWFAST_8x8_R50,CLIP_ViT_B32;X3D_S,CLIP_ViT_B32")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--clip-seconds", default="2")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--videos", nargs="*")
    ap.add_argument("--out", default=os.path.join(REPO, "BENCHMARKS.md"))
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--heavy-sets", default="X3D_S,CLIP_ViT_B32",
                    help="sets also run on two decode-heavy 1080p60 files ('' = none)")
    a = ap.parse_args()
    vidfeat = os.path.join(a.build, "vidfeat")
    d = tempfile.mkdtemp(prefix="vidfeat_multi_")
    videos = a.videos or make_videos(d)
    manifest = os.path.join(d, "videos.txt")
    with open(manifest, "w") as f:
        f.write("\n".join(videos) + "\n")
    L = [BEGIN, "", "## Several models from one decode (tools/bench/multi_model.py, issue 19)", "",
         f"`vidfeat extract --model A --model B` (one decode) against one `extract` per model, same "
         f"videos ({', '.join(os.path.basename(v) for v in videos)}: 12 s each, two 1080p H.264, one "
         f"360p), --clip-seconds {a.clip_seconds}, batch {a.batch}, {a.threads} LibTorch threads, "
         "random weights, whole processes (start-up included). Decode + preprocessing alone = "
         "`vidfeat bench decode --model M` over the same videos: what each single run pays again. "
         "The one pass's columns equal each single run's features bit for bit (checked).", ""]
    for spec in a.sets.split(";"):
        L += measure(a, vidfeat, d, manifest, videos, spec.split(",")) + [""]
    if a.heavy_sets:
        heavy = make_heavy(d)
        hm = os.path.join(d, "heavy.txt")
        with open(hm, "w") as f:
            f.write("\n".join(heavy) + "\n")
        L += ["Decoding a large share: two 8 s 1080p60 H.264 files of ~130 Mbit/s (noise), same settings:", ""]
        for spec in a.heavy_sets.split(";"):
            L += measure(a, vidfeat, d, hm, heavy, spec.split(",")) + [""]
    L += [f"Command: `/usr/bin/python3 tools/bench/multi_model.py {' '.join(sys.argv[1:])}`", "", END, ""]
    section = "\n".join(L)
    print(section)
    if not a.no_write:
        write_section(a.out, section, BEGIN, END)


if __name__ == "__main__":
    main()
