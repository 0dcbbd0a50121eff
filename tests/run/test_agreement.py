"""The ranks agree on the model before anything is written (issue 15).

  test_agreement.py VIDFEAT SOURCE_DIR CORPUS_DIR

A real MPMD run (`mpirun -n 1 vidfeat ... : -n 1 vidfeat ...`) where rank 1 is given other weights
(another --random-weights seed: another weights description) or another effective config (one
--set more) than rank 0 must be refused on every rank with a message naming rank 1 and what
differs, and no output (nor lock) may exist afterwards. The control run, the same arguments on
both sides, must succeed (the check does not refuse ranks that agree).
"""
import os
import subprocess
import sys
import tempfile

import h5py

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import vftest  # noqa: E402
from vftest import MPI_ENV as ENV, TINY, check, failures, stem, write_manifest  # noqa: E402

VIDFEAT, SRC, CORPUS = sys.argv[1:4]
CONFIG = os.path.join(SRC, "configs/Kinetics/SLOW_8x8_R50.yaml")
VIDEOS = vftest.use_corpus(CORPUS)
VIDEO = "h264_bframes.mp4"


def side(manifest, out, seed, extra=()):
    return [VIDFEAT, "extract", "--config", CONFIG, "--random-weights", str(seed), "--threads", "1"] + \
        TINY + list(extra) + ["--manifest", manifest, "--output", out]


def mpmd(rank0, rank1):
    cmd = ["mpirun", "--oversubscribe", "-n", "1"] + rank0 + [":", "-n", "1"] + rank1
    return subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=300)


def refused(tmp, name, rank1_extra_seed, rank1_extra, differs):
    m = write_manifest(tmp, [(stem(VIDEO), os.path.join(VIDEOS, VIDEO))], name=name + ".csv")
    out = os.path.join(tmp, name + ".h5")
    r = mpmd(side(m, out, 3), side(m, out, rank1_extra_seed, rank1_extra))
    text = r.stdout + r.stderr
    check(r.returncode != 0, f"{name}: a 2-rank run whose rank 1 differs is refused (rc {r.returncode})")
    check("rank 1 differs from rank 0 in " + differs in text,
          f"{name}: the message names rank 1 and the {differs}: " +
          " | ".join(line for line in text.splitlines() if "do not agree" in line)[:600])
    check("rank 0 differs" not in text and "rank 2" not in text, f"{name}: only rank 1 is named")
    check("MPI_ABORT" not in text, f"{name}: every rank throws together (no MPI_Abort)")
    check(not os.path.exists(out), f"{name}: no output was written")
    check(not os.path.exists(out + ".lock"), f"{name}: no lock left behind")


def main():
    with tempfile.TemporaryDirectory() as tmp:
        refused(tmp, "seed", 4, [], "weights")
        refused(tmp, "config", 3, ["--set", "DATA.SAMPLING_RATE=3"],
                "effective config")
        # Control: identical arguments on both sides are accepted and the video is written.
        m = write_manifest(tmp, [(stem(VIDEO), os.path.join(VIDEOS, VIDEO))], name="same.csv")
        out = os.path.join(tmp, "same.h5")
        r = mpmd(side(m, out, 3), side(m, out, 3))
        check(r.returncode == 0, f"control: ranks that agree run (rc {r.returncode}) " + (r.stdout + r.stderr)[-400:])
        if r.returncode == 0:
            with h5py.File(out, "r") as f:
                ids = [v["video_id"].decode() for v in vftest.video_table(f)]
                check(ids == [stem(VIDEO)], f"control: the video is in the output ({ids})")
    if failures:
        print(f"{len(failures)} check(s) failed")
        sys.exit(1)


main()
