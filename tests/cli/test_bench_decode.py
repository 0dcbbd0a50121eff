"""`vidfeat bench decode`: the decode side alone (issue 18), on videos made here.

  test_bench_decode.py VIDFEAT SOURCE_DIR

A 100-frame H.264 video (25 fps, no B-frames) with TINY's clips at SAMPLING_RATE 1 and 8 and
with --clip-seconds 1: the decoded frames, the clips (equal to the segments `vidfeat extract` writes
with the same settings), and the frames converted to RGB: every frame some clip uses and at most
one more (the tail's padding frame), so at rate 8 most frames are decoded but never converted. A
missing and a corrupt file fail with their path named, exit code 3, and the good video given after
them is still measured; --repeat and --help; a missing --config is refused.
"""
import json
import os
import subprocess
import sys
import tempfile

import h5py

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import vftest  # noqa: E402
from vftest import TINY, check  # noqa: E402

VIDFEAT, SRC = sys.argv[1:3]
CONFIG = os.path.join(SRC, "configs/Kinetics/SLOW_8x8_R50.yaml")
FRAMES, T = 100, 4  # the video's frames; DATA.NUM_FRAMES of TINY


def run(*args):
    return subprocess.run([VIDFEAT] + list(args), capture_output=True, text=True, env=vftest.MPI_ENV,
                          timeout=300)


def bench(tmp, videos, *extra):
    js = os.path.join(tmp, "bench.json")
    if os.path.exists(js):
        os.remove(js)
    r = run("bench", "decode", *videos, "--config", CONFIG, *TINY, "--threads", "1", "--json", js, *extra)
    data = json.load(open(js)) if os.path.exists(js) else {"videos": []}
    return r, data


def used_frames(n, rate):
    """Frames the back-to-back clips of T frames every `rate` frames take from n frames."""
    span = T * rate
    return len({k * span + i * rate for k in range((n + span - 1) // span) for i in range(T)
                if k * span + i * rate < n})


def extracted_segments(tmp, video, name, *extra):
    manifest = vftest.write_manifest(tmp, [("v", video)], name=name + ".csv")
    out = os.path.join(tmp, name + ".h5")
    r = run("extract", "--config", CONFIG, "--random-weights", "1", "--threads", "1", *TINY,
            "--manifest", manifest, "--output", out, *extra)
    if not check(r.returncode == 0, f"extract {name} exits 0 (got {r.returncode}: {r.stderr[-300:]})"):
        return -1
    with h5py.File(out, "r") as f:
        return len(f["segments"])


tmp = tempfile.mkdtemp(prefix="vf_bench_decode_")
video = os.path.join(tmp, "good.mp4")
subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                "testsrc2=size=96x64:rate=25", "-frames:v", str(FRAMES), "-c:v", "libx264", "-bf", "0",
                "-pix_fmt", "yuv420p", video], check=True)

for rate in (1, 8):
    r, data = bench(tmp, [video], "--set", f"DATA.SAMPLING_RATE={rate}")
    check(r.returncode == 0, f"rate {rate}: exit 0 (got {r.returncode}: {r.stderr[-300:]})")
    v = (data["videos"] or [{}])[0]
    check(v.get("ok") is True and v.get("decoded_frames") == FRAMES,
          f"rate {rate}: {FRAMES} frames decoded (got {v.get('decoded_frames')})")
    check(data.get("sampling_rate") == rate and data.get("num_frames") == T,
          f"rate {rate}: the JSON names the clips' geometry ({data.get('num_frames')}x{data.get('sampling_rate')})")
    want_clips = vftest.segments_for(FRAMES, T * rate)
    check(v.get("clips") == want_clips, f"rate {rate}: {want_clips} clips (got {v.get('clips')})")
    seg = extracted_segments(tmp, video, f"rate{rate}", "--set", f"DATA.SAMPLING_RATE={rate}")
    check(seg == v.get("clips"), f"rate {rate}: as many clips as extract's segments ({seg})")
    used = used_frames(FRAMES, rate)
    conv = v.get("frames_converted", -1)
    check(used <= conv <= used + 1, f"rate {rate}: {conv} frames converted, the {used} clips use (+1 pad)")
    check(v.get("seconds", 0) > 0 and abs(v["frames_per_second"] - FRAMES / v["seconds"]) <= 0.01 * v["frames_per_second"],
          f"rate {rate}: frames/s = frames / seconds ({v.get('frames_per_second')})")
    check(f"{FRAMES}" in r.stdout and video in r.stdout, f"rate {rate}: the table lists the video and its frames")
    if rate == 8:
        check(conv < FRAMES // 4, f"rate 8: frames no clip uses are not converted ({conv} of {FRAMES})")

# Clips by time: one window per second of a 4 s video.
r, data = bench(tmp, [video], "--clip-seconds", "1")
v = (data["videos"] or [{}])[0]
seg = extracted_segments(tmp, video, "seconds", "--clip-seconds", "1")
check(r.returncode == 0 and v.get("clips") == 4 == seg,
      f"--clip-seconds 1: 4 clips, as extract's segments (got {v.get('clips')}, extract {seg})")

# Bad files fail alone, named; the good one after them is measured.
missing = os.path.join(tmp, "missing.mp4")
corrupt = os.path.join(tmp, "corrupt.mp4")
with open(corrupt, "wb") as f:
    f.write(b"\x00\x00\x00\x18ftypmp42" + os.urandom(4000))
r, data = bench(tmp, [missing, corrupt, video])
rows = {v["path"]: v for v in data["videos"]}
check(r.returncode == 3, f"a failed video: exit code 3 (got {r.returncode})")
for bad in (missing, corrupt):
    row = rows.get(bad, {})
    check(row.get("ok") is False and bad in row.get("error", ""), f"{os.path.basename(bad)}: failed, its path in the error ({row.get('error', '')[:120]})")
    check(bad in r.stdout and "FAILED" in r.stdout, f"{os.path.basename(bad)}: FAILED in the table")
check(rows.get(video, {}).get("decoded_frames") == FRAMES, "the good video after two bad ones is measured")

r, data = bench(tmp, [video], "--repeat", "3")
check(r.returncode == 0 and len(data["videos"]) == 1 and data["videos"][0]["decoded_frames"] == FRAMES,
      "--repeat 3: one row, the median run")

r = run("bench", "decode", video)
check(r.returncode != 0 and "--config" in r.stderr, f"no --config: refused naming it ({r.stderr.strip()[-160:]})")
r = run("bench", "decode", video, "--config", os.path.join(tmp, "nope.yaml"))
check(r.returncode != 0 and "nope.yaml" in r.stderr, f"a missing config: refused naming it ({r.stderr.strip()[-160:]})")
r = run("bench", "--help")
check(r.returncode == 0 and "--clip-seconds" in r.stdout and "--repeat" in r.stdout, "bench --help lists its options")

vftest.finish(tmp)
