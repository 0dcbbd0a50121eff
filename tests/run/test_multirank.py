"""Multi-rank tests of `vidfeat extract` (mpirun -n 1/2/3 on one machine), checked with h5py.

  test_multirank.py MODE VIDFEAT SOURCE_DIR CORPUS_DIR
  test_multirank.py shared VIDFEAT SOURCE_DIR SHARED_DIR

MODE: ranks | resume | manifest | unbalanced | timeout | grow, over the generated corpus
(tests/support/make_corpus.py; corpus.tsv has the frame counts ffprobe measured). Mode `shared` is
`ranks` over the real videos in SHARED_DIR/videos (the ctest suite `shared`): it exits 77
(skipped) when that folder is absent. Uses a tiny SLOW model (random weights) so each run takes
seconds.
"""
import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import h5py

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import vftest  # noqa: E402
from vftest import MPI_ENV as ENV, TINY, check, failures, stem, write_manifest as manifest  # noqa: E402

MODE, VIDFEAT, SRC, VIDEO_DIR = sys.argv[1:5]
CONFIG = os.path.join(SRC, "configs/Kinetics/SLOW_8x8_R50.yaml")
if MODE == "shared":
    # $VIDFEAT_SHARED_DIR overrides the folder, as for the C++ shared suite (test_support.h).
    VIDEOS = os.path.join(os.environ.get("VIDFEAT_SHARED_DIR") or VIDEO_DIR, "videos")
    if not os.path.isdir(VIDEOS):
        vftest.skip("../shared/videos absent")
    # The real videos (SHARED_DIR/videos/README.md says what each is).
    GOOD = ["v_GGSY1Qvo990.mp4", "chaplin.mp4", "big_buck_bunny_432_433.webm", "no_duration.webm",
            "video_90.mov", "video_270.mov", "unordered.mov", "-video-with-dash-.mp4"]
    FRAMES = None
else:
    VIDEOS = vftest.use_corpus(VIDEO_DIR)
    # Non-integer fps with AAC audio, B-frames, VP8 with no frame count in its header, VP9 with no
    # duration in its container, rotation 90 and 270, a short MOV out of presentation order, 1x1
    # pixels, a name like an option, a non-ASCII name, a name with a space.
    GOOD = ["h264_981_50_aac.mp4", "h264_bframes.mp4", "vp8.webm", "vp9_no_duration.webm",
            "rot90.mov", "rot270.mov", "bframes.mov", "tiny_1x1.mp4", "-dash.mp4", "vidéo_ü.mp4",
            "with space.mp4"]
    FRAMES = {stem(r["name"]): r["frames"] for r in vftest.corpus()}  # ffprobe -count_frames
    DAMAGED = "badnal_h264.mp4"  # a packet the H.264 decoder rejects (a counted decode error)


def mpirun(n, args, **kw):
    cmd = ["mpirun", "-n", str(n), "--oversubscribe", VIDFEAT, "extract", "--config", CONFIG,
           "--random-weights", "3", "--threads", "1"] + TINY + args
    return subprocess.run(cmd, env=ENV, capture_output=True, text=True, **kw)


def per_video(path):
    """video id -> (status, sha256 of its feature rows, segment table rows)."""
    out = {}
    with h5py.File(path, "r") as f:
        feats, segs = f["features"][:], f["segments"][:]
        for v in vftest.video_table(f):
            a, n = int(v["first_row"]), int(v["segment_count"])
            rows = segs[a:a + n][["segment", "first_frame", "last_frame", "start_time", "end_time", "padded_frames"]]
            out[v["video_id"].decode()] = (int(v["status"]), hashlib.sha256(feats[a:a + n].tobytes()).hexdigest(),
                                           rows.tobytes(), n)
    return out


def decoded_frames(path):
    """video id -> decoded_frames as the file records it."""
    with h5py.File(path, "r") as f:
        return {v["video_id"].decode(): int(v["decoded_frames"]) for v in vftest.video_table(f)}


