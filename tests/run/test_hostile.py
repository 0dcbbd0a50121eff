"""Hostile inputs never stop the job: truncated and bit-flipped videos, empty / text / random
files, an audio-only file and a directory named like a video, next to a good video, extracted
with --skip-invalid by 2 ranks. Every entry ends complete or failed with a reason; the good video
is complete, decodes the frame count ffprobe measured (corpus.tsv) and equals a run of it alone.
The damaged files are cut and flipped here from files of the generated corpus (H.264 mp4 with
B-frames, VP9 WebM without a duration, H.264 + AAC at 981/50 fps).

  test_hostile.py VIDFEAT SOURCE_DIR CORPUS_DIR
"""
import os
import random
import subprocess
import sys
import tempfile

import h5py

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import vftest  # noqa: E402
from vftest import MPI_ENV as ENV, TINY, check, features_equal_alone, finish  # noqa: E402

VIDFEAT, SRC, CORPUS = sys.argv[1:4]
VIDEOS = vftest.use_corpus(CORPUS)
GOOD = "h264_bframes.mp4"
CONFIG = os.path.join(SRC, "configs/Kinetics/SLOW_8x8_R50.yaml")




def extract(n, manifest, out):
    cmd = ["mpirun", "-n", str(n), "--oversubscribe", VIDFEAT, "extract", "--config", CONFIG, "--random-weights",
           "5", "--threads", "1", "--skip-invalid", "--video-timeout", "60", "--manifest", manifest, "--output", out] + TINY
    return subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=600)


tmp = tempfile.mkdtemp(prefix="vidfeat-hostile-")
try:
    rnd = random.Random(7)
    rows = [("good", os.path.join(VIDEOS, GOOD))]
    for src in (GOOD, "vp9_no_duration.webm", "h264_981_50_aac.mp4"):
        data = open(os.path.join(VIDEOS, src), "rb").read()
        stem = os.path.splitext(src)[0]
        ext = os.path.splitext(src)[1]
        for frac in (0.1, 0.5, 0.9):
            p = os.path.join(tmp, f"{stem}_cut{int(frac * 100)}{ext}")
            open(p, "wb").write(data[: int(len(data) * frac)])
            rows.append((os.path.basename(p), p))
        flipped = bytearray(data)
        for _ in range(300):
            i = rnd.randrange(len(data) // 10, len(data))
            flipped[i] ^= 1 << rnd.randrange(8)
        p = os.path.join(tmp, f"{stem}_flipped{ext}")
        open(p, "wb").write(bytes(flipped))
        rows.append((os.path.basename(p), p))
    specials = {"empty.mp4": b"", "text.mp4": b"this is text, not a video\n",
                "random.mkv": bytes(rnd.randrange(256) for _ in range(100000))}
    for name, content in specials.items():
        p = os.path.join(tmp, name)
        open(p, "wb").write(content)
        rows.append((name, p))
    audio = os.path.join(tmp, "audio_only.m4a")
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "sine=d=2", "-c:a", "aac",
                    audio], check=True)
    rows.append(("audio_only", audio))
    d = os.path.join(tmp, "dir_named.mp4")
    os.makedirs(d)
    rows.append(("dir_named", d))
    manifest = os.path.join(tmp, "m.csv")
    with open(manifest, "w") as f:
        f.write("video_id,path\n" + "".join(f"{i},{p}\n" for i, p in rows))
    out = os.path.join(tmp, "o.h5")
    r = extract(2, manifest, out)
    check(r.returncode in (0, 3), f"the run finishes (exit {r.returncode}) {r.stderr[-1500:] if r.returncode not in (0, 3) else ''}")
    with h5py.File(out) as f:
        vids = {v["video_id"].decode(): v for v in vftest.video_table(f)}
        check(len(vids) == len(rows), f"every entry has a row ({len(vids)} of {len(rows)})")
        pending = [k for k, v in vids.items() if int(v["status"]) == 0]
        check(not pending, f"nothing left pending: {pending}")
        unexplained = [k for k, v in vids.items() if int(v["status"]) == 2 and not v["error"]]
        check(not unexplained, f"every failure has a reason: {unexplained}")
        for k in ("empty.mp4", "text.mp4", "random.mkv", "audio_only", "dir_named"):
            check(int(vids[k]["status"]) == 2, f"{k} is recorded as failed: {vids[k]['error'].decode()[:80]}")
        complete = sorted(k for k, v in vids.items() if int(v["status"]) == 1)
        print("complete:", complete)
        g = vids["good"]
        want = vftest.corpus_row(GOOD)["frames"]
        check(int(g["status"]) == 1 and int(g["decoded_frames"]) == want,
              f"the good video is complete with its {want} frames (ffprobe), got {int(g['decoded_frames'])}")
        good = f["features"][g["first_row"]:g["first_row"] + g["segment_count"]]
    alone_m = os.path.join(tmp, "alone.csv")
    open(alone_m, "w").write("video_id,path\ngood,%s\n" % os.path.join(VIDEOS, GOOD))
    alone = os.path.join(tmp, "alone.h5")
    r = extract(1, alone_m, alone)
    features_equal_alone(alone, good)
finally:
    finish(tmp)
