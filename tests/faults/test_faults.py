"""Crash safety of `vidfeat extract` under injected faults (docs/DESIGN.md, "What survives what").

  test_faults.py MODE VIDFEAT SOURCE_DIR SHIM

MODE:
  sweep1  kill -9 at every counted call (H5Dwrite, H5Fflush, H5Dset_extent, fdatasync, and every
          pwrite of the output inside an H5Fflush) of a 1-rank run, each followed by a rerun
  sweep3  the same on rank 1 of a 3-rank run (H5Dwrite, H5Fflush, H5Dset_extent, fdatasync,
          MPI_File_write_at_all)
  random  20 kills of a rank at seeded random times, each followed by a rerun
  diskfull  a run on a small tmpfs that fills up, then space freed and the same command rerun;
          and the journal's write failing with ENOSPC (fault shim)
  grow    new work on a finished file: snapshot into a base journal, the file destroyed, rebuilt
  crash   a video that segfaults the process (fault shim, in the decode worker): recorded
          failed after two crashes; the other videos complete
Every rerun must end with a file equal, per video id, to an uninterrupted run's (status, feature
bytes, segment rows), no orphan rows, and the journals removed. The reference is a run without
faults of the same command; features of one video are bit-identical whatever the ranks
(DistMpi_ranks), so one reference serves every run.

SHIM is tests/support/fault_shim.c built as a shared object (LD_PRELOAD; never part of vidfeat).
"""
import concurrent.futures
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

import h5py

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import vftest  # noqa: E402
from vftest import MPI_ENV, TINY, check, extract_command, finish, per_video, reference, write_manifest  # noqa: E402

MODE, VIDFEAT, SRC, SHIM = sys.argv[1:5]
CONFIG = os.path.join(SRC, "configs/Kinetics/SLOW_8x8_R50.yaml")
JOBS = int(os.environ.get("VIDFEAT_FAULT_JOBS", "2"))  # kill points run side by side
FAULT_VARS = ["LD_PRELOAD", "VIDFEAT_FAULT_RANK", "VIDFEAT_FAULT_CALL", "VIDFEAT_FAULT_N", "VIDFEAT_FAULT_ACTION",
              "VIDFEAT_FAULT_COUNT", "VIDFEAT_FAULT_STICKY", "VIDFEAT_FAULT_SEGV_OPEN", "VIDFEAT_FAULT_PATH",
              "VIDFEAT_FAULT_WPATH"]


def make_videos(tmp, seconds):
    """Small generated videos (ffmpeg testsrc2 / testsrc), one per duration in `seconds`."""
    rows = []
    for i, s in enumerate(seconds):
        p = os.path.join(tmp, f"v{i}.mp4")
        src = "testsrc2" if i % 2 == 0 else "testsrc"
        subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                        f"{src}=size=96x64:rate=25:duration={s}", "-c:v", "libx264", "-pix_fmt", "yuv420p", p],
                       check=True)
        rows.append((f"v{i}", p))
    return rows


def command(ranks, manifest, out, extra=()):
    base = extract_command(VIDFEAT, CONFIG, manifest, out, TINY, extra)
    if ranks == 1:
        return base
    cmd = ["mpirun", "-n", str(ranks), "--oversubscribe", "--allow-run-as-root"]
    for v in FAULT_VARS:
        cmd += ["-x", v]
    return cmd + base


