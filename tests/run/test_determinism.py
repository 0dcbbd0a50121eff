"""Features do not depend on --threads, the number of ranks, --batch or --queue (docs/DESIGN.md,
"Determinism"), for good videos and for damaged ones.

  test_determinism.py VIDFEAT SOURCE_DIR

Makes its own videos with the ffmpeg CLI (a 4 s testsrc2 pattern at 160x120): good H.264 (B-frames)
and VP9; the same streams with bits flipped in the middle of the file, with bytes cut out of a GOP
in the middle, and truncated. Then runs `vidfeat extract` (the tiny SLOW model of vftest.TINY,
random weights) with --threads 1/2/4, mpirun -n 1 and -n 3, --batch 1/4, --queue 1/8, and once
pinned to one core (FFmpeg then picks one codec thread: no frame threading at all). Checks, per
video id across all runs: status, decoded frames, duration, fps, decode errors, error message,
the segment table and the feature rows are bit-identical. And that the policy was exercised:
every damaged stream decoded with several codec threads was decoded again single-threaded (the
log says so), no good one was, and the pinned run never needed to.
"""
import hashlib
import os
import random
import shutil
import subprocess
import sys
import tempfile

import h5py

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import vftest  # noqa: E402
from vftest import MPI_ENV, TINY, check, finish, write_manifest  # noqa: E402

VIDFEAT, SRC = sys.argv[1:3]
CONFIG = os.path.join(SRC, "configs/Kinetics/SLOW_8x8_R50.yaml")
REDO = "decoding it again single-threaded"


def ffmpeg(*args):
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", *args], check=True)


