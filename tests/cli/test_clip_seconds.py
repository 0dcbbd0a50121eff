"""Clips by time and the grounding layouts, end to end (issue 19).

  test_clip_seconds.py MODE VIDFEAT SOURCE_DIR      MODE: windows | export | models

windows: videos generated here with Debian's ffmpeg at 24, 25, 29.97 (30000/1001), 30 and 60 fps
and one with a variable frame rate, extracted with --clip-seconds 2 (and --clip-stride-seconds 1,
--tail drop); their /segments (window bounds, first and last frame taken, padding, the last
window) against the plan computed here from the frame times the videos were made with
(docs/DESIGN.md, "Clips by time"). Contradictory options and a resume with other windows are
refused.
export: --npz / --h5-per-video read back with numpy and h5py equal the output's /features rows;
--concat with the file's model, an unknown model named in the error, unsafe ids refused.
models: several models from one decode (--config A --config B): a tiny SLOW (bilinear, 4 frames
per window) and a tiny CLIP (Pillow bicubic, another size and normalisation, 1 frame per window);
each row's columns equal, bit for bit, what each model alone writes for the same windows; the
windows are the ones both have; model_parts and format 3; export --concat in either order;
inspect lists the columns; a rerun resumes, a run of one of the models is refused; contradictory
options refused; a format-2 file of one model is still resumed.
"""
import os
import subprocess
import sys
import tempfile
from fractions import Fraction

import h5py
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import vftest  # noqa: E402
from vftest import TINY, check  # noqa: E402

MODE, VIDFEAT, SRC = sys.argv[1:4]
CONFIG = os.path.join(SRC, "configs/Kinetics/SLOW_8x8_R50.yaml")
T = 4  # DATA.NUM_FRAMES of TINY


def run(*args):
    return subprocess.run([VIDFEAT] + list(args), capture_output=True, text=True, env=vftest.MPI_ENV)


def extract(manifest, out, *extra):
    return run("extract", "--config", CONFIG, "--random-weights", "1", "--threads", "1", *TINY,
               "--manifest", manifest, "--output", out, *extra)


def ffmpeg(out, *args):
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y"] + list(args) + [out], check=True)


def constant_rate(tmp, name, rate, frames):
    """A video of `frames` frames at `rate` (a Fraction): frame i at i/rate."""
    path = os.path.join(tmp, name)
    ffmpeg(path, "-f", "lavfi", "-i", f"testsrc2=size=96x64:rate={rate.numerator}/{rate.denominator}",
           "-frames:v", str(frames), "-c:v", "libx264", "-bf", "0", "-pix_fmt", "yuv420p")
    return path, [Fraction(i) / rate for i in range(frames)]


def variable_rate(tmp):
    """40 frames: 20 every 40 ms, then 20 every 100 ms (millisecond time base: exact)."""
    path = os.path.join(tmp, "vfr.mp4")
    ffmpeg(path, "-f", "lavfi", "-i", "testsrc2=size=96x64:rate=25", "-frames:v", "40",
           "-vf", "settb=1/1000,setpts='if(lt(N,20),N*0.04,0.8+(N-20)*0.1)/TB'", "-fps_mode", "passthrough", "-enc_time_base:v", "1:1000",
           "-video_track_timescale", "1000", "-c:v", "libx264", "-bf", "0", "-pix_fmt", "yuv420p")
    times = [Fraction(i * 40, 1000) if i < 20 else Fraction(800 + (i - 20) * 100, 1000) for i in range(40)]
    return path, times


