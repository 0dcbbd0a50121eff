"""How a `vidfeat extract` job ends when something outside it happens (docs/DESIGN.md, "What survives
what"): a stop signal, an error on one rank, a stuck rank, a second job on the same output.

  test_lifecycle.py MODE VIDFEAT SOURCE_DIR SHIM

MODE:
  signals     SIGTERM mid-run on 1 rank and on one of 3 ranks, SIGUSR1 to mpirun (3 ranks), and a
              second SIGTERM: exit code 75 (interrupted, resumable) within a bound, the rerun ends
              with a file equal per video id to an uninterrupted run's.
  rank_error  the 5th H5Dwrite of rank 1 of 3 failing (the LD_PRELOAD fault shim SHIM,
              tests/support/fault_shim.c, VIDFEAT_FAULT_ACTION=fail): the job exits non-zero within
              60 s naming the rank and the error; the same call hanging (VIDFEAT_FAULT_ACTION=hang):
              the watchdog (--watchdog 5) ends the job with its message; each rerun completes
              identical.
  lock        a second run on an output a live run holds is refused naming the holder (host, pid,
              SLURM job id), also with --overwrite; a lock left by a run killed with SIGKILL is
              taken over; a lock of another host is live while its heartbeat is fresh and taken
              over once it is older than 120 s.

The videos are generated here with the ffmpeg CLI (testsrc2, 20-29 s each, so a run lasts a few
seconds and a signal lands mid-run); the model is SLOW_8x8_R50 made small (SMALL below).
"""
import hashlib
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

import h5py

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from vftest import MPI_ENV, TINY, check, finish, write_manifest  # noqa: E402

MODE, VIDFEAT, SRC, SHIM = sys.argv[1:5]
CONFIG = os.path.join(SRC, "configs/Kinetics/SLOW_8x8_R50.yaml")
INTERRUPTED = 75  # stop_signal.h kInterrupted, README "Exit code"
DONE = re.compile(r": \d+ frames, \d+ segments")
# vftest's tiny model made 16x heavier (width 16, 112 px crops), so that a run lasts seconds even on
# an idle machine and a signal or a kill lands mid-run.
SMALL = [x for x in TINY]
for key, value in [("RESNET.WIDTH_PER_GROUP", "16"), ("DATA.TRAIN_CROP_SIZE", "112"), ("DATA.TEST_CROP_SIZE", "112"),
                   ("DATA.TRAIN_JITTER_SCALES", "[112, 140]")]:
    SMALL[SMALL.index(next(x for x in SMALL if x.startswith(key + "=")))] = f"{key}={value}"


def make_videos(tmp, n=10):
    rows = []
    for i in range(n):
        p = os.path.join(tmp, f"v{i}.mp4")
        subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                        f"testsrc2=size=160x120:rate=25:duration={20 + i}", "-c:v", "libx264", "-preset",
                        "ultrafast", "-pix_fmt", "yuv420p", p], check=True)
        rows.append((f"v{i}", p))
    return write_manifest(tmp, rows), n


def command(ranks, manifest, out, extra=()):
    base = [VIDFEAT, "extract", "--config", CONFIG, "--random-weights", "3", "--threads", "1"] + SMALL + \
           ["--manifest", manifest, "--output", out, "--wave", "1", "--wave-seconds", "0"] + list(extra)
    # 1 rank: vidfeat alone (an MPI singleton), so the signal goes to vidfeat itself.
    return base if ranks == 1 else ["mpirun", "-n", str(ranks), "--oversubscribe"] + base


def run(ranks, manifest, out, extra=(), env=None, timeout=300):
    return subprocess.run(command(ranks, manifest, out, extra), env=env or MPI_ENV, capture_output=True,
                          text=True, timeout=timeout)


def start(ranks, manifest, out, log, extra=(), env=None):
    f = open(log, "w")
    return subprocess.Popen(command(ranks, manifest, out, extra), env=env or MPI_ENV, stdout=f,
                            stderr=subprocess.STDOUT, start_new_session=True)


def wait_for(log, p, videos, limit=120):
    """Until the log shows `videos` finished videos (or the process ended)."""
    deadline = time.time() + limit
    while time.time() < deadline and p.poll() is None:
        if len(DONE.findall(open(log).read())) >= videos:
            return True
        time.sleep(0.02)
    return False


def end(p, limit=120):
    try:
        return p.wait(timeout=limit)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
        return None


def rank_pids(p):
    """PIDs of the vidfeat ranks under mpirun `p`, by rank (OMPI_COMM_WORLD_RANK of each)."""
    out = {}
    kids = subprocess.run(["pgrep", "-P", str(p.pid)], capture_output=True, text=True).stdout.split()
    for pid in map(int, kids):
        try:
            env = open(f"/proc/{pid}/environ", "rb").read().split(b"\0")
        except OSError:
            continue
        for e in env:
            if e.startswith(b"OMPI_COMM_WORLD_RANK="):
                out[int(e.split(b"=")[1])] = pid
    return out


