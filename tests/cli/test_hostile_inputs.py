"""Hostile inputs that are small but were built to make a reader use memory or time out of all
proportion to their size (issue 15). Each case makes its input itself (a few lines of generator)
and checks the clean refusal or the correct result AND a bound on the run's peak RSS and time,
measured on the vidfeat process itself (os.wait4's ru_maxrss) against a baseline run of the same
command on a tiny input it refuses at once.

  test_hostile_inputs.py MODE VIDFEAT SOURCE_DIR CORPUS_DIR
  MODE: pickle    a 1 MB pickle of OrderedDict(list) calls copying one long list (refused by the
                  unpickler's budget), an 80k-key dict (parsed in linear time), a torch zip whose
                  data/0 is 2 GiB of deflated zeros (refused unread), an .io.pt whose tensors have
                  zero strides over a 4-byte storage (refused, not materialised)
        config    a YAML value nested 300,000 deep (refused by depth, no stack overflow)
        video     a self-referencing ffconcat "video", an HLS playlist, a 20,000-line ffconcat
                  list (all refused by the container whitelist, the format named; the run's log
                  stays under 64 KB); an MKV with a 1e9 s
                  timestamp jump under --fps (the gap is a break, not 3e10 slots)
        export    ids that collide after path normalisation (refused, naming both); an output
                  whose crops attribute is 0
        manifest  an id longer than 256 bytes / a path longer than 1024 refused before any output
        download  a cached checkpoint replaced after its first download, or not the one models.yaml
                  pins, refused (it is hashed again before every use)
"""
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zipfile

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import vftest  # noqa: E402
from vftest import TINY, check, failures, refused  # noqa: E402

MODE, VIDFEAT, SRC, CORPUS = sys.argv[1:5]
VIDEOS = vftest.use_corpus(CORPUS)
FIXTURES = os.path.join(SRC, "tests/fixtures")
C2D = os.path.join(SRC, "configs/Kinetics/C2D_8x8_R50.yaml")
SLOW = os.path.join(SRC, "configs/Kinetics/SLOW_8x8_R50.yaml")
MB = 1 << 20


def run(*args, timeout=300, env=None):
    """Runs vidfeat; returns its exit status, output, wall time and peak RSS in bytes (vftest.Run)."""
    return vftest.measured_run([VIDFEAT, *args], timeout=timeout, env=env)


def bounded(r, base, what, extra_mb, seconds, again=None):
    """Peak RSS within extra_mb of the baseline run and wall time within `seconds` of it. The
    machine may be shared: a time over the bound is measured once more (`again`), the faster
    of the two counts."""
    if again and r.seconds - base.seconds >= seconds:
        r2 = again()
        if r2.seconds < r.seconds:
            r = r2
    extra = (r.rss - base.rss) / MB
    dt = r.seconds - base.seconds
    print(f"measure {what}: peak RSS {r.rss / MB:.0f} MB (+{extra:.1f} MB over the baseline {base.rss / MB:.0f} MB), "
          f"{r.seconds:.2f} s (+{dt:.2f} s)", flush=True)
    check(extra < extra_mb, f"{what}: peak RSS +{extra:.1f} MB < +{extra_mb} MB")
    check(dt < seconds, f"{what}: +{dt:.2f} s < +{seconds} s")


# ---------------------------------------------------------------------------------------------
def u32(n):
    return struct.pack("<I", n)


def binunicode(s):
    b = s.encode()
    return b"X" + u32(len(b)) + b


def ordereddict_bomb(size):
    """OrderedDict(L) called again and again on one list L of `size/2` copies of one pair: each
    call is 7 bytes and (unbudgeted) copies the whole list."""
    head = b"\x80\x02ccollections\nOrderedDict\nq\x00]q\x01(K\x01K\x02\x86"
    n_dup = size // 2
    body = head + b"2" * n_dup + b"e" + b"0"
    call = b"h\x00h\x01\x85R0"
    n_calls = (size - len(body) - 2) // len(call)
    return body + call * n_calls + b"N."


