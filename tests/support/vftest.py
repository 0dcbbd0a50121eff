"""Shared pieces of the Python end-to-end tests (run with Debian's /usr/bin/python3 + h5py).

The videos come from the generated corpus (tests/support/make_corpus.py, made by the ctest fixture
`corpus` into the build tree): its folder is given on the command line (use_corpus) or in the
environment (VIDFEAT_CORPUS_DIR); corpus() is its corpus.tsv, whose `frames` column is the frame
count ffprobe -count_frames measured when the file was written.
"""
import csv
import hashlib
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time

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


def extract_command(vidfeat, config, manifest, out, sets=TINY, extra=()):
    """`vidfeat extract` of `manifest` into `out` with seeded random weights (seed 3), one thread, the
    model settings `sets` (default TINY) and a wave after every finished video (--wave 1
    --wave-seconds 0), so that even a short run writes several waves and journals; -v: a log line
    per finished video (": N frames, M segments"), which tests wait for."""
    return [vidfeat, "extract", "-v", "--config", config, "--random-weights", "3", "--threads", "1"] + list(sets) + [
        "--manifest", manifest, "--output", out, "--wave", "1", "--wave-seconds", "0"] + list(extra)


# The /segments members that belong to a video (video_row is its row in /videos, which depends on
# the manifest's order, not on the video).
SEGMENT_FIELDS = ["segment", "first_frame", "last_frame", "start_time", "end_time", "padded_frames"]


def video_table(f):
    """An open output file's videos as one structured array, a row per /videos row: the /manifest
    row's video_id and path, the /videos members, and `error` (a failed video's message: its last
    /failures row). docs/FORMAT.md: format 2 keeps the strings in /manifest and the message in
    /failures; a format 1 file's /videos holds all of them and is returned as it is."""
    import numpy as np
    videos = f["videos"][:]
    if "manifest" not in f:
        return videos
    names = f["manifest"][:]
    fields = [("video_id", names.dtype["video_id"]), ("path", names.dtype["path"])]
    fields += [(n, videos.dtype[n]) for n in videos.dtype.names] + [("error", "S512")]
    out = np.zeros(len(videos), dtype=fields)
    for n in names.dtype.names:
        out[n] = names[n]
    for n in videos.dtype.names:
        out[n] = videos[n]
    if "failures" in f:
        for x in f["failures"][:]:
            r = int(x["video_row"])
            if 0 <= r < len(out) and int(out[r]["status"]) == 2:
                out[r]["error"] = x["message"]
    return out


def to_format1(src, dst):
    """Writes dst: the format 2 output src rewritten as format 1 (docs/FORMAT.md, "Format 1"), the
    strings and the failure message back in one 1848-byte /videos row, no /manifest."""
    import h5py
    import numpy as np
    shutil.copy(src, dst)
    with h5py.File(dst, "r+") as f:
        table = video_table(f)
        names, message = f["manifest"].dtype, f["failures"].dtype["message"]
        numbers = f["videos"].dtype
        attrs = dict(f["videos"].attrs)
        dtype = np.dtype([("video_id", names["video_id"]), ("path", names["path"])] +
                         [(n, numbers[n]) for n in numbers.names] + [("error", message)])
        rows = np.zeros(len(table), dtype)
        for n in dtype.names:
            rows[n] = table[n]
        del f["videos"], f["manifest"]
        d = f.create_dataset("videos", data=rows, maxshape=(None,), chunks=(min(567, max(1, len(rows))),))
        for k, v in attrs.items():
            d.attrs[k] = v
        f.attrs.modify("format_version", "1")


def per_video(path):
    """An output file by video id: id -> (status, sha256 of its feature rows, its /segments rows as
    tuples of SEGMENT_FIELDS, its segment count). Two runs' files are equal per video id when these
    dicts are equal, whatever order the videos were written in."""
    import h5py
    out = {}
    with h5py.File(path, "r") as f:
        feats, segs = f["features"][:], f["segments"][:]
        for v in video_table(f):
            a, n = int(v["first_row"]), int(v["segment_count"])
            # .tolist(): the selected members only (the bytes of a multi-member view include
            # video_row).
            rows = segs[a:a + n][SEGMENT_FIELDS].tolist()
            out[v["video_id"].decode()] = (int(v["status"]), hashlib.sha256(feats[a:a + n].tobytes()).hexdigest(),
                                           rows, n)
    return out


def reference(run, tmp, manifest):
    """The uninterrupted run a test compares its interrupted and rerun files with: run(1, manifest,
    <tmp>/ref.h5) (a test's own runner: ranks, manifest, output) must exit 0; returns per_video of
    its file."""
    ref = os.path.join(tmp, "ref.h5")
    r = run(1, manifest, ref)
    check(r.returncode == 0, f"uninterrupted reference run: exit 0 (got {r.returncode}) "
                             f"{r.stderr[-1500:] if r.returncode else ''}")
    return per_video(ref)


class Run:
    """What measured_run() saw: exit status, output, wall seconds, peak RSS in bytes."""

    def __init__(self, returncode, stdout, stderr, seconds, rss):
        self.returncode, self.stdout, self.stderr, self.seconds, self.rss = returncode, stdout, stderr, seconds, rss


def measured_run(cmd, timeout=300, env=None):
    """Runs `cmd` as a child and returns a Run with its peak RSS: the child's own ru_maxrss from
    os.wait4 (not the test process's, nor other children's). Past `timeout` s it is killed (SIGKILL;
    the Run then has returncode -9)."""
    out, err = tempfile.TemporaryFile(), tempfile.TemporaryFile()
    t0 = time.monotonic()
    p = subprocess.Popen([str(a) for a in cmd], stdout=out, stderr=err, env=env)
    deadline = t0 + timeout
    while True:
        pid, status, usage = os.wait4(p.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() > deadline:
            p.kill()
            pid, status, usage = os.wait4(p.pid, 0)
            break
        time.sleep(0.01)
    seconds = time.monotonic() - t0
    p.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait for it again
    out.seek(0)
    err.seek(0)
    return Run(p.returncode, out.read().decode(errors="replace"), err.read().decode(errors="replace"), seconds,
               usage.ru_maxrss * 1024)


def refused(r, what, *needles):
    """Checks that a Run was refused: exit status 1 and each needle in its stderr."""
    tail = r.stderr[-600:].strip().replace("\n", " | ")
    check(r.returncode == 1, f"{what}: exit 1 (got {r.returncode}) {tail if r.returncode != 1 else ''}")
    for n in needles:
        check(n in r.stderr, f"{what}: the error says '{n}': {tail}")


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
