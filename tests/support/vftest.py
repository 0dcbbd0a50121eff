"""Shared pieces of the Python end-to-end tests (run with Debian's /usr/bin/python3 + h5py)."""
import os
import shutil
import sys

# SLOW_8x8_R50 made tiny and fast: every layer is still there, a clip takes milliseconds.
TINY = ["--set", "RESNET.WIDTH_PER_GROUP=4", "--set", "DATA.TRAIN_CROP_SIZE=64", "--set",
        "DATA.TEST_CROP_SIZE=64", "--set", "DATA.TRAIN_JITTER_SCALES=[64, 80]", "--set",
        "DATA.NUM_FRAMES=4", "--set", "DATA.SAMPLING_RATE=2"]

# mpirun as root (CI) and more ranks than this machine's 2 cores.
MPI_ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMPI_MCA_rmaps_base_oversubscribe="1")

failures = []


def check(cond, what):
    """Records one assertion; the script exits non-zero at the end when any failed."""
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)
    return cond


def write_manifest(tmp, rows, name="m.csv"):
    """A manifest of (video_id, path) rows in tmp; returns its path."""
    path = os.path.join(tmp, name)
    with open(path, "w") as f:
        f.write("video_id,path\n")
        for vid, p in rows:
            f.write(f"{vid},{p}\n")
    return path


def features_equal_alone(alone_h5, good):
    """Checks that a run of the good video alone gave exactly `good` (the rows of the shared run)."""
    import h5py
    import numpy as np
    with h5py.File(alone_h5) as f:
        check(np.array_equal(f["features"][:], good), "the good video's features equal a run of it alone")


def finish(tmp):
    """Removes tmp, prints the count of failed checks and exits with the script's status."""
    shutil.rmtree(tmp, ignore_errors=True)
    print(f"{len(failures)} failed")
    sys.exit(1 if failures else 0)