def damage(src, dst, kind, seed=0):
    """A damaged copy of `src`: `flip` flips one bit in every 64 bytes (positions drawn with `seed`)
    of the middle fifth of the file; `cut` removes the middle tenth (part of a GOP: the GOP is
    1 s, a tenth of the file is 0.4 s); `trunc` keeps the first 70 %."""
    b = bytearray(open(src, "rb").read())
    n = len(b)
    if kind == "flip":
        r = random.Random(seed)
        lo, hi = int(n * 0.4), int(n * 0.6)
        for _ in range((hi - lo) // 64):
            b[r.randrange(lo, hi)] ^= 1 << r.randrange(8)
    elif kind == "cut":
        del b[int(n * 0.45):int(n * 0.55)]
    elif kind == "trunc":
        del b[int(n * 0.7):]
    open(dst, "wb").write(b)


def make_videos(tmp):
    """(video id, path) of the good and damaged videos; and the ids of the damaged ones whose
    damage FFmpeg's decoder reports (all of them here, checked below through vidfeat's log)."""
    src = "testsrc2=size=160x120:rate=25:duration=4"
    p = lambda name: os.path.join(tmp, name)  # noqa: E731
    ffmpeg("-f", "lavfi", "-i", src, "-c:v", "libx264", "-preset", "veryfast", "-g", "25", "-bf", "2",
           "-pix_fmt", "yuv420p", p("good_h264.mkv"))
    ffmpeg("-f", "lavfi", "-i", src, "-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8",
           "-g", "25", "-b:v", "200k", p("good_vp9.webm"))
    # The same streams in containers whose demuxers resync inside damage (MPEG-TS, IVF): bytes cut
    # out of a GOP there leave frames that reference missing ones (Matroska resyncs at the next
    # cluster, a keyframe, and hides the cut).
    ffmpeg("-i", p("good_h264.mkv"), "-c", "copy", p("good_h264.ts"))
    ffmpeg("-i", p("good_vp9.webm"), "-c", "copy", p("good_vp9.ivf"))
    damaged = {
        "flip_h264_a": ("good_h264.mkv", "flip", 1, "mkv"),
        "flip_h264_b": ("good_h264.mkv", "flip", 2, "mkv"),
        "flip_h264_ts": ("good_h264.ts", "flip", 3, "ts"),
        "flip_vp9": ("good_vp9.webm", "flip", 4, "webm"),
        "cut_h264": ("good_h264.ts", "cut", 0, "ts"),
        "cut_vp9": ("good_vp9.ivf", "cut", 0, "ivf"),
        "trunc_h264": ("good_h264.ts", "trunc", 0, "ts"),
    }
    rows = [("good_h264", p("good_h264.mkv")), ("good_vp9", p("good_vp9.webm")), ("good_h264_ts", p("good_h264.ts"))]
    for vid, (base, kind, seed, ext) in damaged.items():
        damage(p(base), p(f"{vid}.{ext}"), kind, seed)
        rows.append((vid, p(f"{vid}.{ext}")))
    # A truncated file whose damage no decoder sees (the Matroska demuxer stops at the cut): it
    # must come out the same anyway.
    damage(p("good_vp9.webm"), p("trunc_vp9.webm"), "trunc")
    rows.append(("trunc_vp9", p("trunc_vp9.webm")))
    return rows, set(damaged)


def framemd5(path, threads):
    r = subprocess.run(["ffmpeg", "-nostdin", "-v", "quiet", "-threads", str(threads), "-i", path, "-f", "framemd5", "-"],
                       capture_output=True)
    return hashlib.sha256(r.stdout).hexdigest()


def per_video(path):
    """video id -> everything recorded about it that must not depend on how the job ran (not its
    row numbers: the row order depends on the ranks)."""
    out = {}
    with h5py.File(path, "r") as f:
        feats, segs = f["features"][:], f["segments"][:]
        for v in vftest.video_table(f):
            a, n = int(v["first_row"]), int(v["segment_count"])
            seg = segs[a:a + n][["segment", "first_frame", "last_frame", "start_time", "end_time", "padded_frames"]]
            out[v["video_id"].decode()] = dict(
                status=int(v["status"]), frames=int(v["decoded_frames"]), duration=float(v["duration"]),
                fps=float(v["fps"]), decode_errors=int(v["decode_errors"]), error=v["error"].decode(),
                segments=seg.tobytes(), count=n, features=hashlib.sha256(feats[a:a + n].tobytes()).hexdigest())
    return out


def run(tmp, name, ranks, args, pin=False):
    out = os.path.join(tmp, f"{name}.h5")
    cmd = (["taskset", "-c", "0"] if pin else []) + [
        "mpirun", "-n", str(ranks), "--oversubscribe", "--allow-run-as-root", "--bind-to", "none", VIDFEAT, "extract", "--config", CONFIG,
        "--random-weights", "3", *TINY, "--manifest", os.path.join(tmp, "m.csv"), "--output", out, "--wave", "3", *args]
    r = subprocess.run(cmd, env=MPI_ENV, capture_output=True, text=True)
    check(r.returncode in (0, 3), f"{name}: the job ran (exit {r.returncode}) {r.stderr[-1500:] if r.returncode not in (0, 3) else ''}")
    redone = {line.split(": damaged stream")[0].rsplit("] ", 1)[-1] for line in r.stderr.splitlines() if REDO in line}
    return (per_video(out) if os.path.exists(out) else {}), redone


def main():
    tmp = tempfile.mkdtemp(prefix="vidfeat-determinism-")
    rows, damaged = make_videos(tmp)
    write_manifest(tmp, rows)
    path_of = dict(rows)

    # The premise, for the record: FFmpeg's own frame-threaded decode of a damaged H.264 stream
    # differs from its single-threaded one (what the policy protects the features from).
    differs = [vid for vid in sorted(damaged) if "h264" in vid and framemd5(path_of[vid], 1) != framemd5(path_of[vid], 4)]
    print(f"note: ffmpeg -threads 1 vs -threads 4 decode different pictures for {differs}")

    runs = [  # name, ranks, extra arguments, pinned to one core
        ("t1_b1", 1, ["--threads", "1", "--batch", "1"], False),
        ("t2_b4_q1", 1, ["--threads", "2", "--batch", "4", "--queue", "1"], False),
        ("t4_b1_q8", 1, ["--threads", "4", "--batch", "1", "--queue", "8"], False),
        ("r3_t1_b4", 3, ["--threads", "1", "--batch", "4"], False),
        ("r3_t2_b1", 3, ["--threads", "2", "--batch", "1"], False),
        ("pinned_t1_b4", 1, ["--threads", "1", "--batch", "4"], True),
    ]
    results = {}
    for name, ranks, args, pin in runs:
        results[name], redone = run(tmp, name, ranks, args, pin)
        redone_ids = {vid for vid, p in rows if p in redone}
        if pin or len(os.sched_getaffinity(0)) == 1:
            check(not redone_ids, f"{name}: one core, so one codec thread: nothing decoded twice ({sorted(redone_ids)})")
        else:
            check(redone_ids == damaged, f"{name}: every damaged stream, and no good one, was decoded again "
                                         f"single-threaded: {sorted(redone_ids)}")
    if len(os.sched_getaffinity(0)) == 1:
        print("note: one core here, so FFmpeg decodes single-threaded in every run: the policy is not exercised")
    ref = results["t1_b1"]
    check(sorted(ref) == sorted(path_of), f"every video has a row: {sorted(ref)}")
    for vid in ("good_h264", "good_vp9", "good_h264_ts"):
        check(ref.get(vid, {}).get("status") == 1 and ref[vid]["decode_errors"] == 0, f"{vid} complete, no decode errors")
    print("reference run: " + ", ".join(f"{vid} {v['status']}/{v['frames']} frames/{v['count']} segments/"
                                        f"{v['decode_errors']} errors" for vid, v in sorted(ref.items())))
    for name, res in results.items():
        if name == "t1_b1":
            continue
        for vid in sorted(path_of):
            a, b = ref.get(vid), res.get(vid)
            same = a == b
            diff = "" if same or a is None or b is None else ", ".join(k for k in a if a[k] != b[k])
            check(same, f"{name}: {vid} bit-identical to t1_b1 (features, segments, status, counts){' - differs: ' + diff if diff else ''}")
    finish(tmp)


if __name__ == "__main__":
    main()