def run(ranks, manifest, out, fault=None, timeout=120, extra=()):
    env = dict(MPI_ENV)
    for v in FAULT_VARS:
        env.pop(v, None)
    if fault:
        env.update(fault)
        env["LD_PRELOAD"] = SHIM
    try:
        return subprocess.run(command(ranks, manifest, out, extra), env=env, capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired as e:
        return subprocess.CompletedProcess(e.cmd, -999, e.stdout or "", f"TIMEOUT after {timeout} s")


def same_as_reference(out, ref, what):
    """The checks every rerun must pass; returns the number of failed checks."""
    bad = 0
    try:
        got = per_video(out)
    except Exception as e:  # noqa: BLE001 - an unreadable file is a failed check
        return 0 if check(False, f"{what}: the file reads ({e})") else 1
    if got != ref:
        diff = sorted(k for k in set(got) | set(ref) if got.get(k) != ref.get(k))
        bad += not check(False, f"{what}: per video id equal to the uninterrupted run (differ: {diff})")
    with h5py.File(out, "r") as f:
        used = sum(int(v["segment_count"]) for v in vftest.video_table(f))
        if not (f["features"].shape[0] == used == f["segments"].shape[0]):
            bad += not check(False, f"{what}: no orphan rows (features {f['features'].shape[0]}, "
                                    f"segments {f['segments'].shape[0]}, referenced {used})")
    if os.path.exists(out + ".journal") or os.path.exists(out + ".rebuild"):
        bad += not check(False, f"{what}: the journals and temporary files are gone after the complete run")
    return bad


def rerun_same(ranks, manifest, out, ref, what):
    """Reruns the same command on `out`: it must complete and give the reference file. Returns
    (failed checks, the rerun's log)."""
    r = run(ranks, manifest, out)
    if r.returncode != 0:
        check(False, f"{what}: the rerun completes (rc {r.returncode}) {r.stderr[-1500:]}")
        return 1, r.stderr
    return same_as_reference(out, ref, what), r.stderr


def count_calls(tmp, ranks, manifest, calls, rank):
    cnt = os.path.join(tmp, f"count-{calls.replace(',', '_')}-{ranks}")
    out = os.path.join(tmp, f"count-{ranks}.h5")
    shutil.rmtree(out + ".journal", ignore_errors=True)
    r = run(ranks, manifest, out, {"VIDFEAT_FAULT_CALL": calls, "VIDFEAT_FAULT_RANK": str(rank),
                                   "VIDFEAT_FAULT_COUNT": cnt})
    check(r.returncode == 0, f"counting run ({ranks} rank(s), {calls}) completes (rc {r.returncode})")
    n = 0
    for line in open(cnt):
        parts = line.split()
        if int(parts[1]) == rank:
            n = int(parts[3])
    os.remove(out)
    return n


def kill_point(tmp, ranks, manifest, ref, calls, rank, n):
    """Kill at the n-th counted call, rerun, compare. Returns (killed, failed checks, log)."""
    d = tempfile.mkdtemp(dir=tmp)
    out = os.path.join(d, "out.h5")
    r = run(ranks, manifest, out, {"VIDFEAT_FAULT_CALL": calls, "VIDFEAT_FAULT_RANK": str(rank),
                                   "VIDFEAT_FAULT_N": str(n), "VIDFEAT_FAULT_ACTION": "kill"})
    killed = r.returncode != 0
    bad, log = rerun_same(ranks, manifest, out, ref, f"{ranks} rank(s), kill at {calls} call {n} on rank {rank}")
    shutil.rmtree(d, ignore_errors=True)
    return killed, bad, log


def sweep(tmp, ranks, rank, call_sets):
    manifest = write_manifest(tmp, make_videos(tmp, [1, 2]))
    ref = reference(run, tmp, manifest)
    points = []
    for calls in call_sets:
        total = count_calls(tmp, ranks, manifest, calls, rank)
        print(f"{ranks} rank(s): {total} calls of {calls} on rank {rank}", flush=True)
        check(total > 0, f"the run makes {calls} calls on rank {rank}")
        points += [(calls, n) for n in range(1, total + 1)]
    t0 = time.time()
    killed = bad = rebuilt = repaired = 0
    totals = {}
    for calls, n in points:
        totals[calls] = max(totals.get(calls, 0), n)
    early_missed = []  # points well inside the counted range that did not kill the run
    with concurrent.futures.ThreadPoolExecutor(JOBS) as pool:
        for (calls, n), (k, b, log) in zip(points, pool.map(
                lambda p: kill_point(tmp, ranks, manifest, ref, p[0], rank, p[1]), points)):
            killed += k
            bad += b
            if not k and n <= totals[calls] // 2:
                early_missed.append(f"{calls} call {n}")
            rebuilt += "rebuilt from the journals" in log
            repaired += "journaled results the file lacks" in log
    print(f"{ranks} rank(s): {len(points)} kill points ({killed} killed a run), {rebuilt} reruns rebuilt the file, "
          f"{repaired} repaired a lagging file, {time.time() - t0:.0f} s", flush=True)
    # With several ranks the calls of one rank vary a little from run to run (the hand-out and the
    # waves are dynamic): a point past this run's last call does not kill it (the rerun is checked
    # all the same).
    # How many calls a rank makes past the first half of the counted range depends on the load of
    # the machine (with --wave 1 a wave follows whichever rank finishes first), so only that first
    # half must kill every time, and at least half of all points must.
    want = len(points) if ranks == 1 else (len(points) + 1) // 2
    check(killed >= want, f"{killed} of the {len(points)} kill points killed the run (at least {want})")
    check(ranks == 1 or not early_missed,
          f"every kill point in the first half of the counted calls killed the run (missed: {early_missed})")
    check(bad == 0, f"after each of the {len(points)} kills the rerun gives the uninterrupted file")


def mode_sweep1(tmp):
    sweep(tmp, 1, 0, ["H5Dwrite,H5Fflush,H5Dset_extent,fdatasync", "flushpwrite"])


def mode_sweep3(tmp):
    sweep(tmp, 3, 1, ["H5Dwrite,H5Fflush,H5Dset_extent,fdatasync,MPI_File_write_at_all"])


def mode_random(tmp):
    manifest = write_manifest(tmp, make_videos(tmp, [1, 2, 1]))
    ref = reference(run, tmp, manifest)
    rng = random.Random(13)
    # How long a run takes here, to draw kill times inside it.
    t = time.time()
    run(1, manifest, os.path.join(tmp, "timing.h5"))
    span = time.time() - t
    bad = killed = 0

    def one(k):
        d = tempfile.mkdtemp(dir=tmp)
        out = os.path.join(d, "out.h5")
        ranks = 1 if k % 2 == 0 else 2
        delay = rng_draws[k] * span
        env = dict(MPI_ENV)
        for v in FAULT_VARS:
            env.pop(v, None)
        hit = False
        for attempt in range(3):  # a run that ended before its kill (a quicker machine) is killed sooner
            if attempt:
                shutil.rmtree(d, ignore_errors=True)
                os.makedirs(d)
                delay /= 3
            p = subprocess.Popen(command(ranks, manifest, out), env=env, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL, start_new_session=True)
            time.sleep(delay)
            victim = None
            if ranks == 1:
                victim = p.pid
            else:  # one of the ranks, not mpirun
                kids = subprocess.run(["pgrep", "-s", str(p.pid), "-f", "vidfeat extract"], capture_output=True,
                                      text=True).stdout.split()
                ranks_pids = [int(x) for x in kids if int(x) != p.pid]
                victim = ranks_pids[k % len(ranks_pids)] if ranks_pids else None
            if victim and p.poll() is None:
                try:
                    os.kill(victim, 9)
                    hit = True
                except ProcessLookupError:
                    pass
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, 9)
                p.wait()
            if hit:
                break
        b, _ = rerun_same(ranks, manifest, out, ref, f"random kill {k} ({ranks} rank(s), after {delay:.2f} s)")
        shutil.rmtree(d, ignore_errors=True)
        return hit, b

    rng_draws = [rng.uniform(0.3, 1.0) for _ in range(20)]
    with concurrent.futures.ThreadPoolExecutor(JOBS) as pool:
        for hit, b in pool.map(one, range(20)):
            killed += hit
            bad += b
    print(f"20 random kills: {killed} hit a running job", flush=True)
    check(killed >= 10, f"most random kills hit a running job ({killed} of 20)")
    check(bad == 0, "after each random kill the rerun gives the uninterrupted file")