def key_dict(n):
    """{'k0000000': None, ...}: n distinct string keys in one SETITEMS."""
    return b"\x80\x02}q\x00(" + b"".join(binunicode("k%07d" % i) + b"N" for i in range(n)) + b"u."


def deflated_zero_zip(path, good, gib=2):
    """The good zip checkpoint with data/0 replaced by `gib` GiB of deflated zeros (2.5 MB)."""
    with zipfile.ZipFile(good) as zin, zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zout:
        for item in zin.infolist():
            if item.filename.endswith("/data/0"):
                info = zipfile.ZipInfo(item.filename)
                info.compress_type = zipfile.ZIP_DEFLATED
                zero = bytes(64 * MB)
                with zout.open(info, "w", force_zip64=True) as f:
                    for _ in range(gib * 16):
                        f.write(zero)
            else:
                zout.writestr(item, zin.read(item.filename))


def tensor_pickle(storage_key, numel, sizes, strides):
    """torch._utils._rebuild_tensor_v2(('storage', torch.FloatStorage, key, 'cpu', numel), 0,
    sizes, strides, False, OrderedDict()) as protocol-2 opcodes."""
    def tup(xs):
        return b"(" + b"".join(b"J" + struct.pack("<i", x) if x < 2**31 else b"\x8a\x08" + struct.pack("<q", x)
                               for x in xs) + b"t"
    return (b"ctorch._utils\n_rebuild_tensor_v2\n("
            + b"(" + binunicode("storage") + b"ctorch\nFloatStorage\n" + binunicode(storage_key) + binunicode("cpu")
            + b"J" + struct.pack("<i", numel) + b"tQ"
            + b"K\x00" + tup(sizes) + tup(strides) + b"\x89ccollections\nOrderedDict\n)R" + b"tR")


