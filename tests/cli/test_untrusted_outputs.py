"""Untrusted output files (issue 15): a crafted .h5 given to inspect / export / merge / resume is
refused cleanly, the file unchanged, within a peak-RSS and time bound.

  test_untrusted_outputs.py VIDFEAT SOURCE_DIR CORPUS_DIR

Each crafted file starts from a real one-video output (tiny SLOW model, random weights), edited with
h5py:
- /videos rewritten as 1.2M zero rows, gzip-compressed in chunks of 300k rows (a few MB on disk):
  before the fix `inspect` accepted it as 1.2M rows at 2.9 GB peak RSS. vidfeat writes its tables
  unfiltered; a filtered table is refused before a row is read. Bound: 64 MB of peak RSS and 10 s
  over a baseline run (inspect of the good file).
- /manifest (format 2: the one compressed table) crafted three ways: a 700 KB chunk that inflates
  to 640 MB (HDF5's own deflate filter would grow its buffer to hold all of it; vidfeat inflates
  into a buffer of the chunk's size and refuses), chunks of 10^5 rows (over the 4 MiB bound), and
  fewer rows than /videos. Same bounds.
- the root attributes that size memory out of range: crops 0, -3, 10^6 and feature_dim 0, 2^21
  (bounds 1..64 and 1..2^20, as export's); the refusal names the attribute, not an HDF5 buffer error.
Peak RSS is the vidfeat process's own (os.wait4's ru_maxrss).
"""
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile

import h5py
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import vftest  # noqa: E402
from vftest import TINY, check, failures  # noqa: E402

if sys.argv[1].startswith("--craft"):  # run in a child: HDF5's chunk cache of the writes must not inflate
    pass                     # the test process, whose pages a forked vidfeat's ru_maxrss would count
else:
    VIDFEAT, SRC, CORPUS = sys.argv[1:4]
    vftest.use_corpus(CORPUS)
    SLOW = os.path.join(SRC, "configs/Kinetics/SLOW_8x8_R50.yaml")
MB = 1 << 20
ROWS, CHUNK = 1_200_000, 300_000


def run(*args, timeout=300):
    """Runs vidfeat; returns its exit status, output, wall seconds and peak RSS (vftest.Run)."""
    return vftest.measured_run([VIDFEAT, *args], timeout=timeout)


def sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def refused(r, what, *needles):
    vftest.refused(r, what, *needles)
    text = r.stderr + r.stdout
    check("no output buffer" not in text and "HDF5-DIAG" not in text, f"{what}: no raw HDF5 error")


def compressed_videos(good, path):
    shutil.copy(good, path)
    with h5py.File(path, "r+") as f:
        old = f["videos"]
        dtype, attrs = old.dtype, dict(old.attrs)
        del f["videos"]
        d = f.create_dataset("videos", shape=(ROWS,), maxshape=(None,), dtype=dtype, chunks=(CHUNK,),
                             compression="gzip", compression_opts=1)
        for k, v in attrs.items():
            d.attrs[k] = v
        block = np.zeros(20_000, dtype=dtype)  # status 0, no rows: each row alone would be valid
        for a in range(0, ROWS, len(block)):
            d[a:a + len(block)] = block
    return path


def crafted_manifest(good, path, how):
    import zlib
    shutil.copy(good, path)
    with h5py.File(path, "r+") as f:
        old = f["manifest"]
        rows, dtype, attrs = old[()], old.dtype, dict(old.attrs)
        del f["manifest"]
        if how == "bomb":
            d = f.create_dataset("manifest", data=rows, maxshape=(None,), chunks=(819,), compression="gzip",
                                 compression_opts=1)
            d.id.write_direct_chunk((0,), zlib.compress(bytes(640 * MB), 9), 0)
        elif how == "chunks":
            d = f.create_dataset("manifest", data=rows, maxshape=(None,), chunks=(100_000,), compression="gzip")
        else:
            d = f.create_dataset("manifest", shape=(0,), maxshape=(None,), dtype=dtype, chunks=(819,),
                                 compression="gzip")
        for k, v in attrs.items():
            d.attrs[k] = v
    return path


