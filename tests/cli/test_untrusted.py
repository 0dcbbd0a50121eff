"""Files from others are untrusted input to the commands that read them: a clear error naming the
file and the reason, exit 1 (no crash, no signal), nothing executed, nothing written outside
the output, and the file given left byte for byte as it was.

  test_untrusted.py MODE VIDFEAT SOURCE_DIR CORPUS_DIR   (videos from the generated corpus)
  MODE: checkpoints  wrong shapes, a truncated zip, a pickle calling os.system (in a .pkl and as
                     the data.pkl of a torch zip), through `vidfeat extract` and `vidfeat verify`
        hdf5         an HDF5 file of another program, vidfeat files of "another version" (format
                     version, a missing dataset, wrong dtype or shape, rows pointing outside
                     /features, a /videos table claiming 10^9 rows) given to resume, merge,
                     inspect and export
        paths        manifest ids and paths with commas, quotes, spaces, a UTF-8 BOM, a NUL byte;
                     export of ids that would leave the export folder ('..', absolute), from a
                     manifest and from a crafted file
"""
import hashlib
import json
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import zipfile

import h5py
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import vftest  # noqa: E402
from vftest import TINY, check, failures  # noqa: E402

MODE, VIDFEAT, SRC, CORPUS = sys.argv[1:5]
VIDEOS = vftest.use_corpus(CORPUS)
CONFIG = os.path.join(SRC, "configs/Kinetics/SLOW_8x8_R50.yaml")
FIXTURES = os.path.join(SRC, "tests/fixtures")


def vidfeat(*args):
    return subprocess.run([VIDFEAT] + [str(a) for a in args], capture_output=True, text=True, timeout=300)