def mode_pickle(tmp):
    fx_sets = [a for kv in ["DATA.NUM_FRAMES=8", "DATA.TRAIN_CROP_SIZE=64", "DATA.TEST_CROP_SIZE=96",
                            "MODEL.NUM_CLASSES=10", "RESNET.WIDTH_PER_GROUP=4"] for a in ("--set", kv)]
    io = os.path.join(FIXTURES, "C2D_8x8_R50.io.pt")

    def verify(ckpt, io_file=io):
        return run("verify", "--config", C2D, *fx_sets, "--checkpoint", ckpt, "--io", io_file, "--threads", "1")

    tiny = os.path.join(tmp, "tiny.pkl")
    open(tiny, "wb").write(b"\x80\x02N.")
    base = min((verify(tiny) for _ in range(2)), key=lambda r: r.seconds)
    refused(base, "baseline: a pickle of None", "tiny.pkl")
    print(f"measure baseline: peak RSS {base.rss / MB:.0f} MB, {base.seconds:.2f} s")

    bomb = os.path.join(tmp, "bomb.pkl")
    open(bomb, "wb").write(ordereddict_bomb(1000 * 1000))
    check(os.path.getsize(bomb) <= 1000 * 1000, f"the OrderedDict bomb is 1.0 MB ({os.path.getsize(bomb)} bytes)")
    r = verify(bomb)
    refused(r, "a 1 MB pickle of OrderedDict(list) copies", "bomb.pkl", "budget")
    bounded(r, base, "OrderedDict(list) bomb", 64, 2, lambda: verify(bomb))

    for n in (20000, 80000):
        keys = os.path.join(tmp, f"keys{n}.pkl")
        open(keys, "wb").write(key_dict(n))
        r = verify(keys)
        # Parsed whole: the Caffe2 reader then finds no 'blobs' dict (the keys map to None).
        refused(r, f"a dict of {n} string keys", f"keys{n}.pkl", "'blobs'")
        bounded(r, base, f"dict of {n} keys ({os.path.getsize(keys) // 1000} KB)", 64, 1, lambda: verify(keys))
    # The index keeps Python's semantics: a repeated key keeps its first place and last value.
    dup = os.path.join(tmp, "dup.pkl")
    open(dup, "wb").write(b"\x80\x02}(" + binunicode("blobs") + b"N" + binunicode("blobs") + b"}u.")
    r = verify(dup)
    refused(r, "a repeated key: the last value (an empty blobs dict) wins", "dup.pkl")
    check("'blobs'" not in r.stderr and "checkpoint does not fit" in r.stderr,
          "a repeated 'blobs' key takes its last value (an empty dict: the model's keys are missing)")

    good = os.path.join(FIXTURES, "C2D_8x8_R50.pyth")
    zeros = os.path.join(tmp, "zeros.pyth")
    deflated_zero_zip(zeros, good)
    check(os.path.getsize(zeros) < 4 * MB, f"the deflated-zeros zip is small ({os.path.getsize(zeros)} bytes)")
    r = verify(zeros)
    refused(r, "a zip whose data/0 is 2 GiB of deflated zeros", "zeros.pyth", "compressed", "data/0")
    bounded(r, base, "2 GiB deflated record", 64, 2, lambda: verify(zeros))

    # verify --io with tensors of 10^6 x 10^6 elements, stride 0, over a one-float storage.
    strided = os.path.join(tmp, "strided.io.pt")
    t = tensor_pickle("0", 1, [10**6, 10**6], [0, 0])
    pkl = (b"\x80\x02}(" + binunicode("inputs") + b"]" + b"(" + t + b"e" + binunicode("feature") + t + b"u.")
    with zipfile.ZipFile(strided, "w", zipfile.ZIP_STORED) as z:
        z.writestr("strided.io/data.pkl", pkl)
        z.writestr("strided.io/data/0", struct.pack("<f", 1.0))
        z.writestr("strided.io/version", b"3\n")
    good_run = verify(good)
    check(good_run.returncode == 0, f"the fixture checkpoint verifies {good_run.stderr[-400:]}")
    r = verify(good, strided)
    refused(r, "verify --io with zero-stride tensors", "strided.io.pt", "refusing to materialise")
    bounded(r, good_run, "zero-stride io tensors (vs. verifying the fixture)", 64, 2, lambda: verify(good, strided))


# ---------------------------------------------------------------------------------------------
def mode_config(tmp):
    m = vftest.write_manifest(tmp, [("v", vftest.corpus_video("rot90.mov"))])

    def extract(config, *extra):
        return run("extract", "--config", config, "--random-weights", "1", "--threads", "1", "--manifest", m,
                   "--output", os.path.join(tmp, "o.h5"), *extra)

    plain = os.path.join(tmp, "plain.yaml")
    open(plain, "w").write("TRAIN:\n  ENABLE: False\nDATA:\n  NUM_FRAMES: [[[1]]]]\n")
    base = min((extract(plain) for _ in range(2)), key=lambda r: r.seconds)
    refused(base, "baseline: a config that does not parse", "plain.yaml")
    deep = 300000
    cases = [
        # yacs evaluates a string that is a Python literal: the literal parser is the one that recursed.
        ("quoted.yaml", "DATA:\n  TRAIN_JITTER_SCALES: \"" + "[" * deep + "]" * deep + "\"\n",
         ["quoted.yaml", "nested more than 64 levels"], 64),
        # Unquoted, yaml-cpp's own depth guard refuses it; yaml-cpp tokenises the whole file first
        # (about 130 bytes per token: 80 MB for these 600 KB), linear in the file.
        ("flow.yaml", "DATA:\n  TRAIN_JITTER_SCALES: " + "[" * deep + "]" * deep + "\n", ["flow.yaml"], 160),
    ]
    for name, text, needles, extra_mb in cases:
        path = os.path.join(tmp, name)
        open(path, "w").write(text)
        r = extract(path)
        refused(r, f"a value nested {deep} deep ({name})", *needles)
        bounded(r, base, f"{deep}-deep value ({name}, {len(text) // 1000} KB)", extra_mb, 2, lambda: extract(path))
    # One command-line argument holds at most 128 KiB (Linux MAX_ARG_STRLEN): 50,000 deep.
    r = extract(SLOW, "--set", "DATA.TRAIN_JITTER_SCALES=\"" + "(" * 50000 + ")" * 50000 + "\"")
    refused(r, "--set of a value nested 50,000 deep", "DATA.TRAIN_JITTER_SCALES", "nested more than 64 levels")
    check(not os.path.exists(os.path.join(tmp, "o.h5")), "no output for a refused config")
    # A value nested as deep as the limit is still read (and then checked as the key's type).
    ok = os.path.join(tmp, "ok.yaml")
    open(ok, "w").write("DATA:\n  TRAIN_JITTER_SCALES: \"" + "[" * 64 + "]" * 64 + "\"\n")
    r = extract(ok)
    check("nested more than" not in r.stderr, "64 levels are within the limit")