def mode_ranks(tmp):
    m = manifest(tmp, [(stem(v), os.path.join(VIDEOS, v)) for v in GOOD])
    results = {}
    for n in (1, 2, 3):
        out = os.path.join(tmp, f"r{n}.h5")
        r = mpirun(n, ["--manifest", m, "--output", out, "--wave", "2"])
        check(r.returncode == 0, f"{n} rank(s): exit 0 (got {r.returncode}) {r.stderr[-2000:] if r.returncode else ''}")
        results[n] = per_video(out)
    check(len(results[1]) == len(GOOD) and all(s == 1 for s, *_ in results[1].values()), "every video complete")
    if FRAMES:
        got = decoded_frames(os.path.join(tmp, "r1.h5"))
        want = {stem(v): FRAMES[stem(v)] for v in GOOD}
        check(got == want, f"decoded frames per video are ffprobe's counts (corpus.tsv): {got} vs {want}")
        n = {k: v[3] for k, v in results[1].items()}
        want_n = {k: vftest.segments_for(f, vftest.TINY_SPAN) for k, f in want.items()}
        check(n == want_n, f"segments per video are ceil(frames / {vftest.TINY_SPAN}): {n} vs {want_n}")
    for n in (2, 3):
        check(results[n] == results[1], f"{n} ranks: features and segments bit-identical to 1 rank, per video id")