def mode_diskfull(tmp):
    rows = make_videos(tmp, [1, 2, 1, 2])
    manifest = write_manifest(tmp, rows)
    ref = reference(run, tmp, manifest)
    # 1. A real full disk: the output on a tmpfs too small for it.
    mnt = os.path.join(tmp, "small")
    os.makedirs(mnt)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", mnt], capture_output=True).returncode != 0:
        print("SKIP: cannot mount a tmpfs here (not root?)")
        shutil.rmtree(tmp, ignore_errors=True)
        sys.exit(77)
    try:
        out = os.path.join(mnt, "out.h5")
        # Fill the file system so that what is left lasts for the start of the run only: the complete
        # output stores about 60 KB here (its chunks are allocated sparsely) and the journal 40 KB.
        ballast = os.path.join(mnt, "ballast")
        st = os.statvfs(mnt)
        with open(ballast, "wb") as f:
            f.write(b"\1" * (st.f_bavail * st.f_frsize - 48 * 1024))
        r = run(1, manifest, out, timeout=120)
        text = r.stderr
        check(r.returncode not in (0, -999) and r.returncode > 0,
              f"a run that fills the disk exits non-zero, by itself (rc {r.returncode})")
        check("disk full" in text and mnt in text, "the message says 'disk full' and names the path: " +
              next((line for line in text.splitlines() if "disk full" in line), text[-300:]))
        check("Segmentation" not in text and "core dumped" not in text and r.returncode < 128,
              "no crash on the way out")
        os.remove(ballast)  # space freed
        r2 = run(1, manifest, out)
        check(r2.returncode == 0, f"after freeing space the same command completes (rc {r2.returncode}) "
                                  f"{r2.stderr[-1500:] if r2.returncode else ''}")
        if r2.returncode == 0:
            check(same_as_reference(out, ref, "disk full, freed, rerun") == 0, "disk full, freed, rerun: identical")
    finally:
        subprocess.run(["umount", "-l", mnt])
    # 2. The journal's own write or sync failing with ENOSPC (the shim): detected, clear, resumable.
    for calls, n in (("write", 5), ("fdatasync", 4)):
        d = tempfile.mkdtemp(dir=tmp)
        out = os.path.join(d, "out.h5")
        r = run(1, manifest, out, {"VIDFEAT_FAULT_CALL": calls, "VIDFEAT_FAULT_N": str(n),
                                   "VIDFEAT_FAULT_ACTION": "enospc", "VIDFEAT_FAULT_STICKY": "1"})
        check(r.returncode == 1, f"journal {calls} fails with ENOSPC: exit 1 (rc {r.returncode})")
        check("disk full" in r.stderr and ".vfj" in r.stderr and "No space left on device" in r.stderr,
              f"journal {calls} ENOSPC: message names the journal and the reason: " +
              next((line for line in r.stderr.splitlines() if "disk full" in line), r.stderr[-300:]))
        r2 = run(1, manifest, out)
        check(r2.returncode == 0 and same_as_reference(out, ref, f"journal {calls} ENOSPC, rerun") == 0,
              f"journal {calls} ENOSPC: the rerun completes identical (rc {r2.returncode})")
        shutil.rmtree(d, ignore_errors=True)


