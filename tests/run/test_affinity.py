"""A rank given fewer cores than its --threads says so (Open MPI 4.1 binds each rank to one core
when it starts 2 ranks or fewer; the threads then share that core silently).

  test_affinity.py VIDFEAT SOURCE_DIR CORPUS_DIR

The CPU affinity is set with taskset (util-linux): one core with --threads 2 → the warning naming
both numbers and the mpirun options that fix it; one core with --threads 1, and two cores with
--threads 2 (where the machine has two) → no warning. Each run must still complete.
"""
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import vftest  # noqa: E402
from vftest import check  # noqa: E402

VIDFEAT, SRC, CORPUS = sys.argv[1:4]
vftest.use_corpus(CORPUS)
SLOW = os.path.join(SRC, "configs/Kinetics/SLOW_8x8_R50.yaml")
if not shutil.which("taskset"):
    vftest.skip("taskset (util-linux) not found")
cores = sorted(os.sched_getaffinity(0))
WARNING = "LibTorch thread(s) but this process may run on only"


def run(cpus, threads, tmp, name):
    m = vftest.write_manifest(tmp, [("one", vftest.corpus_video("rot90.mov"))], name + ".csv")
    out = os.path.join(tmp, name + ".h5")
    cmd = vftest.extract_command(VIDFEAT, SLOW, m, out)
    cmd[cmd.index("--threads") + 1] = str(threads)
    r = subprocess.run(["taskset", "-c", ",".join(map(str, cpus)), *cmd], capture_output=True,
                       text=True, timeout=300)
    check(r.returncode == 0, f"{name}: the run completes ({r.stderr[-300:]})")
    return r.stderr


with tempfile.TemporaryDirectory() as tmp:
    err = run(cores[:1], 2, tmp, "one_core_two_threads")
    line = next((l for l in err.splitlines() if WARNING in l), "")
    check("2 LibTorch thread(s)" in line and "only 1 core(s)" in line,
          f"one core, --threads 2: warned with both numbers ({line!r})")
    check("--map-by slot:PE=2 --bind-to core" in line and "--bind-to none" in line,
          "the warning names the mpirun options that give the rank its cores")
    check(WARNING not in run(cores[:1], 1, tmp, "one_core_one_thread"),
          "one core, --threads 1: no warning")
    if len(cores) >= 2:
        check(WARNING not in run(cores[:2], 2, tmp, "two_cores_two_threads"),
              "two cores, --threads 2: no warning")
    else:
        print("note: one core only; the two-core case is not run")
vftest.finish(tempfile.mkdtemp())