def mode_resume(tmp):
    rows = [(f"{k}_{stem(v)}", os.path.join(VIDEOS, v)) for k in range(3) for v in GOOD]
    m = manifest(tmp, rows)
    ref = os.path.join(tmp, "ref.h5")
    r = mpirun(1, ["--manifest", m, "--output", ref])
    check(r.returncode == 0, "uninterrupted reference run")
    out = os.path.join(tmp, "crash.h5")
    args = ["--manifest", m, "--output", out, "--wave", "1", "--wave-seconds", "0"]
    cmd = ["mpirun", "-n", "3", "--oversubscribe", VIDFEAT, "extract", "-v", "--config", CONFIG,
           "--random-weights", "3", "--threads", "1"] + TINY + args  # -v: a line per finished video
    log = open(os.path.join(tmp, "crash.log"), "w")
    p = subprocess.Popen(cmd, env=ENV, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    # Wait until some videos are done (some waves written), then kill -9 one rank.
    deadline = time.time() + 120
    while time.time() < deadline and p.poll() is None:
        text = open(os.path.join(tmp, "crash.log")).read()
        if len(re.findall(r": \d+ frames, \d+ segments", text)) >= 6:
            break
        time.sleep(0.05)
    ranks = subprocess.run(["pgrep", "-f", "-s", str(p.pid), "vidfeat extract"], capture_output=True, text=True)
    pids = [int(x) for x in ranks.stdout.split() if int(x) != p.pid]
    victim = None
    for pid in pids:
        try:
            if "mpirun" not in open(f"/proc/{pid}/cmdline").read():
                victim = pid
                break
        except OSError:
            pass
    check(victim is not None and p.poll() is None, "a rank was running when killed")
    if victim:
        os.kill(victim, signal.SIGKILL)
    try:
        rc = p.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        rc = p.wait()
    check(rc != 0, f"the killed job reports failure (rc {rc})")
    # The other ranks may outlive mpirun by a moment: read the file once none of the job is left.
    deadline = time.time() + 30
    while time.time() < deadline and subprocess.run(["pgrep", "-s", str(p.pid)], capture_output=True).stdout.strip():
        time.sleep(0.05)
    left = subprocess.run(["pgrep", "-s", str(p.pid)], capture_output=True, text=True).stdout.split()
    check(not left, f"no process of the killed job is left after 30 s: {left}")
    before = per_video(out)  # readable after the crash
    done = sum(1 for s, *_ in before.values() if s == 1)
    print(f"after the crash: {done} of {len(rows)} videos complete")
    check(0 < done < len(rows), "the crash left a partly written, readable file")
    r = mpirun(3, args)
    check(r.returncode == 0, f"rerun completes (rc {r.returncode}) {r.stderr[-1500:] if r.returncode else ''}")
    # Results the ranks had journaled but not yet written into the file are written first (the
    # store's recovery says how many); the rest of what is missing is extracted again.
    m = re.search(r"(\d+) journaled results the file lacks are written first", r.stderr)
    journaled = int(m.group(1)) if m else 0
    print(f"rerun: {journaled} result(s) recovered from the journals")
    want_log = f"{len(rows) - done - journaled} to extract, {done + journaled} already complete"
    check(want_log in r.stderr, f"rerun only does what was missing: '{want_log}'" +
          ("" if want_log in r.stderr else "\n" + r.stderr[-3000:]))
    after, want = per_video(out), per_video(ref)
    check(after == want, "after resume every video is there once, features equal an uninterrupted run's")
    with h5py.File(out, "r") as f:
        used = sum(int(v["segment_count"]) for v in vftest.video_table(f))
        check(f["features"].shape[0] == used, "no orphan feature rows left behind")


def mode_manifest(tmp):
    text = os.path.join(tmp, "text.mp4")
    open(text, "w").write("not a video\n")
    rows = [("h264", os.path.join(VIDEOS, "h264_bframes.mp4")), ("corrupted", os.path.join(VIDEOS, DAMAGED)),
            ("text", text), ("missing", os.path.join(tmp, "missing.mp4")), ("h264", os.path.join(VIDEOS, "bframes.mov")),
            ("vp8", os.path.join(VIDEOS, "vp8.webm"))]
    m = manifest(tmp, rows)
    out = os.path.join(tmp, "m.h5")
    r = mpirun(2, ["--manifest", m, "--output", out])
    check(r.returncode != 0 and not os.path.exists(out), "manifest problems stop the job before any output")
    check("missing.mp4: file does not exist" in r.stderr and "duplicate video id 'h264'" in r.stderr,
          "one report lists every problem")
    r = mpirun(2, ["--manifest", m, "--output", out, "--skip-invalid"])
    check(r.returncode == 3, f"--skip-invalid: exit 3 when videos failed (got {r.returncode})")
    v = per_video(out)
    check(v["h264"][0] == 1 and v["vp8"][0] == 1 and v["corrupted"][0] == 1, f"the good ones (and {DAMAGED}) complete")
    check(v["text"][0] == 2 and v["missing"][0] == 2, "the text file and the missing file are recorded as failed")
    with h5py.File(out, "r") as f:
        fails = {vftest.video_table(f)[int(x["video_row"])]["video_id"].decode(): x["stage"].decode() for x in f["failures"][:]}
        check(fails == {"text": "open", "missing": "manifest"}, f"failures table says where: {fails}")
        check(int(vftest.video_table(f)[[x.decode() for x in vftest.video_table(f)["video_id"]].index("corrupted")]["decode_errors"]) > 0,
              f"{DAMAGED}'s broken packets are counted")


def mode_unbalanced(tmp):
    def make(name, seconds):
        p = os.path.join(tmp, name)
        subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                        f"testsrc2=size=160x120:rate=25:duration={seconds}", "-c:v", "libx264", "-pix_fmt",
                        "yuv420p", p], check=True)
        return p
    rows = [("short%d" % i, make(f"s{i}.mp4", 2)) for i in range(5)] + [("long", make("long.mp4", 40))]
    m = manifest(tmp, rows)
    out = os.path.join(tmp, "u.h5")
    r = mpirun(2, ["--manifest", m, "--output", out])
    check(r.returncode == 0, "unbalanced run completes")
    ranks = re.findall(r"rank (\d+): (\d+) videos, \d+ clips, [\d.]+ clips/s, busy ([\d.]+) s of ([\d.]+) s \((\d+)% idle\)",
                       r.stderr)
    for rk, n, busy, wall, idle in ranks:
        print(f"rank {rk}: {n} videos, busy {busy} s of {wall} s, {idle}% idle")
    counts = sorted(int(n) for _, n, *_ in ranks)
    check(counts == [1, 5], f"the long video went to one rank, the five short ones to the other: {counts}")