def main():
    with tempfile.TemporaryDirectory() as tmp:
        video = vftest.corpus_video("rot90.mov")
        m = vftest.write_manifest(tmp, [("one", video)])
        good = os.path.join(tmp, "good.h5")
        r = run("extract", "--config", SLOW, "--random-weights", "1", "--threads", "1", "--manifest", m,
                "--output", good, *TINY)
        check(r.returncode == 0, f"the good output is written {r.stderr[-400:]}")
        base = run("inspect", good)
        check(base.returncode == 0, "inspect of the good file succeeds (baseline)")

        bad = os.path.join(tmp, "gz.h5")
        subprocess.run([sys.executable, os.path.abspath(__file__), "--craft", good, bad], check=True)
        size = os.path.getsize(bad)
        with h5py.File(bad, "r") as f:
            check(f["videos"].shape == (ROWS,) and f["videos"].compression == "gzip",
                  f"the crafted file claims {ROWS} gzip'd /videos rows in {size / MB:.1f} MB")
        digest = sha(bad)

        def bounded(r, what):
            extra, dt = (r.rss - base.rss) / MB, r.seconds - base.seconds
            print(f"     {what}: peak RSS {r.rss / MB:.0f} MB ({extra:+.0f} MB over baseline), {r.seconds:.2f} s")
            check(extra < 64, f"{what}: peak RSS within 64 MB of the baseline ({extra:.0f} MB)")
            check(dt < 10, f"{what}: within 10 s of the baseline ({dt:.2f} s)")

        for what, args in (("inspect", ["inspect", bad]),
                           ("export", ["export", bad, "--npy", os.path.join(tmp, "npy")]),
                           ("merge", ["merge", "--output", os.path.join(tmp, "merged.h5"), good, bad]),
                           ("resume", ["extract", "--config", SLOW, "--random-weights", "1", "--threads", "1",
                                       "--manifest", m, "--output", bad, *TINY])):
            r = run(*args)
            refused(r, f"{what} of gzip'd /videos", "gz.h5", "/videos", "filter pipeline")
            bounded(r, f"{what} of gzip'd /videos")
            check(sha(bad) == digest, f"{what}: the crafted file is unchanged")
        check(not os.path.exists(os.path.join(tmp, "npy")) or not os.listdir(os.path.join(tmp, "npy")),
              "export wrote nothing")
        check(not os.path.exists(os.path.join(tmp, "merged.h5")), "merge wrote no output")

        for how, needle in (("bomb", "deflate data"), ("chunks", "chunks of 100000 rows"),
                            ("short", "one row per /videos row")):
            p = os.path.join(tmp, f"manifest_{how}.h5")
            subprocess.run([sys.executable, os.path.abspath(__file__), "--craft-manifest", good, p, how], check=True)
            digest = sha(p)
            for what, args in (("inspect", ["inspect", p]),
                               ("export", ["export", p, "--npy", os.path.join(tmp, "npy_m")]),
                               ("merge", ["merge", "--output", os.path.join(tmp, "merged_m.h5"), good, p]),
                               ("resume", ["extract", "--config", SLOW, "--random-weights", "1", "--threads",
                                           "1", "--manifest", m, "--output", p, *TINY])):
                r = run(*args)
                refused(r, f"{what} of manifest_{how}.h5", f"manifest_{how}.h5", "/manifest", needle)
                bounded(r, f"{what} of manifest_{how}.h5")
                check(sha(p) == digest, f"{what} of manifest_{how}.h5: the crafted file is unchanged")
            check(not os.path.exists(os.path.join(tmp, "merged_m.h5")), "merge wrote no output")

        for attr, value in (("crops", 0), ("crops", -3), ("crops", 10**6),
                            ("feature_dim", 0), ("feature_dim", 1 << 21)):
            p = os.path.join(tmp, f"{attr}{value}.h5")
            shutil.copy(good, p)
            with h5py.File(p, "r+") as f:
                f.attrs.modify(attr, np.array(value, dtype=f.attrs[attr].dtype))
            digest = sha(p)
            for what, args in (("inspect", ["inspect", p]),
                               ("export", ["export", p, "--npy", os.path.join(tmp, "npy_" + attr)])):
                r = run(*args)
                refused(r, f"{what} of {attr} = {value}", os.path.basename(p), f"attribute {attr} = {value}",
                        "out of range")
                check(sha(p) == digest, f"{what} of {attr} = {value}: the file is unchanged")
    if failures:
        print(f"{len(failures)} check(s) failed")
        sys.exit(1)


if sys.argv[1] == "--craft":
    compressed_videos(sys.argv[2], sys.argv[3])
elif sys.argv[1] == "--craft-manifest":
    crafted_manifest(*sys.argv[2:5])
else:
    main()