# ---------------------------------------------------------------------------------------------
def tiny_extract(manifest, out, *extra):
    return run("extract", "--config", SLOW, "--random-weights", "1", "--threads", "1", "--manifest", manifest,
               "--output", out, *TINY, *extra)


def videos_of(out):
    import h5py
    with h5py.File(out) as f:
        return {v["video_id"].decode(): (int(v["status"]), v["error"].decode(), int(v["segment_count"]))
                for v in vftest.video_table(f)}


def mode_video(tmp):
    good = vftest.corpus_video("rot90.mov")
    m0 = vftest.write_manifest(tmp, [("good", good)], "m0.csv")
    base = min((tiny_extract(m0, os.path.join(tmp, f"base{i}.h5")) for i in range(2)), key=lambda r: r.seconds)
    check(base.returncode == 0, f"baseline: one good video extracts {base.stderr[-400:]}")

    # 33 bytes listing themselves; an HLS playlist naming itself; a 20,000-line ffconcat list of a
    # 3-frame clip. Each is a "video" of the manifest next to a good one.
    clip = os.path.join(tmp, "clip3.mp4")
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=64x64:rate=30",
                    "-frames:v", "3", "-c:v", "mpeg4", clip], check=True)
    crafted = [("self.mp4", "ffconcat version 1.0\nfile self.mp4\n", "'concat'"),
               ("live.mp4", "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\nlive.mp4\n#EXT-X-ENDLIST\n", "'hls'"),
               ("long.mp4", "ffconcat version 1.0\n" + "file clip3.mp4\n" * 20000, "'concat'")]
    for name, text, fmt in crafted:
        path = os.path.join(tmp, name)
        open(path, "w").write(text)
        m = vftest.write_manifest(tmp, [(vftest.stem(name), path), ("good", good)], name + ".csv")
        out = os.path.join(tmp, name + ".h5")
        r = tiny_extract(m, out, "--skip-invalid")
        what = f"{name} ({len(text)} bytes)"
        check(r.returncode >= 0, f"{what}: no signal, no crash (exit {r.returncode})")
        check(len(r.stderr) < 64 * 1024, f"{what}: the log stays small ({len(r.stderr)} bytes of stderr)")
        bounded(r, base, what, 64, 10)
        if os.path.exists(out):
            got = videos_of(out)
            st, err, _ = got.get(vftest.stem(name), (None, "", 0))
            check(st == 2 and fmt in err and "not a video container" in err,
                  f"{what}: recorded failed, naming FFmpeg's format {fmt}: {err!r}")
            check(got.get("good", (None,))[0] == 1, f"{what}: the good video next to it completes")
        else:
            check(False, f"{what}: the run wrote its output {r.stderr[-600:]}")

    # A 9 KB MKV whose timestamps jump by 1e9 s after 3 frames, run with --fps 30: the jump is a
    # break (3 + 3 frames -> 6 slots and the padded tail), not 3e10 slots.
    jump = os.path.join(tmp, "jump.mkv")
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=64x64:rate=30:d=0.2",
                    "-vf", "setpts='if(gte(N,3),PTS+1e9/TB,PTS)'", "-fps_mode", "passthrough", "-c:v", "mjpeg",
                    "-q:v", "10", jump], check=True)
    check(os.path.getsize(jump) < 20000, f"the jumping MKV is small ({os.path.getsize(jump)} bytes)")
    m = vftest.write_manifest(tmp, [("jump", jump)], "jump.csv")
    out = os.path.join(tmp, "jump.h5")
    r = tiny_extract(m, out, "--fps", "30")
    check(r.returncode == 0, f"--fps 30 over a 1e9 s jump completes {r.stderr[-600:]}")
    bounded(r, base, "1e9 s timestamp jump under --fps 30", 64, 10, lambda: tiny_extract(m, out + "2", "--fps", "30"))
    if r.returncode == 0:
        st, err, segs = videos_of(out)["jump"]
        # 6 decoded frames -> 6 slots (the break keeps one slot for frame 2) -> 1 clip of TINY_SPAN.
        check(st == 1 and segs == vftest.segments_for(6, vftest.TINY_SPAN),
              f"the jumping video is complete with {vftest.segments_for(6, vftest.TINY_SPAN)} segment(s) (got {st}, {segs})")


