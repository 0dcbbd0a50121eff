"""Shared pieces of the Python end-to-end tests (run with Debian's /usr/bin/python3 + h5py).

The videos come from the generated corpus (tests/support/make_corpus.py, made by the ctest fixture
`corpus` into the build tree): its folder is given on the command line (use_corpus) or in the
environment (VIDFEAT_CORPUS_DIR); corpus() is its corpus.tsv, whose `frames` column is the frame
count ffprobe -count_frames measured when the file was written.
"""
import csv
import math
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

# Exit code of a test that skips (ctest SKIP_RETURN_CODE 77), e.g. the `shared` suite without
# ../shared/videos.
SKIP = 77


def skip(reason):
    """Skips the whole test: prints the reason, records it for tests/support/print_skipped.py
    (which ctest runs after the tests) under <build>/Testing/skipped/, and exits SKIP."""
    print("SKIPPED: " + reason, flush=True)
    name = " ".join([os.path.splitext(os.path.basename(sys.argv[0]))[0]] + sys.argv[1:2])
    d = os.getcwd()
    while True:  # ctest runs a test in its build subfolder: the build root holds CTestCustom.cmake
        if os.path.exists(os.path.join(d, "CTestCustom.cmake")):
            os.makedirs(os.path.join(d, "Testing", "skipped"), exist_ok=True)
            with open(os.path.join(d, "Testing", "skipped", name), "w") as f:
                f.write(reason + "\n")
            break
        if os.path.dirname(d) == d:
            break
        d = os.path.dirname(d)
    sys.exit(SKIP)

_corpus_dir = None


def use_corpus(path):
    """Sets the corpus folder (from a test's command line); returns its absolute path."""
    global _corpus_dir
    _corpus_dir = os.path.abspath(path)
    return _corpus_dir


def corpus_dir():
    """The generated corpus folder: use_corpus()'s, else $VIDFEAT_CORPUS_DIR."""
    d = _corpus_dir or os.environ.get("VIDFEAT_CORPUS_DIR")
    if not d:
        sys.exit("the corpus folder is not given (command line or VIDFEAT_CORPUS_DIR)")
    if not os.path.exists(os.path.join(d, "corpus.tsv")):
        sys.exit(f"{d}/corpus.tsv is missing: run tests/support/make_corpus.py {d} "
                 "(ctest runs it as the test corpus_generate)")
    return d


def corpus():
    """corpus.tsv as a list of dicts (one per file; `frames` and the sizes as int, None when empty;
    `path` added: the file's absolute path)."""
    with open(os.path.join(corpus_dir(), "corpus.tsv"), encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    for r in rows:
        for k in ("frames", "width", "height", "display_width", "display_height", "rotation"):
            r[k] = int(r[k]) if r[k] else None
        r["path"] = os.path.join(corpus_dir(), r["name"])
    return rows


def corpus_row(name):
    """The corpus.tsv row of one file (by name)."""
    for r in corpus():
        if r["name"] == name:
            return r
    raise KeyError(f"{name} is not in {corpus_dir()}/corpus.tsv")


def corpus_video(name):
    """Absolute path of a corpus file (checked to be in corpus.tsv)."""
    return corpus_row(name)["path"]


def stem(name):
    """A video id from a file name: the name without its extension."""
    return os.path.splitext(name)[0]


def segments_for(frames, span):
    """Segments vidfeat makes of a video of `frames` frames with back-to-back clips of `span`
    (NUM_FRAMES * SAMPLING_RATE) frames, the last one padded (the default tail policy)."""
    return math.ceil(frames / span)


TINY_SPAN = 4 * 2  # DATA.NUM_FRAMES * DATA.SAMPLING_RATE of TINY


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