def plan(times, S, D, repeat=True):
    """The windows of a video whose frames show at `times` (seconds from the first frame; the last
    lasting the mean interval, as vidfeat takes it): rows (index, first_frame, last_frame,
    padded_frames, start, end) relative to the first frame's time."""
    n_frames = len(times)
    end = times[-1] + (times[-1] - times[0]) / (n_frames - 1)
    g = Fraction(S) / T  # the sample interval (stride a whole number of them here: r = 1)
    step = int(Fraction(D) / g)
    assert Fraction(D) / g == step

    def frame_at(t):
        return max(i for i, ti in enumerate(times) if ti <= t)

    slots = 0
    while slots * g + g / 2 < end:
        slots += 1
    rows = []
    k = 0
    while True:
        first = k * step
        span_end = min(first + T, slots)
        row_end = span_end * g
        if first + T - 1 < slots:  # full
            rows.append((k, frame_at(first * g + g / 2), frame_at((span_end - 1) * g + g / 2), 0,
                         first * g, row_end))
            k += 1
            continue
        if repeat and first < slots and not (k > 0 and (k - 1) * step + T >= slots):
            padded = first + T - slots
            rows.append((k, frame_at(first * g + g / 2), frame_at((slots - 1) * g + g / 2), padded,
                         first * g, row_end))
        return rows


def stored(out):
    with h5py.File(out) as f:
        res = {}
        segs = f["segments"][:]
        for v in vftest.video_table(f):
            a, n = int(v["first_row"]), int(v["segment_count"])
            rows = segs[a:a + n]
            res[v["video_id"].decode()] = [(int(s["segment"]), int(s["first_frame"]), int(s["last_frame"]),
                                            int(s["padded_frames"]), float(s["start_time"]),
                                            float(s["end_time"])) for s in rows]
        return res, f.attrs["feature_name"]


def same(got, want):
    if len(got) != len(want):
        return False
    t0 = got[0][4] if got else 0.0
    for g, w in zip(got, want):
        if g[:4] != w[:4] or abs(g[4] - t0 - float(w[4])) > 1e-6 or abs(g[5] - t0 - float(w[5])) > 1e-6:
            return False
    return True


def mode_windows(tmp):
    videos = {}
    for name, rate, frames in [("r24", Fraction(24), 137), ("r25", Fraction(25), 131),
                               ("ntsc", Fraction(30000, 1001), 150), ("r30", Fraction(30), 151),
                               ("r60", Fraction(60), 283)]:
        videos[name] = constant_rate(tmp, name + ".mp4", rate, frames)
    videos["vfr"] = variable_rate(tmp)
    manifest = vftest.write_manifest(tmp, [(k, p) for k, (p, _) in videos.items()])
    for extra, S, D, repeat in [((), 2, 2, True), (("--clip-stride-seconds", "1"), 2, 1, True),
                                (("--tail", "drop"), 2, 2, False), (("--clip-seconds", "1"), 1, 1, True)]:
        out = os.path.join(tmp, "o.h5")
        args = list(extra) if "--clip-seconds" in extra else ["--clip-seconds", str(S)] + list(extra)
        r = extract(manifest, out, "--overwrite", *args)
        if not check(r.returncode == 0, f"extract {' '.join(args)}"):
            print(r.stderr[-2000:])
            continue
        got, feature_name = stored(out)
        for name, (_, times) in videos.items():
            want = plan(times, S, D, repeat)
            check(len(want) >= 1 and same(got[name], want),
                  f"{name} {' '.join(args)}: windows, frames taken, last window as planned\n"
                  f"     got  {got[name]}\n     want {[(a, b, c, d, float(e), float(f)) for a, b, c, d, e, f in want]}")
        check(f"one row per {S} s window" in feature_name and f"every {D} s" in feature_name,
              f"feature_name records the windows: {feature_name}")
    # Resuming with other windows, or frame-based clips, is refused, naming the difference.
    out = os.path.join(tmp, "o.h5")
    r = extract(manifest, out, "--clip-seconds", "2")
    check(r.returncode != 0 and "window" in r.stderr and "feature" in r.stderr,
          "resuming a --clip-seconds 1 output with --clip-seconds 2 is refused")
    r = extract(manifest, out)
    check(r.returncode != 0 and "feature" in r.stderr, "resuming it with frame-based clips is refused")
    for args, word in [(["--clip-seconds", "2", "--fps", "10"], "--fps"),
                       (["--clip-seconds", "2", "--stride", "4"], "--stride"),
                       (["--clip-stride-seconds", "1"], "--clip-stride-seconds needs --clip-seconds"),
                       (["--clip-seconds", "2", "--clip-stride-seconds", "0.3333"], "not a simple fraction")]:
        bad = os.path.join(tmp, "bad.h5")
        r = extract(manifest, bad, *args)
        check(r.returncode != 0 and word in r.stderr and not os.path.exists(bad),
              f"{' '.join(args)} is refused naming {word}, nothing written")


