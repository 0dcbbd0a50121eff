"""The per-rank pipeline (decode worker -> bounded queue -> batches across videos) end to end.

  test_pipeline.py MODE VIDFEAT SOURCE_DIR CORPUS_DIR

MODE batching: the same videos of the generated corpus with --batch 1, --batch 3 --queue 1 and
  --batch 5 (clips of several videos share a forward; a broken video sits between good ones) give
  the same segments and features (to float rounding) and the same failures; the segment counts
  are ceil(frames / span) of the frame counts ffprobe measured (corpus.tsv).
MODE memory: peak RSS of one rank on a generated 1-minute and 20-minute video differs by <= 10%:
  the decode worker, the queue and the clip assembler hold a bounded number of frames.
"""
import os
import subprocess
import sys
import tempfile

import h5py
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import vftest  # noqa: E402
from vftest import MPI_ENV as ENV, TINY, check, failures, write_manifest  # noqa: E402

MODE, VIDFEAT, SRC, CORPUS = sys.argv[1:5]
VIDEOS = vftest.use_corpus(CORPUS)
CONFIG = os.path.join(SRC, "configs/Kinetics/SLOW_8x8_R50.yaml")


def extract(tmp, manifest, out, extra):
    """Runs one rank directly (MPI singleton); returns (exit code, output, peak RSS in MiB)."""
    cmd = [VIDFEAT, "extract", "--config", CONFIG, "--random-weights", "3", "--threads", "1",
           "--manifest", manifest, "--output", out] + TINY + extra
    log = os.path.join(tmp, os.path.basename(out) + ".log")
    with open(log, "w") as f:
        p = subprocess.Popen(cmd, env=ENV, stdout=f, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(p.pid, 0)
    text = open(log).read()
    return os.waitstatus_to_exitcode(status), text, usage.ru_maxrss / 1024.0


def read(path):
    """video id -> (status, features, [start_time, end_time] rows)."""
    out = {}
    with h5py.File(path, "r") as f:
        videos = vftest.video_table(f)
        feats = f["features"][:]
        seg = f["segments"][:]
        for v in videos:
            rows = slice(int(v["first_row"]), int(v["first_row"]) + int(v["segment_count"]))
            spans = np.stack([seg["start_time"][rows], seg["end_time"][rows]], axis=1)
            out[v["video_id"].decode()] = (int(v["status"]), feats[rows], spans)
    return out


def batching(tmp):
    bad = os.path.join(tmp, "broken.mp4")
    with open(bad, "w") as f:
        f.write("not a video\n")
    good = {"ntsc": "h264_981_50_aac.mp4", "bframes": "h264_bframes.mp4", "vp8": "vp8.webm",
            "rot": "rot90.mov"}
    rows = [("ntsc", os.path.join(VIDEOS, good["ntsc"])), ("broken", bad),
            ("bframes", os.path.join(VIDEOS, good["bframes"])), ("vp8", os.path.join(VIDEOS, good["vp8"])),
            ("rot", os.path.join(VIDEOS, good["rot"]))]
    m = write_manifest(tmp, rows)
    runs = {}
    for name, extra in (("b1", ["--batch", "1"]), ("b3q1", ["--batch", "3", "--queue", "1"]),
                        ("b5", ["--batch", "5"]), ("b3idle", ["--batch", "3", "--decode-priority", "idle"])):
        out = os.path.join(tmp, name + ".h5")
        rc, text, _ = extract(tmp, m, out, extra)
        check(rc == 3, f"{name}: exit 3 (one video failed), got {rc}")
        if rc not in (0, 3):
            print(text[-3000:])
            return
        runs[name] = read(out)
    ref = runs["b1"]
    check(ref["broken"][0] == 2 and all(ref[v][0] == 1 for v in good),
          "b1: the broken video failed, the others are complete")
    counts = {v: len(ref[v][1]) for v in good}
    want = {v: vftest.segments_for(vftest.corpus_row(name)["frames"], vftest.TINY_SPAN) for v, name in good.items()}
    check(counts == want, f"b1: segments per video are ceil(frames / {vftest.TINY_SPAN}) of ffprobe's counts: "
                          f"{counts} vs {want}")
    total = sum(counts.values())
    check(total > 5, f"b1: {total} segments over the good videos (enough to fill batches)")
    for name in ("b3q1", "b5", "b3idle"):
        for vid, (status, feats, spans) in ref.items():
            s2, f2, sp2 = runs[name][vid]
            check(s2 == status, f"{name} {vid}: status {s2} == {status}")
            check(np.array_equal(sp2, spans), f"{name} {vid}: same segment spans")
            if len(feats):
                err = float(np.linalg.norm(f2 - feats) / max(np.linalg.norm(feats), 1e-30))
                check(f2.shape == feats.shape and err <= 1e-5, f"{name} {vid}: features rel. error {err:.2e} <= 1e-5")
    rc, text, _ = extract(tmp, m, os.path.join(tmp, "bad.h5"), ["--decode-priority", "low"])
    check(rc != 0 and "--decode-priority must be normal or idle" in text, "--decode-priority low is refused")


def memory(tmp):
    peaks = {}
    for minutes in (1, 20):
        path = os.path.join(tmp, f"long{minutes}.mp4")
        subprocess.run(["ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i",
                        f"testsrc=size=160x120:rate=10:duration={minutes * 60}", "-c:v", "libx264",
                        "-preset", "ultrafast", "-g", "250", "-pix_fmt", "yuv420p", path], check=True)
        m = write_manifest(tmp, [(f"long{minutes}", path)])
        out = os.path.join(tmp, f"long{minutes}.h5")
        rc, text, peak = extract(tmp, m, out, ["--batch", "2", "--set", "DATA.SAMPLING_RATE=8"])
        check(rc == 0, f"{minutes} min: exit 0, got {rc}")
        if rc != 0:
            print(text[-3000:])
        with h5py.File(out, "r") as f:
            n = int(f["videos"][0]["segment_count"])
        expected = (minutes * 60 * 10) // (4 * 8)
        check(n >= expected, f"{minutes} min: {n} segments (>= {expected})")
        peaks[minutes] = peak
        print(f"{minutes} min: peak RSS {peak:.1f} MiB, {n} segments")
    growth = peaks[20] / peaks[1] - 1.0
    check(growth <= 0.10, f"peak RSS 1 min {peaks[1]:.1f} MiB -> 20 min {peaks[20]:.1f} MiB: growth {growth:+.1%} <= 10%")


with tempfile.TemporaryDirectory() as tmp:
    {"batching": batching, "memory": memory}[MODE](tmp)
sys.exit(1 if failures else 0)
