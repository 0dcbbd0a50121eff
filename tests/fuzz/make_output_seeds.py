"""Seed corpus of the output-validation fuzz target (tests/fuzz/fuzz_output.cpp): real vidfeat
outputs written by the tiny SLOW model (random weights) on the generated corpus, copied with their
tables re-chunked to 4 rows so that a seed is ~50 KB instead of ~3 MB (vidfeat's chunks are sized
for datasets; the validation does not depend on chunk sizes, and each copy is checked to be
accepted by `vidfeat inspect` as the original is).

  make_output_seeds.py VIDFEAT SOURCE_DIR CORPUS_DIR OUT_DIR

Seeds: one complete video; three videos (two complete, one failed: a text file named .mp4) written on
one rank; an output with --crops 3; the three-video one rewritten in format 1. Each output is
checked to be accepted by `vidfeat inspect`.
"""
import os
import subprocess
import sys
import tempfile

import h5py

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import vftest  # noqa: E402

VIDFEAT, SRC, CORPUS, OUT = sys.argv[1:5]
vftest.use_corpus(CORPUS)
SLOW = os.path.join(SRC, "configs/Kinetics/SLOW_8x8_R50.yaml")
os.makedirs(OUT, exist_ok=True)


def extract(name, rows, *extra, status=0):
    with tempfile.TemporaryDirectory() as tmp:
        manifest = vftest.write_manifest(tmp, rows)
        out = os.path.join(tmp, name)
        cmd = [VIDFEAT, "extract", "--config", SLOW, "--random-weights", "1", "--threads", "1",
               "--manifest", manifest, "--output", out, *vftest.TINY, *extra]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        if r.returncode != status:  # 3: some video failed, as asked
            sys.exit(f"make_output_seeds: {name}: {' '.join(cmd)} exited {r.returncode}:\n{r.stderr[-2000:]}")
        seed = os.path.join(OUT, name)
        small_copy(out, seed)
        for path in (out, seed):
            r = subprocess.run([VIDFEAT, "inspect", path], capture_output=True, text=True, timeout=60)
            if r.returncode != 0:
                sys.exit(f"make_output_seeds: {path} is refused by inspect:\n{r.stderr[-2000:]}")
        print(f"{name}: {os.path.getsize(seed)} bytes (written: {os.path.getsize(out)})")


def small_copy(src, dst):
    """dst: src's groups, datasets and attributes, chunked datasets re-chunked to 4 rows."""
    with h5py.File(src, "r") as f, h5py.File(dst, "w") as g:
        def copy(name, obj):
            if isinstance(obj, h5py.Dataset):
                chunks = None
                if obj.chunks:
                    chunks = (max(1, min(obj.shape[0], 4)),) + tuple(obj.chunks[1:])
                # (compression kept: /manifest's deflated chunks are inflated by the validation)
                new = g.create_dataset(name, data=obj[()], chunks=chunks, maxshape=obj.maxshape,
                                       compression=obj.compression, compression_opts=obj.compression_opts)
            else:
                new = g.require_group(name)
            for k, v in obj.attrs.items():
                new.attrs[k] = v
        for k, v in f.attrs.items():
            g.attrs[k] = v
        f.visititems(copy)


short = vftest.corpus_video("rot90.mov")
extract("one.h5", [("one", short)])
extract("three.h5", [("a", short), ("b", vftest.corpus_video("text.mp4")),
                     ("c", vftest.corpus_video("vp9.webm"))], status=3)
extract("crops3.h5", [("one", short)], "--crops", "3")
# Format 1 (read only, docs/FORMAT.md): the three-video seed rewritten in the old layout.
vftest.to_format1(os.path.join(OUT, "three.h5"), os.path.join(OUT, "three_format1.h5"))
r = subprocess.run([VIDFEAT, "inspect", os.path.join(OUT, "three_format1.h5")], capture_output=True, text=True,
                   timeout=60)
if r.returncode != 0:
    sys.exit(f"make_output_seeds: three_format1.h5 is refused by inspect:\n{r.stderr[-2000:]}")
print(f"three_format1.h5: {os.path.getsize(os.path.join(OUT, 'three_format1.h5'))} bytes")