def per_video(path):
    """video id -> (status, sha256 of its feature rows, its /segments rows)."""
    out = {}
    with h5py.File(path, "r") as f:
        feats, segs = f["features"][:], f["segments"][:]
        for v in f["videos"][:]:
            a, n = int(v["first_row"]), int(v["segment_count"])
            rows = segs[a:a + n][["segment", "first_frame", "last_frame", "start_time", "end_time", "padded_frames"]]
            out[v["video_id"].decode()] = (int(v["status"]), hashlib.sha256(feats[a:a + n].tobytes()).hexdigest(),
                                           rows.tobytes())
    return out


def complete_count(path):
    try:
        return sum(1 for s, *_ in per_video(path).values() if s == 1)
    except OSError:
        return -1  # not readable as it is (the rerun repairs it from the journals)


def reference(tmp, manifest):
    ref = os.path.join(tmp, "ref.h5")
    r = run(1, manifest, ref)
    check(r.returncode == 0, f"uninterrupted reference run: exit 0 (got {r.returncode}) {r.stderr[-1500:]}")
    return per_video(ref)


def rerun_identical(ranks, manifest, out, want, what):
    r = run(ranks, manifest, out)
    check(r.returncode == 0, f"{what}: the rerun exits 0 (got {r.returncode}) {r.stderr[-1500:] if r.returncode else ''}")
    if r.returncode == 0:
        check(per_video(out) == want, f"{what}: after the rerun every video equals the uninterrupted run's "
                                      "(status, features, segments)")
        check(not os.path.exists(out + ".lock"), f"{what}: the lock is removed at the end")
    return r


def mode_signals(tmp):
    manifest, n = make_videos(tmp)
    want = reference(tmp, manifest)
    # (ranks, what, how the signal is sent)
    cases = [(1, "SIGTERM to vidfeat (1 rank)", "term"),
             (3, "SIGTERM to rank 1 of 3", "term-rank"),
             (3, "SIGUSR1 to mpirun (3 ranks)", "usr1-mpirun"),
             (1, "two SIGTERMs (1 rank)", "term-twice")]
    for ranks, what, how in cases:
        out = os.path.join(tmp, f"{how}.h5")
        log = os.path.join(tmp, f"{how}.log")
        p = start(ranks, manifest, out, log)
        check(wait_for(log, p, 2), f"{what}: the run got going (2 videos done)")
        target = p.pid
        if how == "term-rank":
            pids = rank_pids(p)
            check(1 in pids, f"{what}: found rank 1 ({pids})")
            target = pids.get(1, p.pid)
        sig = signal.SIGUSR1 if how == "usr1-mpirun" else signal.SIGTERM
        t0 = time.time()
        os.kill(target, sig)
        if how == "term-twice":
            time.sleep(0.05)
            os.kill(target, signal.SIGTERM)
        rc = end(p)
        took = time.time() - t0
        text = open(log).read()
        print(f"{what}: exit {rc} {took:.2f} s after the signal", flush=True)
        check(rc == INTERRUPTED, f"{what}: exit code {INTERRUPTED} (interrupted, resumable), got {rc}")
        # The bound (docs/DESIGN.md): the batch in hand + one wave + the close; a batch and a wave
        # take well under a second with this model.
        check(took < 30, f"{what}: stopped within 30 s ({took:.2f} s)")
        if how == "term-twice":
            check("again: exiting now" in text, f"{what}: the second signal exits at once")
        else:
            check("stopped by a signal" in text, f"{what}: the job says it stopped on a signal")
            check(not os.path.exists(out + ".lock"), f"{what}: the lock is removed after the graceful stop")
            done = complete_count(out)
            print(f"{what}: {done} of {n} videos complete on disk", flush=True)
            check(0 < done < n, f"{what}: the finished videos were written, the rest left ({done} of {n})")
            r = rerun_identical(ranks, manifest, out, want, what)
            check(f"{n - done} to extract, {done} already complete" in r.stderr,
                  f"{what}: the rerun does only what was left")
            continue
        rerun_identical(ranks, manifest, out, want, what)


