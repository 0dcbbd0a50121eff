#!/usr/bin/python3
"""The output at scale (issue 18): many short videos over several ranks, one segment each.

  /usr/bin/python3 tools/bench/scale.py [--build build] [--videos 10000] [--ranks 3] [--seconds 2]
      [--work /tmp/vidfeat-scale-bench] [--out BENCHMARKS.md] [--no-write] [-- EXTRACT OPTIONS...]

One 2-second 64x48 H.264 video (testsrc, 25 fps: 50 frames) is made once in --work and hard-linked
--videos times (each its own id and path, as a dataset's are). `mpirun -n RANKS vidfeat extract`
runs SLOW_8x8_R50 with random weights at a 32-pixel crop (DATA.TEST_CROP_SIZE=32, short side 32):
every layer at full width, so the feature is the real 2048-d one, while a clip costs milliseconds;
the 8 x 8-frame span covers a video in one segment. One thread per rank (--threads 1).

Reported, per rank from vidfeat's own summary lines: wall, idle share (not busy with a clip:
waiting for work, for decoded clips or for the other ranks), HDF5 share (its time inside HDF5 and
the journal: creation, waves, close), peak RSS (each rank under /usr/bin/time); and the file's
overhead: its size beyond the feature bytes (rows x 2048 x 4), as a share of those. Goals: overhead
< 5 %, HDF5 <= 1 % of wall on every rank.

The table goes to stdout and, unless --no-write, into --out between the markers below (the rest of
the file is kept; tools/bench/bench.py keeps this section when it rewrites the file).
"""
import argparse
import os
import re
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
from decode import run_meta, write_section  # noqa: E402  (one writer of BENCHMARKS.md sections)

BEGIN = "<!-- tools/bench/scale.py: begin -->"
END = "<!-- tools/bench/scale.py: end -->"
CONFIG = os.path.join(REPO, "configs/Kinetics/SLOW_8x8_R50.yaml")
SETS = ["DATA.TEST_CROP_SIZE=32", "DATA.TRAIN_CROP_SIZE=32", "DATA.TRAIN_JITTER_SCALES=[32, 40]"]
OVERHEAD_GOAL, HDF5_GOAL = 0.05, 0.01
RANK_LINE = re.compile(r"rank (\d+): (\d+) videos, (\d+) clips, [\d.]+ clips/s, busy ([\d.]+) s of ([\d.]+) s "
                       r"\((\d+)% idle\); model ([\d.]+) s, waiting for decoded clips ([\d.]+) s, writing ([\d.]+) s")
RSS_LINE = re.compile(r"scale-bench-rss (\d+) (\d+)")


def make_videos(work, n, seconds):
    src = os.path.join(work, "src.mp4")
    if not os.path.exists(src):
        subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                        f"testsrc=size=64x48:rate=25:duration={seconds}", "-c:v", "libx264", "-pix_fmt", "yuv420p",
                        src + ".tmp.mp4"], check=True)
        os.replace(src + ".tmp.mp4", src)
    vids = os.path.join(work, "videos")
    os.makedirs(vids, exist_ok=True)
    manifest = os.path.join(work, f"manifest_{n}.csv")
    with open(manifest, "w") as f:
        f.write("video_id,path\n")
        for i in range(n):
            p = os.path.join(vids, f"clip_{i:06d}.mp4")
            if not os.path.exists(p):
                os.link(src, p)
            f.write(f"clip_{i:06d},{p}\n")
    return manifest


def run(a, vidfeat, manifest, out):
    for p in (out, out + ".journal", out + ".lock"):
        shutil.rmtree(p, ignore_errors=True) if os.path.isdir(p) else (os.path.exists(p) and os.remove(p))
    wrapped = ["sh", "-c", '/usr/bin/time -f "scale-bench-rss $OMPI_COMM_WORLD_RANK %M" "$@"', "sh", vidfeat]
    cmd = ["mpirun", "-n", str(a.ranks), "--oversubscribe", "--bind-to", "none"] + wrapped + [
        "extract", "--config", CONFIG, "--random-weights", "1", "--threads", "1", "--manifest", manifest,
        "--output", out]
    for s in SETS:
        cmd += ["--set", s]
    cmd += a.extra
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    log = p.stdout + p.stderr
    with open(os.path.join(a.work, "scale.log"), "w") as f:
        f.write(" ".join(cmd) + "\n" + log)
    if p.returncode != 0:
        sys.exit(f"scale bench: vidfeat exited {p.returncode} (log: {a.work}/scale.log):\n{log[-3000:]}")
    ranks = {}
    for m in RANK_LINE.finditer(log):
        r = int(m.group(1))
        ranks[r] = dict(videos=int(m.group(2)), clips=int(m.group(3)), busy=float(m.group(4)),
                        wall=float(m.group(5)), model=float(m.group(7)), waiting=float(m.group(8)),
                        write=float(m.group(9)))
    for m in RSS_LINE.finditer(log):
        ranks.setdefault(int(m.group(1)), {})["rss_mb"] = int(m.group(2)) / 1024
    return ranks, cmd