def mode_grow(tmp):
    first = [(stem(v), os.path.join(VIDEOS, v)) for v in GOOD[:3]]
    broken = os.path.join(tmp, "later_fixed.mp4")
    open(broken, "w").write("not yet a video\n")
    m1 = manifest(tmp, first + [("later_fixed", broken)], "m1.csv")
    out = os.path.join(tmp, "g.h5")
    r = mpirun(2, ["--manifest", m1, "--output", out])
    check(r.returncode == 3, f"first run: one failed video, exit 3 (got {r.returncode})")
    before = per_video(out)
    more = [(stem(v), os.path.join(VIDEOS, v)) for v in GOOD[3:6]]
    m2 = manifest(tmp, first + [("later_fixed", broken)] + more, "m2.csv")
    r = mpirun(2, ["--manifest", m2, "--output", out])
    check("3 to extract, 3 already complete, 0 invalid, 1 failed before" in r.stderr,
          "a longer manifest adds only the new videos")
    after = per_video(out)
    check(all(after[k] == before[k] for k in before), "earlier videos untouched")
    check(all(after[k][0] == 1 for k, _ in more), "new videos complete")
    shutil.copy(os.path.join(VIDEOS, "h264_bframes.mp4"), broken)  # the user fixes the file
    r = mpirun(2, ["--manifest", m2, "--output", out])
    check(r.returncode == 3 and per_video(out)["later_fixed"][0] == 2, "without --retry-failed it stays failed")
    r = mpirun(2, ["--manifest", m2, "--output", out, "--retry-failed"])
    check(r.returncode == 0 and per_video(out)["later_fixed"][0] == 1, "--retry-failed completes it, exit 0")
    with h5py.File(out, "r") as f:
        check(len(f["failures"]) == 1, "the failed attempt stays in /failures as history")


def mode_timeout(tmp):
    # A video whose decoding alone takes well over the 1.5 s timeout on an idle machine: 10 min of
    # 640x360 at 30 fps (18000 frames, about 4 s of CPU to decode single-threaded; 2 min of
    # 320x240 once decoded in under 1.5 s and completed). Made fast: a 10 s clip, concatenated
    # 60 times without re-encoding.
    seg = os.path.join(tmp, "seg.mp4")
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    "testsrc2=size=640x360:rate=30:duration=10", "-c:v", "libx264", "-preset", "ultrafast",
                    "-crf", "36", "-pix_fmt", "yuv420p", seg], check=True)
    with open(os.path.join(tmp, "segs.txt"), "w") as f:
        f.write(f"file '{seg}'\n" * 60)
    long = os.path.join(tmp, "long.mp4")
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "concat", "-safe", "0", "-i",
                    os.path.join(tmp, "segs.txt"), "-c", "copy", long], check=True)
    m = manifest(tmp, [("long", long), ("short", os.path.join(VIDEOS, "rot90.mov"))])
    out = os.path.join(tmp, "t.h5")
    t0 = time.time()
    r = mpirun(1, ["--manifest", m, "--output", out, "--video-timeout", "1.5"])
    took = time.time() - t0
    check(r.returncode == 3, f"a timed-out video makes the run exit 3 (got {r.returncode})")
    v = per_video(out)
    check(v["long"][0] == 2 and v["short"][0] == 1, "the long video failed, the short one completed")
    with h5py.File(out, "r") as f:
        stages = [x["stage"].decode() for x in f["failures"][:]]
        check(stages == ["timeout"], f"recorded as a timeout: {stages}")
    print(f"run took {took:.1f} s")


tmp = tempfile.mkdtemp(prefix="vidfeat-mpi-")
try:
    {"ranks": mode_ranks, "shared": mode_ranks, "resume": mode_resume, "manifest": mode_manifest, "unbalanced": mode_unbalanced,
     "timeout": mode_timeout, "grow": mode_grow}[MODE](tmp)
finally:
    shutil.rmtree(tmp, ignore_errors=True)
print(f"{len(failures)} failed")
sys.exit(1 if failures else 0)