# ---------------------------------------------------------------------------------------------
def mode_export(tmp):
    import h5py
    good = vftest.corpus_video("rot90.mov")
    m = vftest.write_manifest(tmp, [("x/y", good), ("x//y", good), ("other", good)])
    out = os.path.join(tmp, "o.h5")
    r = tiny_extract(m, out)
    check(r.returncode == 0, f"ids x/y and x//y are stored as given {r.stderr[-400:]}")
    exp = os.path.join(tmp, "npy")
    r = run("export", out, "--npy", exp)
    refused(r, "export of x/y and x//y", "'x/y'", "'x//y'", "refusing to overwrite")
    written = [os.path.join(d, n) for d, _, ns in os.walk(exp) for n in ns] if os.path.exists(exp) else []
    check(not written, f"nothing is written when two ids collide: {written}")
    r = run("export", out, "--npy", exp, "--ids", "x//y")
    check(r.returncode == 0 and os.path.exists(os.path.join(exp, "x", "y.npy")), "one of them alone exports")

    def crafted(name, edit):
        p = os.path.join(tmp, name)
        shutil.copy(out, p)
        with h5py.File(p, "r+") as f:
            edit(f)
        return p

    for attr, value in (("crops", 0), ("crops", -3), ("crops", 10**6)):
        p = crafted(f"{attr}{value}.h5", lambda f: f.attrs.modify(attr, np.int32(value)))
        r = run("export", p, "--npy", os.path.join(tmp, "npy2"), "--ids", "other")
        refused(r, f"export of a file whose {attr} is {value}", os.path.basename(p), attr)
        check("no output buffer" not in r.stderr, f"{attr} = {value}: not an HDF5 buffer error")


# ---------------------------------------------------------------------------------------------
def mode_manifest(tmp):
    good = vftest.corpus_video("rot90.mov")
    for what, rows, needles in (
            ("an id of 257 bytes", [("a" * 257, good), ("fine", good)], ["line 2", "video id of 257 bytes"]),
            ("a path of 1100 bytes", [("p", "/" + "d" * 1095 + ".mp4")], ["line 2", "path of 1100 bytes"])):
        m = vftest.write_manifest(tmp, rows, "long.csv")
        out = os.path.join(tmp, "long.h5")
        for extra in ((), ("--skip-invalid",)):
            r = tiny_extract(m, out, *extra)
            refused(r, f"{what} {' '.join(extra)}", "long.csv", *needles)
            check(not os.path.exists(out), f"{what} {' '.join(extra)}: no output file is created")
    m = vftest.write_manifest(tmp, [("a" * 256, good)], "edge.csv")
    r = tiny_extract(m, os.path.join(tmp, "edge.h5"))
    check(r.returncode == 0, f"an id of exactly 256 bytes is stored {r.stderr[-300:]}")