def mode_export(tmp):
    path, _ = constant_rate(tmp, "r25.mp4", Fraction(25), 131)
    short, _ = constant_rate(tmp, "short.mp4", Fraction(25), 20)
    manifest = vftest.write_manifest(tmp, [("clips/r25", path), ("plain", path), ("short", short)])
    out = os.path.join(tmp, "o.h5")
    r = extract(manifest, out, "--clip-seconds", "2", "--tail", "drop")
    check(r.returncode == 0, "extract --clip-seconds 2 --tail drop")
    with h5py.File(out) as f:
        feats, segs, model = f["features"][:], f["segments"][:], f.attrs["model_name"]
        model = model.decode() if isinstance(model, bytes) else str(model)
        rows = {v["video_id"].decode(): (int(v["first_row"]), int(v["segment_count"])) for v in vftest.video_table(f)}
    check(rows["short"][1] == 0, "a video shorter than one window has no window with --tail drop")
    npz, h5 = os.path.join(tmp, "npz"), os.path.join(tmp, "per_video.h5")
    r = run("export", out, "--npz", npz, "--h5-per-video", h5, "--concat", model)
    check(r.returncode == 0, f"export --npz --h5-per-video --concat {model}: {r.stderr[-500:]}")
    with h5py.File(h5) as g:
        for vid, (a, n) in rows.items():
            z = np.load(os.path.join(npz, vid + ".npz"))
            want = feats[a:a + n]
            check(z["features"].dtype == np.float32 and z["features"].shape == want.shape
                  and (z["features"] == want).all(), f"{vid}.npz['features'] equals its rows {want.shape}")
            check((z["start_time"] == segs[a:a + n]["start_time"]).all()
                  and (z["end_time"] == segs[a:a + n]["end_time"]).all(), f"{vid}.npz carries the window times")
            d = g[vid]
            check(d.dtype == np.float32 and d.shape == want.shape and (d[:] == want).all(),
                  f"per-video HDF5 dataset {vid} equals its rows")
            check((d.attrs["start_time"] == segs[a:a + n]["start_time"]).all()
                  and (d.attrs["end_time"] == segs[a:a + n]["end_time"]).all(),
                  f"dataset {vid}: start_time / end_time attributes")
        check(isinstance(g["clips"], h5py.Group), "a nested id is a group and a dataset")
    check(not any(x.endswith(".part") for x in os.listdir(tmp)), "no .part file left")
    r = run("export", out, "--npz", os.path.join(tmp, "npz2"), "--concat", f"{model},CLIP_ViT_B32")
    check(r.returncode != 0 and "CLIP_ViT_B32" in r.stderr and model in r.stderr
          and not os.path.exists(os.path.join(tmp, "npz2")),
          "--concat with a model the file does not hold names it, nothing written")
    r = run("export", out)
    check(r.returncode != 0 and "--npz" in r.stderr, "export without a layout says which to give")
    # Unsafe ids: refused for .npz like .npy; an id that is both a dataset and a group.
    m2 = vftest.write_manifest(tmp, [("../escaped", short), ("a", short), ("a/b", short)], name="m2.csv")
    out2 = os.path.join(tmp, "o2.h5")
    extract(m2, out2, "--clip-seconds", "0.5")
    r = run("export", out2, "--npz", os.path.join(tmp, "inner", "npz"), "--ids", "../escaped")
    check(r.returncode != 0 and "refusing to write outside" in r.stderr
          and not os.path.exists(os.path.join(tmp, "inner", "escaped.npz")), "an id with '..' is refused for --npz")
    bad = os.path.join(tmp, "conflict.h5")
    r = run("export", out2, "--h5-per-video", bad, "--ids", "a,a/b")
    check(r.returncode != 0 and "group" in r.stderr and not os.path.exists(bad),
          "ids 'a' and 'a/b' in one per-video HDF5 file are refused, nothing written")