def sha(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def refused(r, what, *needles):
    """Exit 1 (not a signal, not a hang) and stderr says each needle."""
    tail = r.stderr[-600:].strip().replace("\n", " | ")
    check(r.returncode == 1, f"{what}: exit 1 (got {r.returncode})")
    for n in needles:
        check(n in r.stderr, f"{what}: the error says '{n}': {tail}")


def tiny_extract(manifest, out, *extra):
    return vidfeat("extract", "--config", CONFIG, "--random-weights", "1", "--threads", "1", "--manifest", manifest,
                   "--output", out, *TINY, *extra)


# ---------------------------------------------------------------------------------------------
def mode_checkpoints(tmp):
    fx = next(f for f in json.load(open(os.path.join(FIXTURES, "fixtures.json")))["fixtures"]
              if f["name"] == "C2D_8x8_R50")
    config = os.path.join(SRC, fx["config"])
    sets = [a for kv in fx["overrides"] for a in ("--set", kv)]
    good = os.path.join(FIXTURES, fx["files"]["pyth"])
    io = os.path.join(FIXTURES, fx["files"]["io"])
    m = os.path.join(tmp, "m.csv")
    open(m, "w").write("video_id,path\nv,%s\n" % os.path.join(VIDEOS, "rot90.mov"))
    marker = os.path.join(tmp, "pwned")

    def extract(ckpt, out):
        return vidfeat("extract", "--config", config, *sets, "--checkpoint", ckpt, "--threads", "1",
                       "--manifest", m, "--output", out)

    def verify(ckpt):
        return vidfeat("verify", "--config", config, *sets, "--checkpoint", ckpt, "--io", io, "--threads", "1")

    r = extract(good, os.path.join(tmp, "good.h5"))
    check(r.returncode == 0, f"the fixture checkpoint extracts {r.stderr[-500:] if r.returncode else ''}")
    r = verify(good)
    check(r.returncode == 0, f"the fixture checkpoint verifies {r.stderr[-500:] if r.returncode else ''}")

    # Wrong shapes: the SLOW fixture has the same tensor names as C2D, but temporal kernels of 3
    # where C2D has 1 (res4 and res5).
    shapes = os.path.join(tmp, "wrong_shapes.pyth")
    shutil.copy(os.path.join(FIXTURES, "SLOW_8x8_R50.pyth"), shapes)
    key = "s5.pathway0_res0.branch2.a.weight"

    data = open(good, "rb").read()
    truncated = os.path.join(tmp, "truncated.pyth")
    open(truncated, "wb").write(data[:len(data) // 2])

    class Evil:
        def __reduce__(self):
            return (os.system, ("touch " + marker,))

    evil_pkl = os.path.join(tmp, "evil.pkl")
    open(evil_pkl, "wb").write(pickle.dumps({"blobs": Evil()}, protocol=2))
    # The same call as the data.pkl of an otherwise intact torch zip checkpoint.
    evil_zip = os.path.join(tmp, "evil_zip.pyth")
    with zipfile.ZipFile(good) as zin, zipfile.ZipFile(evil_zip, "w", zipfile.ZIP_STORED) as zout:
        for item in zin.infolist():
            payload = zin.read(item.filename)
            if item.filename.endswith("/data.pkl"):
                payload = pickle.dumps({"model_state": Evil()}, protocol=2)
            zout.writestr(item, payload)

    cases = [("wrong shapes", shapes, [key, "shape mismatches"]), ("truncated zip", truncated, []),
             ("os.system in a .pkl", evil_pkl, ["system", "nothing was executed"]),
             ("os.system in a zip's data.pkl", evil_zip, ["system", "nothing was executed"])]
    for what, ckpt, needles in cases:
        before = sha(ckpt)
        out = os.path.join(tmp, os.path.basename(ckpt) + ".h5")
        refused(extract(ckpt, out), f"extract, {what}", os.path.basename(ckpt), *needles)
        check(not os.path.exists(out), f"extract, {what}: no output file is created")
        refused(verify(ckpt), f"verify, {what}", os.path.basename(ckpt), *needles)
        check(sha(ckpt) == before, f"{what}: the checkpoint is unchanged")
        check(not os.path.exists(marker), f"{what}: nothing was executed")


# ---------------------------------------------------------------------------------------------
def mode_hdf5(tmp):
    m = os.path.join(tmp, "m.csv")
    open(m, "w").write("video_id,path\nv90,%s\nv270,%s\n" % (os.path.join(VIDEOS, "rot90.mov"),
                                                            os.path.join(VIDEOS, "rot270.mov")))
    good = os.path.join(tmp, "good.h5")
    r = tiny_extract(m, good)
    check(r.returncode == 0, f"a tiny extraction {r.stderr[-500:] if r.returncode else ''}")
    # A second, disjoint part for merge.
    m2 = os.path.join(tmp, "m2.csv")
    open(m2, "w").write("video_id,path\nunordered,%s\n" % os.path.join(VIDEOS, "bframes.mov"))
    part = os.path.join(tmp, "part.h5")
    r = tiny_extract(m2, part)
    check(r.returncode == 0, "a second tiny extraction (a part for merge)")

    def variant(name, edit):
        p = os.path.join(tmp, name)
        shutil.copy(good, p)
        with h5py.File(p, "r+") as f:
            edit(f)
        return p

    def other_program(f):
        for k in list(f.keys()):
            del f[k]
        for k in list(f.attrs.keys()):
            del f.attrs[k]
        f["data"] = np.arange(12.0).reshape(3, 4)
        f["labels"] = np.array([b"a", b"b", b"c"])

    def replace(name, make):
        def edit(f):
            old = f[name][()]
            attrs = dict(f[name].attrs)
            del f[name]
            f.create_dataset(name, data=make(old), maxshape=(None,) + make(old).shape[1:], chunks=True)
            for k, v in attrs.items():
                f[name].attrs[k] = v
        return edit

    def videos_beyond(f):
        v = f["videos"][()]
        v["first_row"][0] = 2**62
        v["segment_count"][0] = 2**62
        f["videos"][...] = v

    def videos_1e9(f):
        # Recreated with h5py's default (incremental) chunk allocation, then extended: chunks never
        # written cost nothing, so the file stays small. (vidfeat's own dataset allocates early:
        # extending it would write a 1.8 TB sparse file.)
        rows = f["videos"][()]
        attrs = dict(f["videos"].attrs)
        del f["videos"]
        d = f.create_dataset("videos", data=rows, maxshape=(None,), chunks=(567,))
        for k, v in attrs.items():
            d.attrs[k] = v
        d.resize((10**9,))

    def status_bad(f):
        v = f["videos"][()]
        v["status"][0] = 7
        f["videos"][...] = v

    cases = [
        ("other_program.h5", other_program, "not a vidfeat output file"),
        ("version4.h5", lambda f: f.attrs.modify("format_version", "4"), "format_version 4"),
        ("parts_wrong_sum.h5", lambda f: f.attrs.create("model_parts", "A:1,B:2"), "model_parts"),
        ("parts_garbage.h5", lambda f: f.attrs.create("model_parts", "A:1,B"), "model_parts"),
        ("no_segments.h5", lambda f: f.__delitem__("segments"), "/segments"),
        ("no_videos.h5", lambda f: f.__delitem__("videos"), "/videos"),
        ("features_int.h5", replace("features", lambda a: a.astype(np.int32)), "/features"),
        ("features_narrow.h5", replace("features", lambda a: a[:, :-1]), "/features"),
        ("features_1d.h5", replace("features", lambda a: a.reshape(-1)), "/features"),
        ("segments_table_not.h5", replace("segments", lambda a: np.zeros((len(a), 3))), "/segments"),
        ("videos_not_table.h5", replace("videos", lambda a: np.zeros(len(a), np.int64)), "/videos"),
        ("rows_outside.h5", videos_beyond, "outside /features"),
        ("videos_1e9.h5", videos_1e9, "/videos"),
        ("status7.h5", status_bad, "status 7"),
    ]
    text = os.path.join(tmp, "text.h5")
    open(text, "w").write("not hdf5 at all\n")
    files = [(text, "not an HDF5 file")] + [(variant(n, e), why) for n, e, why in cases]
    good_sha = sha(good)
    for path, why in files:
        name = os.path.basename(path)
        check(os.path.getsize(path) < 2**24, f"{name} is small ({os.path.getsize(path)} bytes)")
        before = sha(path)
        print(f"--- {name} ({os.path.getsize(path)} bytes)")
        refused(vidfeat("inspect", path), f"inspect {name}", name, why)
        refused(tiny_extract(m, path), f"resume onto {name}", name, why)
        merged = os.path.join(tmp, "merged.h5")
        refused(vidfeat("merge", part, path, "-o", merged), f"merge with {name}", name, why)
        check(not os.path.exists(merged) and not os.path.exists(merged + ".merging"),
              f"merge with {name}: no output, no temporary left")
        for leftover in (merged, merged + ".merging"):  # so that one failure does not cascade
            if os.path.exists(leftover):
                os.remove(leftover)
        refused(vidfeat("export", path, "--npy", os.path.join(tmp, "npy")), f"export {name}", name, why)
        check(os.path.getsize(path) < 2**31 and sha(path) == before, f"{name} is unchanged byte for byte")
    check(sha(good) == good_sha, "the good file is unchanged")
    r = vidfeat("inspect", good)
    check(r.returncode == 0, "the good file still inspects")


# ---------------------------------------------------------------------------------------------
def mode_paths(tmp):
    vids = os.path.join(tmp, "my videos, \"best\"")
    os.makedirs(vids)
    src = os.path.join(VIDEOS, "rot90.mov")
    names = ["a, b.mov", "say \"hi\".mov", " lead and trail .mov"]
    for n in names:
        shutil.copy(src, os.path.join(vids, n))

    def q(s):
        return '"' + s.replace('"', '""') + '"'

    # A UTF-8 BOM (Excel writes one), quoted fields with commas, quotes and spaces, CRLF endings.
    m = os.path.join(tmp, "m.csv")
    rows = [("id, with comma", os.path.join(vids, names[0])), ('id "quoted"', os.path.join(vids, names[1])),
            ("  spaced id  ", os.path.join(vids, names[2]))]
    open(m, "wb").write(("\ufeffvideo_id,path\r\n" + "".join(f"{q(i)},{q(p)}\r\n" for i, p in rows)).encode())
    out = os.path.join(tmp, "o.h5")
    r = tiny_extract(m, out)
    check(r.returncode == 0, f"a BOM'd CSV with commas, quotes and spaces extracts {r.stderr[-800:] if r.returncode else ''}")
    if os.path.exists(out):
        with h5py.File(out) as f:
            got = {v["video_id"].decode(): (v["path"].decode(), int(v["status"])) for v in vftest.video_table(f)}
        for i, p in rows:
            check(got.get(i) == (p, 1), f"id {i!r} -> {p!r}, complete (got {got.get(i)})")

    # A relative path with spaces and a comma in an unquoted plain list.
    plain = os.path.join(vids, "list.txt")
    open(plain, "w").write(names[0] + "\n")
    out2 = os.path.join(tmp, "o2.h5")
    r = tiny_extract(plain, out2)
    check(r.returncode == 0, "a plain list keeps commas and spaces in file names")
    if r.returncode == 0:
        with h5py.File(out2) as f:
            v = vftest.video_table(f)[0]
            check(v["video_id"].decode() == "a, b" and v["path"].decode() == os.path.join(vids, names[0]),
                  f"plain list: id 'a, b' from the file name ({v['video_id'].decode()!r})")

    # A NUL byte in a manifest: refused before any output exists, naming the line.
    nul = os.path.join(tmp, "nul.csv")
    open(nul, "wb").write(b"video_id,path\nok,%s\nbad\x00../x,%s\n" % (src.encode(), src.encode()))
    out3 = os.path.join(tmp, "o3.h5")
    r = tiny_extract(nul, out3)
    refused(r, "a NUL byte in the manifest", "nul.csv", "line 3", "NUL")
    check(not os.path.exists(out3), "no output for a manifest with a NUL byte")

    # Ids that would leave the export folder: from a manifest, then written into a file by hand.
    bad_ids = ["../up", "a/../../up2", "/tmp/vidfeat-abs-escape", "./dot/../../up3"]
    m4 = os.path.join(tmp, "m4.csv")
    open(m4, "w").write("video_id,path\n" + "".join(f"{q(i)},{src}\n" for i in bad_ids))
    out4 = os.path.join(tmp, "o4.h5")
    r = tiny_extract(m4, out4)
    check(r.returncode == 0, "ids are stored as given")
    root = os.path.join(tmp, "exp")
    inner = os.path.join(root, "inner", "npy")
    for i in bad_ids:
        r = vidfeat("export", out4, "--npy", inner, "--ids", i)
        refused(r, f"export of id {i!r}", "refusing to write outside")
    r = vidfeat("export", out4, "--npy", inner)
    refused(r, "export of all of them", "refusing to write outside")
    crafted = os.path.join(tmp, "crafted.h5")
    shutil.copy(out4, crafted)
    with h5py.File(crafted, "r+") as f:
        v = f["manifest"][()]
        v["video_id"][0] = b"../../../crafted"
        v["video_id"][1] = b"/tmp/vidfeat-crafted-abs"
        f["manifest"][...] = v
    r = vidfeat("export", crafted, "--npy", inner)
    refused(r, "export of a crafted file's ids", "refusing to write outside")
    written = [os.path.join(d, n) for d, _, ns in os.walk(tmp) for n in ns if n.endswith(".npy")]
    check(not written, f"no .npy written anywhere: {written}")
    check(not os.path.exists("/tmp/vidfeat-abs-escape.npy") and not os.path.exists("/tmp/vidfeat-crafted-abs.npy"),
          "nothing written at the absolute paths")


tmp = tempfile.mkdtemp(prefix="vidfeat-untrusted-")
try:
    {"checkpoints": mode_checkpoints, "hdf5": mode_hdf5, "paths": mode_paths}[MODE](tmp)
finally:
    shutil.rmtree(tmp, ignore_errors=True)
print(f"{len(failures)} failed")
sys.exit(1 if failures else 0)