def mode_crash(tmp):
    rows = make_videos(tmp, [1, 2, 1])
    bomb = os.path.join(tmp, "bomb.mp4")
    shutil.copy(rows[1][1], bomb)
    rows.insert(1, ("bomb", bomb))
    manifest = write_manifest(tmp, rows)
    good = write_manifest(tmp, [r for r in rows if r[0] != "bomb"], "good.csv")
    ref = reference(run, tmp, good)
    out = os.path.join(tmp, "out.h5")
    fault = {"VIDFEAT_FAULT_SEGV_OPEN": "bomb.mp4"}
    rcs = []
    for attempt in range(3):
        r = run(1, manifest, out, fault)
        rcs.append(r.returncode)
        if r.returncode in (0, 3):
            break
    print(f"exit codes: {rcs}")
    check(rcs[:2] == [-11, -11] or (len(rcs) >= 2 and all(rc not in (0, 3) for rc in rcs[:2])),
          f"the first two runs die inside the bomb video (rc {rcs[:2]})")
    check(len(rcs) == 3 and rcs[2] == 3, f"the third run records it failed and finishes: exit 3 (rc {rcs})")
    check("crashed the process twice" in r.stderr, "the run says why the video failed")
    got = per_video(out)
    check(got.get("bomb", (None,))[0] == 2, "the bomb video is recorded failed")
    with h5py.File(out, "r") as f:
        ids = [v.decode() for v in vftest.video_table(f)["video_id"]]
        v = vftest.video_table(f)[ids.index("bomb")]
        stages = [x["stage"].decode() for x in f["failures"][:] if int(x["video_row"]) == ids.index("bomb")]
        check("crashed the process twice" in v["error"].decode(), f"its error: {v['error'].decode()[:120]}")
        check(stages == ["crash"], f"its failure stage is 'crash' ({stages})")
    del got["bomb"]
    check(got == ref, "the other videos complete, equal to a run without the bomb")
    r = run(1, manifest, out, fault)
    check(r.returncode == 3 and "0 to extract" in r.stderr, "a further rerun does not try it again")


def mode_grow(tmp):
    """New work on a finished file (no journals): its content is copied into a base journal first,
    so a kill that leaves the file unreadable loses nothing of what it held."""
    rows = make_videos(tmp, [1, 2, 1])
    m2 = write_manifest(tmp, rows[:2], "m2.csv")
    m3 = write_manifest(tmp, rows, "m3.csv")
    ref = reference(run, tmp, m3)
    out = os.path.join(tmp, "out.h5")
    r = run(1, m2, out)
    check(r.returncode == 0 and not os.path.exists(out + ".journal"), "the first run completes and removes its journals")
    r = run(1, m3, out, {"VIDFEAT_FAULT_CALL": "H5Dwrite", "VIDFEAT_FAULT_N": "1", "VIDFEAT_FAULT_ACTION": "kill"})
    check(r.returncode != 0, f"the grown run is killed at its first write to the file (rc {r.returncode})")
    journals = os.listdir(out + ".journal") if os.path.isdir(out + ".journal") else []
    check(any(j.startswith("base-") for j in journals), f"a base journal was written before that write ({journals})")
    with open(out, "r+b") as f:  # what a kill inside a metadata flush can leave: not an HDF5 file any more
        f.truncate(1000)
    r = run(1, m3, out)
    check(r.returncode == 0 and "rebuilt from the journals" in r.stderr,
          f"the rerun rebuilds the file (rc {r.returncode}) {r.stderr[-1500:] if r.returncode else ''}")
    check(same_as_reference(out, ref, "grown, killed, file destroyed, rerun") == 0,
          "the rebuilt file holds the first run's videos and the new one, equal to an uninterrupted run")


def main():
    tmp = tempfile.mkdtemp(prefix=f"vidfeat-faults-{MODE}-")
    globals()["mode_" + MODE](tmp)
    finish(tmp)


if __name__ == "__main__":
    main()