def parts_text(f):
    p = f.attrs["model_parts"]
    return p.decode() if isinstance(p, bytes) else str(p)


def tiny_configs(tmp):
    """SLOW 8x8 scaled down as TINY does (a config file, so that --set does not reach CLIP), and a
    tiny CLIP of its own size, frames and normalisation."""
    text = open(CONFIG).read()
    for key, value in [("NUM_FRAMES", "4"), ("SAMPLING_RATE", "2"), ("TRAIN_JITTER_SCALES", "[64, 80]"),
                       ("TRAIN_CROP_SIZE", "64"), ("TEST_CROP_SIZE", "64"), ("WIDTH_PER_GROUP", "4")]:
        lines = [ln for ln in text.splitlines() if ln.strip().startswith(key + ":")]
        check(len(lines) == 1, f"SLOW config has one {key} line")
        indent = lines[0][:len(lines[0]) - len(lines[0].lstrip())]
        text = text.replace(lines[0], f"{indent}{key}: {value}")
    slow = os.path.join(tmp, "SLOW_tiny.yaml")
    open(slow, "w").write(text)
    clip = os.path.join(tmp, "CLIP_tiny.yaml")
    open(clip, "w").write("""TRAIN:
  ENABLE: False
DATA:
  NUM_FRAMES: 1
  TRAIN_JITTER_SCALES: [48, 48]
  TRAIN_CROP_SIZE: 48
  TEST_CROP_SIZE: 48
  TEST_RESIZE: pil_bicubic
  MEAN: [0.48145466, 0.4578275, 0.40821073]
  STD: [0.26862954, 0.26130258, 0.27577711]
CLIP: {PATCH_SIZE: 16, WIDTH: 32, LAYERS: 2, HEADS: 2, EMBED_DIM: 8}
MODEL: {ARCH: clip, MODEL_NAME: CLIP}
""")
    return slow, clip