def file_sizes(out):
    import h5py
    with h5py.File(out, "r") as f:
        rows, dim = f["features"].shape[0], f["features"].shape[1]
        tables = {k: f[k].id.get_storage_size() for k in f.keys()}
        complete = int((f["videos"]["status"] == 1).sum())
    return dict(size=os.path.getsize(out), rows=rows, dim=dim, tables=tables, complete=complete)


def mark(ok):
    return "✅" if ok else "❌"


def render(a, ranks, sizes, meta):
    feature_bytes = sizes["rows"] * sizes["dim"] * 4
    overhead = sizes["size"] / feature_bytes - 1
    L = [BEGIN, "", "## The output at scale", "",
         f"{meta['date']}, commit {meta['commit']}, {meta['cpu']}. `mpirun -n {a.ranks} vidfeat extract`, "
         f"{a.videos:,} generated {a.seconds}-second videos (64x48 H.264, 50 frames; hard links of one file, "
         "each its own id and path), SLOW_8x8_R50 with random weights at a 32-pixel crop (every layer at full "
         "width: the 2048-d feature), one segment per video, one thread per rank, on this machine's "
         f"{os.cpu_count()} cores. Goals: file overhead < {OVERHEAD_GOAL:.0%} of the feature bytes; "
         f"HDF5 ≤ {HDF5_GOAL:.0%} of wall on every rank.", "",
         "| rank | videos | wall s | idle | HDF5 s | HDF5 share | peak RSS MB |", "|---|---|---|---|---|---|---|"]
    for r in sorted(ranks):
        x = ranks[r]
        share = x["write"] / x["wall"]
        L.append(f"| {r} | {x['videos']} | {x['wall']:.1f} | {1 - x['busy'] / x['wall']:.0%} | {x['write']:.2f} | "
                 f"{share:.2%} {mark(share <= HDF5_GOAL)} | {x.get('rss_mb', 0):.0f} |")
    tables = ", ".join(f"`/{k}` {v / 1e6:.2f} MB" for k, v in sorted(sizes["tables"].items()))
    L += ["", f"File: {sizes['size'] / 1e6:.1f} MB for {feature_bytes / 1e6:.1f} MB of features "
          f"({sizes['rows']:,} rows × {sizes['dim']}; {sizes['complete']:,} videos complete): overhead "
          f"{overhead:.2%} {mark(overhead < OVERHEAD_GOAL)} ({tables}; the rest is HDF5's own metadata).", "",
          f"Command: `{meta['argv']}`", "", END, ""]
    return "\n".join(L)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(REPO, "build"))
    ap.add_argument("--videos", type=int, default=10000)
    ap.add_argument("--ranks", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=2)
    ap.add_argument("--work", default="/tmp/vidfeat-scale-bench")
    ap.add_argument("--out", default=os.path.join(REPO, "BENCHMARKS.md"))
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("extra", nargs="*", help="more vidfeat extract options, after --")
    a = ap.parse_args()
    vidfeat = os.path.join(os.path.abspath(a.build), "vidfeat")
    if not os.access(vidfeat, os.X_OK):
        sys.exit(f"scale bench: no {vidfeat} (build first, or give --build)")
    os.makedirs(a.work, exist_ok=True)
    manifest = make_videos(a.work, a.videos, a.seconds)
    out = os.path.join(a.work, "features.h5")
    ranks, _ = run(a, vidfeat, manifest, out)
    if len(ranks) != a.ranks or any("wall" not in x for x in ranks.values()):
        sys.exit(f"scale bench: per-rank summary lines missing ({sorted(ranks)}; log: {a.work}/scale.log)")
    sizes = file_sizes(out)
    meta = run_meta("scale.py")
    section = render(a, ranks, sizes, meta)
    print(section)
    if not a.no_write:
        write_section(a.out, section, BEGIN, END)
    return 0


if __name__ == "__main__":
    sys.exit(main())