def mode_rank_error(tmp):
    manifest, n = make_videos(tmp)
    want = reference(tmp, manifest)
    for what, extra_env, extra in [("H5Dwrite failing on rank 1 of 3", {"VIDFEAT_FAULT_ACTION": "fail"}, []),
                                   ("rank 1 of 3 hanging in H5Dwrite, --watchdog 5", {"VIDFEAT_FAULT_ACTION": "hang"},
                                    ["--watchdog", "5"])]:
        out = os.path.join(tmp, "err.h5")
        env = dict(MPI_ENV, LD_PRELOAD=SHIM, VIDFEAT_FAULT_CALL="H5Dwrite", VIDFEAT_FAULT_RANK="1",
                   VIDFEAT_FAULT_N="5", **extra_env)
        t0 = time.time()
        try:
            r = run(3, manifest, out, extra, env=env, timeout=120)
            rc, text = r.returncode, r.stderr + r.stdout
        except subprocess.TimeoutExpired as e:
            rc, text = None, str(e.stderr or "")
        took = time.time() - t0
        print(f"{what}: exit {rc} after {took:.1f} s", flush=True)
        check(f"H5Dwrite call 5 of rank 1" in text, f"{what}: the shim struck")
        check(rc not in (None, 0), f"{what}: the job exits non-zero (got {rc})")
        check(took < 60, f"{what}: within 60 s ({took:.1f} s)")
        if extra_env["VIDFEAT_FAULT_ACTION"] == "hang":
            check(re.search(r"rank \d: watchdog: no collective step .* completed for \d+ s", text) is not None,
                  f"{what}: the watchdog names itself and the rank")
        else:
            check(re.search(r"rank 1: I/O error on .*err\.h5: H5Dwrite\(/\w+\) failed", text) is not None,
                  f"{what}: the message names rank 1 and the error")
        rerun_identical(3, manifest, out, want, what)
        for suffix in ("", ".lock"):
            if os.path.exists(out + suffix):
                os.remove(out + suffix)
        subprocess.run(["rm", "-rf", out + ".journal"])


def lock_text(host, pid, job="none"):
    return (f"vidfeat output lock\noutput=x\nhost={host}\npid={pid}\nslurm_job={job}\n"
            f"started=2026-01-01T00:00:00Z\ntoken=feedfacefeedface\n")


def mode_lock(tmp):
    manifest, n = make_videos(tmp, 6)
    want = reference(tmp, manifest)
    host = socket.gethostname()
    out = os.path.join(tmp, "l.h5")
    log = os.path.join(tmp, "a.log")
    a = start(1, manifest, out, log, env=dict(MPI_ENV, SLURM_JOB_ID="4242"))
    deadline = time.time() + 60
    while not os.path.exists(out + ".lock") and time.time() < deadline and a.poll() is None:
        time.sleep(0.02)
    check(os.path.exists(out + ".lock"), "the first run holds l.h5.lock")
    # Stopped (SIGSTOP), it stays a live holder however long the second runs take; SIGCONT below.
    os.kill(a.pid, signal.SIGSTOP)
    for extra in ([], ["--overwrite"]):
        t0 = time.time()
        r = run(1, manifest, out, extra)
        took = time.time() - t0
        what = "second run" + (" with --overwrite" if extra else "")
        print(f"{what}: exit {r.returncode} after {took:.1f} s", flush=True)
        check(r.returncode == 1 and a.poll() is None, f"{what}: refused (exit 1) while the first is alive")
        check(f"is in use by another vidfeat job: host {host}, pid {a.pid}, SLURM job 4242" in r.stderr,
              f"{what}: the refusal names the holder (host, pid, SLURM job id): "
              f"{[x for x in r.stderr.splitlines() if 'in use' in x][:1]}")
    os.kill(a.pid, signal.SIGCONT)
    rc = end(a)
    check(rc == 0 and per_video(out) == want, f"the first run completes undisturbed (exit {rc})")
    check(not os.path.exists(out + ".lock"), "its lock is removed at the end")

    # A run killed with SIGKILL leaves its lock: the rerun (same host, pid gone) takes it over.
    out = os.path.join(tmp, "k.h5")
    log = os.path.join(tmp, "k.log")
    k = start(1, manifest, out, log)
    check(wait_for(log, k, 1), "the run to kill got going")
    os.kill(k.pid, signal.SIGKILL)
    end(k)
    check(f"pid={k.pid}\n" in open(out + ".lock").read(), "SIGKILL left the lock of the killed pid")
    r = rerun_identical(1, manifest, out, want, "after SIGKILL")
    check(re.search(rf"took over a stale lock \(its process {k.pid} on this host .* is gone\)", r.stderr) is not None,
          "the rerun says it took over the dead run's lock")

    # Another host's lock: live while its heartbeat is fresh, stale once older than 120 s.
    out = os.path.join(tmp, "h.h5")
    open(out + ".lock", "w").write(lock_text("node-elsewhere", 1, "777"))
    r = run(1, manifest, out)
    check(r.returncode == 1 and "host node-elsewhere, pid 1, SLURM job 777" in r.stderr,
          "a fresh lock of another host refuses the run, naming it")
    old = time.time() - 200
    os.utime(out + ".lock", (old, old))
    r = rerun_identical(1, manifest, out, want, "another host's lock 200 s old")
    check("took over a stale lock (no heartbeat for" in r.stderr, "the 200 s old lock is taken over as stale")


def main():
    tmp = tempfile.mkdtemp(prefix=f"vidfeat-lifecycle-{MODE}-")
    {"signals": mode_signals, "rank_error": mode_rank_error, "lock": mode_lock}[MODE](tmp)
    finish(tmp)


if __name__ == "__main__":
    main()