def mode_models(tmp):
    slow, clip = tiny_configs(tmp)
    path, _ = constant_rate(tmp, "r25.mp4", Fraction(25), 131)  # 5.24 s: windows 0-2, 2-4, 4-6 (partial)
    # 4.8 s: SLOW has a partial last window (its first sample, 4.25 s, is before the end), CLIP has
    # none (its one sample, 5 s, is past it): the window only one model has is not kept.
    other, _ = constant_rate(tmp, "r25b.mp4", Fraction(25), 120)
    manifest = vftest.write_manifest(tmp, [("a", path), ("b", other)])

    def ex(out, configs, *extra):
        args = []
        for c in configs:
            args += ["--config", c]
        return run("extract", *args, "--random-weights", "1", "--threads", "1", "--manifest", manifest,
                   "--output", out, "--clip-seconds", "2", *extra)

    both, one_slow, one_clip = (os.path.join(tmp, n) for n in ("both.h5", "slow.h5", "clip.h5"))
    r = ex(both, [slow, clip])
    check(r.returncode == 0, f"extract with two models: {r.stderr[-800:]}")
    check(ex(one_slow, [slow]).returncode == 0 and ex(one_clip, [clip]).returncode == 0,
          "each model alone")
    with h5py.File(both) as f, h5py.File(one_slow) as g, h5py.File(one_clip) as h:
        parts = f.attrs["model_parts"]
        parts = parts.decode() if isinstance(parts, bytes) else str(parts)
        version = f.attrs["format_version"]
        version = version.decode() if isinstance(version, bytes) else str(version)
        check(version == "3", f"format_version 3 ({version})")
        ds, dc = g["features"].shape[1], h["features"].shape[1]
        check(parts == f"SLOW_tiny:{ds},CLIP_tiny:{dc}" and f["features"].shape[1] == ds + dc,
              f"model_parts {parts}, rows of {ds} + {dc} floats")
        check("model_parts" not in g.attrs, "a one-model file has no model_parts")
        vb, vs, vc = (vftest.video_table(x) for x in (f, g, h))
        for i, vid in enumerate(("a", "b")):
            a, n = int(vb[i]["first_row"]), int(vb[i]["segment_count"])
            sa, sn = int(vs[i]["first_row"]), int(vs[i]["segment_count"])
            ca, cn = int(vc[i]["first_row"]), int(vc[i]["segment_count"])
            check(n == min(sn, cn) and n > 0, f"{vid}: {n} windows, the ones both models have ({sn}, {cn})")
            if vid == "b":
                check((sn, cn) == (3, 2), f"b: SLOW alone has 3 windows, CLIP alone 2 ({sn}, {cn})")
            fb = f["features"][a:a + n]
            check((fb[:, :ds] == g["features"][sa:sa + n]).all(), f"{vid}: SLOW's columns equal SLOW alone, bit for bit")
            check((fb[:, ds:] == h["features"][ca:ca + n]).all(), f"{vid}: CLIP's columns equal CLIP alone, bit for bit")
            check((f["segments"][a:a + n] == g["segments"][sa:sa + n]).all(), f"{vid}: the windows are SLOW's")
    npz = os.path.join(tmp, "npz")
    r = run("export", both, "--npz", npz, "--concat", "CLIP_tiny,SLOW_tiny")
    check(r.returncode == 0, f"export --concat CLIP_tiny,SLOW_tiny: {r.stderr[-300:]}")
    with h5py.File(both) as f:
        a, n = int(vftest.video_table(f)[0]["first_row"]), int(vftest.video_table(f)[0]["segment_count"])
        rows = f["features"][a:a + n]
    z = np.load(os.path.join(npz, "a.npz"))["features"]
    check(z.shape == (n, ds + dc) and (z[:, :dc] == rows[:, ds:]).all() and (z[:, dc:] == rows[:, :ds]).all(),
          "the .npz holds CLIP's columns, then SLOW's")
    r = run("export", both, "--npz", os.path.join(tmp, "npz_clip"), "--concat", "CLIP_tiny")
    z = np.load(os.path.join(tmp, "npz_clip", "a.npz"))["features"]
    check(r.returncode == 0 and z.shape == (n, dc) and (z == rows[:, ds:]).all(), "--concat CLIP_tiny: its columns alone")
    r = run("export", both, "--npz", os.path.join(tmp, "npz_x"), "--concat", "X3D_S")
    check(r.returncode != 0 and "X3D_S" in r.stderr and "CLIP_tiny" in r.stderr, "--concat of a model not in the file names both")
    r = run("inspect", both)
    check(r.returncode == 0 and f"columns 0-{ds - 1}: SLOW_tiny" in r.stdout
          and f"columns {ds}-{ds + dc - 1}: CLIP_tiny" in r.stdout, "inspect lists each model's columns")
    # Job-array parts of the same two models merge into the same rows.
    parts = [os.path.join(tmp, f"part{k}.h5") for k in range(2)]
    for k, part in enumerate(parts):
        check(ex(part, [slow, clip], "--shard", f"{k}/2").returncode == 0, f"shard {k}/2 with two models")
    merged = os.path.join(tmp, "merged.h5")
    r = run("merge", *parts, "-o", merged)
    check(r.returncode == 0, f"merge of two-model parts: {r.stderr[-300:]}")
    with h5py.File(both) as f, h5py.File(merged) as m:
        mp = m.attrs["model_parts"]
        mp = mp.decode() if isinstance(mp, bytes) else str(mp)
        same = mp == parts_text(f) and all(
            (m["features"][int(x["first_row"]):int(x["first_row"]) + int(x["segment_count"])]
             == f["features"][int(y["first_row"]):int(y["first_row"]) + int(y["segment_count"])]).all()
            for x, y in zip(vftest.video_table(m), vftest.video_table(f)))
        check(same, f"the merged file has model_parts {mp} and the one-file run's rows")
    # Adding a model to a file: the model alone, then join: the one pass's rows.
    joined = os.path.join(tmp, "joined.h5")
    r = run("join", one_slow, one_clip, "-o", joined)
    check(r.returncode == 0, f"join of SLOW's and CLIP's files: {r.stderr[-300:]}")
    with h5py.File(both) as f, h5py.File(joined) as j:
        check(parts_text(j) == parts_text(f) and (j["features"][:] == f["features"][:]).all()
              and (j["segments"][:] == f["segments"][:]).all(),
              "the joined file has the one pass's model_parts, rows and windows (b: the 2 both have)")
    other = os.path.join(tmp, "clip1s.h5")
    r = run("extract", "--config", clip, "--random-weights", "1", "--threads", "1", "--manifest", manifest,
            "--output", other, "--clip-seconds", "1")
    check(r.returncode == 0, f"CLIP with 1 s windows: {r.stderr[-300:]}")
    bad = os.path.join(tmp, "badjoin.h5")
    r = run("join", one_slow, other, "-o", bad)
    check(r.returncode != 0 and "window" in r.stderr and not os.path.exists(bad),
          "joining files of other windows is refused naming the window, nothing written")
    r = run("join", one_slow, one_clip, "-o", joined)
    check(r.returncode != 0 and "--overwrite" in r.stderr, "join does not replace an output unasked")
    before = open(both, "rb").read()
    r = ex(both, [slow, clip])
    check(r.returncode == 0 and "2 already complete" in r.stderr, "the same command again resumes: nothing to do")
    r = ex(both, [slow])
    check(r.returncode != 0 and "models: file has" in r.stderr, "resuming it with one of the models is refused, naming the models")
    check(open(both, "rb").read() == before, "neither rerun changed the file")
    for args, word in [([slow, clip], "--clip-seconds"), ]:
        bad = os.path.join(tmp, "bad.h5")
        rr = run("extract", "--config", slow, "--config", clip, "--random-weights", "1", "--manifest", manifest,
                 "--output", bad)
        check(rr.returncode != 0 and word in rr.stderr and not os.path.exists(bad),
              "two models with frame-based clips are refused naming --clip-seconds, nothing written")
    bad = os.path.join(tmp, "bad2.h5")
    rr = run("extract", "--config", slow, "--config", clip, "--checkpoint", "x.pyth", "--manifest", manifest,
             "--output", bad, "--clip-seconds", "2")
    check(rr.returncode != 0 and "--checkpoint" in rr.stderr and not os.path.exists(bad),
          "two models with one --checkpoint are refused")
    rr = ex(os.path.join(tmp, "bad3.h5"), [slow, clip], "--crops", "3")
    check(rr.returncode != 0 and "--crops" in rr.stderr, "two models with --crops 3 are refused")
    # A format-2 file (one model; 2 is 3 without model_parts) is still resumed by a run of one model.
    old = os.path.join(tmp, "old.h5")
    vftest.write_manifest(tmp, [("a", path)], name="m_old.csv")
    r = run("extract", "--config", slow, "--random-weights", "1", "--threads", "1",
            "--manifest", os.path.join(tmp, "m_old.csv"), "--output", old, "--clip-seconds", "2")
    with h5py.File(old, "r+") as f:
        f.attrs.modify("format_version", "2")
    r = run("extract", "--config", slow, "--random-weights", "1", "--threads", "1",
            "--manifest", manifest, "--output", old, "--clip-seconds", "2")
    check(r.returncode == 0 and "1 already complete" in r.stderr, f"a format-2 file resumes: {r.stderr[-300:]}")


tmp = tempfile.mkdtemp(prefix="vidfeat_clip_seconds_")
try:
    {"windows": mode_windows, "export": mode_export, "models": mode_models}[MODE](tmp)
finally:
    vftest.finish(tmp)