# ---------------------------------------------------------------------------------------------
def mode_download(tmp):
    """A cached checkpoint is hashed again before use: replaced after its first download, or
    not the file models.yaml pins, it is refused (offline: nothing is fetched)."""
    import hashlib
    import json
    import yaml
    fx = next(f for f in json.load(open(os.path.join(FIXTURES, "fixtures.json")))["fixtures"]
              if f["name"] == "C2D_8x8_R50")
    good = os.path.join(FIXTURES, fx["files"]["pyth"])
    want = hashlib.sha256(open(good, "rb").read()).hexdigest()
    cfgdir = os.path.join(tmp, "configs")
    os.makedirs(cfgdir)
    cfg = yaml.safe_load(open(os.path.join(SRC, fx["config"])))
    for kv in fx["overrides"]:
        k, v = kv.split("=", 1)
        sec, key = k.split(".")
        cfg.setdefault(sec, {})[key] = yaml.safe_load(v)
    yaml.safe_dump(cfg, open(os.path.join(cfgdir, "tiny_c2d.yaml"), "w"))
    m = vftest.write_manifest(tmp, [("v", vftest.corpus_video("rot90.mov"))])

    def extract(pin, cache, out):
        entry = {"name": "TINY_C2D", "config": "tiny_c2d.yaml", "feature_dim": fx["feature_dim"],
                 "url": "http://127.0.0.1:9/models/TINY_C2D.pyth"}
        if pin:
            entry["sha256"] = pin
        yaml.safe_dump({"models": [entry]}, open(os.path.join(cfgdir, "models.yaml"), "w"))
        env = dict(os.environ, VIDFEAT_CONFIG_DIR=cfgdir, VIDFEAT_CACHE_DIR=cache, VIDFEAT_OFFLINE="1")
        return run("extract", "--model", "TINY_C2D", "--manifest", m, "--output", os.path.join(tmp, out),
                   "--threads", "1", env=env)

    cache = os.path.join(tmp, "cache")
    os.makedirs(cache)
    cached = os.path.join(cache, "TINY_C2D.pyth")
    shutil.copy(good, cached)
    open(cached + ".sha256", "w").write(want + "\n")  # as the first download recorded it
    r = extract(None, cache, "o1.h5")
    check(r.returncode == 0, f"the cached file matching its recorded hash is used {r.stderr[-400:]}")
    # Replaced in the cache (another checkpoint of the same model, e.g. a node-local copy).
    shutil.copy(os.path.join(FIXTURES, "SLOW_8x8_R50.pyth"), cached)
    r = extract(None, cache, "o2.h5")
    refused(r, "a cached file replaced after its first download", "TINY_C2D.pyth", want, "first download")
    check(not os.path.exists(os.path.join(tmp, "o2.h5")), "no output from a replaced checkpoint")
    # models.yaml's pin wins over the sidecar: the right file with a wrong pin is refused, the
    # right pin accepts it.
    shutil.copy(good, cached)
    r = extract("0" * 64, cache, "o3.h5")
    refused(r, "a cached file that is not the one models.yaml pins", "TINY_C2D.pyth", "0" * 64, "models.yaml")
    r = extract(want.upper(), cache, "o4.h5")
    check(r.returncode == 0, f"the pinned hash (any case) accepts the right file {r.stderr[-400:]}")


# ---------------------------------------------------------------------------------------------
if __name__ == "__main__":
    tmp = tempfile.mkdtemp(prefix="vidfeat-hostile-")
    try:
        {"pickle": mode_pickle, "config": mode_config, "video": mode_video, "export": mode_export,
         "manifest": mode_manifest, "download": mode_download}[MODE](tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{len(failures)} failed")
    sys.exit(1 if failures else 0)
