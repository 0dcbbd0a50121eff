#!/usr/bin/python3
"""vidfeat against PySlowFast, in one invocation on one machine: writes BENCHMARKS.md.

  /usr/bin/python3 tools/bench/bench.py [--build build-bench] [--models C2D_8x8_R50,X3D_S] \
      [--repeat 5] [--threads N] [--videos v_GGSY1Qvo990.mp4,chaplin.mp4] [--resume]

Per model, random weights (every parameter and BatchNorm statistic, seeded; the full-size
checkpoint and input come from tools/reference/pysf_ref.py, or tools/fixtures/make_tsm_fixtures.py for
TSM, and are kept in --work so a rerun does not make them again):

  forward     `vidfeat verify --repeat N` (LibTorch, one warm-up, median of N) against
              tools/bench/pysf_forward.py (PySlowFast's own model in eager Python on the same
              checkpoint and the same input tensor, inference_mode, one warm-up, median of N);
              both with --threads T. FLOPs per clip are counted on the PySlowFast model (2 x the
              multiply-adds of convolutions and matrix products) and divided by each forward time.
  end to end  per video of --videos: `vidfeat extract` (one rank, --batch 1, decode to HDF5
              written; run right after vidfeat's forward measurement, on a manifest listing the
              video twice: "first" carries the one-time costs of the process, "steady" is the
              second video, decoding overlapped with the model) against tools/reference/seed_pipeline.py
              (PyAV decode, buckets, PySlowFast preprocessing, forward with batch 1, .npz
              written); vidfeat's model-only time is its clips x the forward median above; the
              HDF5 write time is the one vidfeat's summary prints.
  peak RSS    ru_maxrss of each child process (os.wait4), so every figure is one process's own.

Once per run: the machine's ceiling (tools/bench/ceiling.py: sgemm and conv3d GFLOP/s with torch,
the same threads), and memory flatness (peak RSS of `vidfeat extract` with a tiny random model on
generated 1-minute and 20-minute testsrc videos).

The bench removes OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE from its children's environment (only
here; BENCHMARKS.md says what they were and which OpenBLAS kernel set was then detected) and sets
OMP_NUM_THREADS to --threads for both sides.

Results are kept per model in --work/results/<model>.json; BENCHMARKS.md is rewritten after every
model from the results of this run. --resume also takes the models (and flatness) already
measured by an earlier, interrupted run with the same work folder, and measures only the rest.
"""
import argparse
import datetime
import json
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOOLS = os.path.dirname(HERE)
REPO = os.path.dirname(TOOLS)
sys.path.insert(0, os.path.join(REPO, "tests", "support"))
from vftest import TINY  # noqa: E402  (the tiny SLOW model of the end-to-end tests)

# name, config, kind, PySlowFast-side overrides. Zoo I, then the MViTs and TSM.
MODELS = [
    ("C2D_8x8_R50", "configs/Kinetics/C2D_8x8_R50.yaml", "pysf", []),
    # PySlowFast never registered ResNet_nopool: the same network is slow_c2d (docs/MODELS.md).
    ("C2D_NOPOOL_8x8_R50", "configs/Kinetics/c2/C2D_NOPOOL_8x8_R50.yaml", "pysf",
     ["MODEL.ARCH", "slow_c2d", "MODEL.MODEL_NAME", "ResNet"]),
    ("I3D_8x8_R50", "configs/Kinetics/I3D_8x8_R50.yaml", "pysf", []),
    ("I3D_NLN_8x8_R50", "configs/Kinetics/I3D_NLN_8x8_R50.yaml", "pysf", []),
    ("SLOW_8x8_R50", "configs/Kinetics/SLOW_8x8_R50.yaml", "pysf", []),
    ("SLOWFAST_8x8_R50", "configs/Kinetics/SLOWFAST_8x8_R50.yaml", "pysf", []),
    ("SLOWFAST_16x8_R50", "configs/Charades/SLOWFAST_16x8_R50.yaml", "pysf", []),
    ("SLOWFAST_16x8_R101_50_50", "configs/Kinetics/c2/SLOWFAST_16x8_R101_50_50.yaml", "pysf", []),
    ("X3D_S", "configs/Kinetics/X3D_S.yaml", "pysf", []),
    ("X3D_M", "configs/Kinetics/X3D_M.yaml", "pysf", []),
    ("MVITv2_S_16x4", "configs/Kinetics/MVITv2_S_16x4.yaml", "pysf", []),
    ("MVIT_B_32x3", "configs/Kinetics/MVIT_B_32x3_CONV.yaml", "pysf", []),
    ("REV_MVIT_B_16x4", "configs/Kinetics/REV_MVIT_B_16x4_CONV.yaml", "pysf", []),
    ("TSM_R50", "configs/TSM/TSM_R50_shift8_blockres_avg_segment8.yaml", "tsm", []),
]
DEFAULT_VIDEOS = "v_GGSY1Qvo990.mp4,chaplin.mp4"
# The flatness runs: the tests' tiny model, clips 64 frames apart (fewer forwards, the same decode).
FLAT_SETS = [y for v in [v for v in TINY[1::2] if not v.startswith("DATA.SAMPLING_RATE=")] +
             ["DATA.SAMPLING_RATE=16"] for y in ("--set", v)]
FORWARD_TARGET, E2E_TARGET, RSS_TARGET, WRITE_TARGET = 0.5, 1.1, 0.10, 0.01  # issue 18: every model


# ---------------------------------------------------------------------------------------------
# children


def run_child(cmd, log, env, timeout):
    """Runs cmd (cwd = the repository) with output to `log`; returns rc, text, wall, peak RSS (MB)."""
    os.makedirs(os.path.dirname(log), exist_ok=True)
    with open(log, "w") as f:
        f.write("$ " + " ".join(shlex.quote(c) for c in cmd) + "\n")
        f.flush()
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=env, cwd=REPO)
        killed = []
        timer = threading.Timer(timeout, lambda: (killed.append(1), p.kill()))
        timer.start()
        try:
            _, status, usage = os.wait4(p.pid, 0)  # this child's own ru_maxrss
        finally:
            timer.cancel()
        p.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - t0
    with open(log) as f:
        text = f.read()
    rc = p.returncode
    if killed:
        text += f"\n[bench] killed after {timeout} s\n"
    return {"rc": rc, "text": text, "wall_s": wall, "rss_mb": usage.ru_maxrss / 1024.0, "timed_out": bool(killed),
            "log": log}


class StepError(Exception):
    pass


def must(res, what):
    if res["rc"] != 0:
        tail = "\n".join(res["text"].strip().splitlines()[-6:])
        why = "timed out" if res["timed_out"] else f"exit code {res['rc']}"
        raise StepError(f"{what} failed ({why}, log {res['log']}):\n{tail}")
    return res


def last_json(text, what):
    for line in reversed(text.strip().splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise StepError(f"{what}: no JSON result line in its output")


def find(pattern, text, what, cast=float):
    m = re.search(pattern, text, re.M)
    if not m:
        raise StepError(f"{what}: no line matching {pattern!r} in its output")
    return cast(m.group(1)) if m.lastindex == 1 else tuple(cast(g) for g in m.groups())


# ---------------------------------------------------------------------------------------------
# steps


class Bench:
    def __init__(self, a):
        self.a = a
        self.work = os.path.abspath(a.work)
        self.vidfeat = os.path.abspath(os.path.join(REPO, a.build, "vidfeat")) if not os.path.isabs(a.build) \
            else os.path.join(a.build, "vidfeat")
        self.env = dict(os.environ)
        self.removed = {k: self.env.pop(k, None) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
        self.env.update(OMP_NUM_THREADS=str(a.threads), PYSF=os.path.abspath(a.pysf),
                        OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
                        OMPI_MCA_rmaps_base_oversubscribe="1")
        self.py = a.python
        for d in ("fixtures", "results", "logs", "e2e", "videos"):
            os.makedirs(os.path.join(self.work, d), exist_ok=True)

    def path(self, *p):
        return os.path.join(self.work, *p)

    def child(self, cmd, log, timeout=None, env=None):
        return run_child(cmd, self.path("logs", log), env or self.env, timeout or self.a.timeout)

    # -- the machine ----------------------------------------------------------------------------
    def ceiling(self):
        res = must(self.child([self.py, os.path.join(HERE, "ceiling.py"), "--threads", str(self.a.threads)],
                              "ceiling.log"), "ceiling")
        out = last_json(res["text"], "ceiling")
        core = (out.get("openblas") or {}).get("corename")
        if self.a.probe_coretype and core and core != self.a.probe_coretype:
            # What the detected kernel set costs: the same probe with the core type forced.
            env = dict(self.env, OPENBLAS_CORETYPE=self.a.probe_coretype)
            r2 = self.child([self.py, os.path.join(HERE, "ceiling.py"), "--threads", str(self.a.threads)],
                            "ceiling_forced_coretype.log", env=env)
            if r2["rc"] == 0:
                out["forced"] = last_json(r2["text"], "ceiling (forced core type)")
                out["ceiling_gflops"] = max(out["ceiling_gflops"], out["forced"]["ceiling_gflops"])
        out["vidfeat_libs"] = self.linked_libs(self.vidfeat)
        return out

    @staticmethod
    def linked_libs(binary):
        try:
            text = subprocess.run(["ldd", binary], capture_output=True, text=True, timeout=60).stdout
        except (OSError, subprocess.TimeoutExpired):
            return {}
        libs = {}
        for line in text.splitlines():
            m = re.match(r"\s*(\S+) => (\S+)", line)
            if m and any(k in m.group(1) for k in ("blas", "lapack", "gomp", "dnnl", "torch_cpu", "mkl")):
                libs[m.group(1)] = os.path.realpath(m.group(2))
        return libs

    # -- fixtures -------------------------------------------------------------------------------
    def fixture(self, name, config, kind, pysf_opts):
        """(checkpoint, io, vidfeat --set overrides): made once, kept in work/fixtures."""
        prefix = self.path("fixtures", name)
        if kind == "tsm":
            meta = prefix + ".json"
            if not os.path.exists(meta):
                if not self.a.tsm or not os.path.isdir(os.path.join(self.a.tsm, "ops")):
                    raise StepError(f"TSM needs --tsm DIR, an export of mit-han-lab/temporal-shift-module "
                                    f"(got {self.a.tsm!r})")
                code = ("import json, sys, types; sys.path.insert(0, sys.argv[1]); import make_tsm_fixtures as m; "
                        "spec = [s for s in m.FULL if s[2]][0]; "
                        "r = m.make(types.SimpleNamespace(tsm=sys.argv[2]), spec, sys.argv[3], m.NUM_CLASSES_FULL, "
                        "seed=7 + m.FULL.index(spec)); json.dump(r, open(sys.argv[4], 'w'))")
                must(self.child([self.py, "-c", code, os.path.join(TOOLS, "fixtures"), os.path.abspath(self.a.tsm), self.path("fixtures"),
                                 meta + ".tmp"], f"{name}.fixture.log"), f"{name}: making the TSM fixture")
                os.replace(meta + ".tmp", meta)
            with open(meta) as f:
                r = json.load(f)
            files = {k: self.path("fixtures", v) for k, v in r["files"].items()}
            sets = [o for o in r["overrides"] if o.startswith("DATA.NUM_FRAMES=")]
            return files["checkpoint"], files["io"], sets
        ckpt, io = prefix + ".pyth", prefix + ".io.pt"
        if not (os.path.exists(ckpt) and os.path.exists(io)):
            ref = os.path.join(self.a.reference, "pysf_ref.py")
            must(self.child([self.py, ref, os.path.join(REPO, config), "--pysf", os.path.abspath(self.a.pysf),
                             "--save", prefix + ".tmp", "--reps", "1", "--threads", str(self.a.threads)] + pysf_opts,
                            f"{name}.fixture.log"),
                 f"{name}: pysf_ref.py")
            for ext in (".legacy.pyth", ".json"):  # not used here; the legacy copy is as large as the model
                if os.path.exists(prefix + ".tmp" + ext):
                    os.remove(prefix + ".tmp" + ext)
            os.replace(prefix + ".tmp.io.pt", io)
            os.replace(prefix + ".tmp.pyth", ckpt)  # last: its presence means the pair is complete
        return ckpt, io, []

    # -- forward --------------------------------------------------------------------------------
    def forward_vidfeat(self, name, config, ckpt, io, sets, log="verify"):
        cmd = [self.vidfeat, "verify", "--config", os.path.join(REPO, config), "--checkpoint", ckpt, "--io", io,
               "--threads", str(self.a.threads), "--repeat", str(self.a.repeat), "--device", "cpu"]
        for s in sets:
            cmd += ["--set", s]
        res = self.child(cmd, f"{name}.{log}.log")
        if res["rc"] != 1 or "rel. error" not in res["text"]:  # 1: above the tolerance, still timed
            must(res, f"{name}: vidfeat verify")
        runs = find(r"^forward\s+\S+ s\s+\(median of \d+:([\d. ]+)\)", res["text"], "vidfeat verify", str) \
            if self.a.repeat > 1 else find(r"^forward\s+(\S+) s", res["text"], "vidfeat verify", str)
        runs = [float(x) for x in runs.split()]
        return {"forward_s": statistics.median(runs), "runs": runs, "rss_mb": res["rss_mb"],
                "rel_err": find(r"^rel\. error\s+(\S+)", res["text"], "vidfeat verify")}

    def forward_reference(self, name, config, kind, ckpt, io, pysf_opts):
        cmd = [self.py, os.path.join(HERE, "pysf_forward.py"), os.path.join(REPO, config), ckpt, io,
               "--threads", str(self.a.threads), "--repeat", str(self.a.repeat), "--pysf", os.path.abspath(self.a.pysf),
               "--reference", self.a.reference]
        if kind == "tsm":
            cmd += ["--tsm", os.path.abspath(self.a.tsm)]
        res = must(self.child(cmd + pysf_opts, f"{name}.reference.log"), f"{name}: reference forward")
        out = last_json(res["text"], f"{name}: reference forward")
        out["forward_s"] = statistics.median(out["runs"])
        out["rss_mb"] = res["rss_mb"]
        return out

    # -- end to end -----------------------------------------------------------------------------
    # vidfeat's side runs right after its forward measurement (the machine's speed drifts over
    # minutes; adjacent runs compare like with like). The manifest lists the video twice (the second
    # under the id <vid>__again): the first video's time includes the process's one-time costs (the
    # first forward builds MKL-DNN's kernels and fills the allocator's cache), the second's is the
    # steady state of a dataset, decoding overlapped with the model.
    # "[rank 0] " prefixes every line of an extract's log (src/run/progress, plain output).
    STAMP = r"^(?:\[rank \d+\] )?\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+)\] \[info\] "

    @staticmethod
    def stamp(text, pattern, what):
        m = re.search(Bench.STAMP + pattern, text, re.M)
        if not m:
            raise StepError(f"{what}: no line matching {pattern!r} in its output")
        return datetime.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S.%f")

    def e2e_vidfeat(self, name, config, ckpt, sets, fwd_s):
        rows = []
        for video in self.videos:
            vid = os.path.splitext(os.path.basename(video))[0]
            d = self.path("e2e", name)
            os.makedirs(d, exist_ok=True)
            manifest = os.path.join(d, vid + ".csv")
            with open(manifest, "w") as f:
                f.write(f"video_id,path\n{vid},{video}\n{vid}__again,{video}\n")
            h5 = os.path.join(d, vid + ".h5")
            row = {"video": os.path.basename(video), "vid": vid, "h5": h5}
            try:
                cmd = [self.vidfeat, "extract", "-v", "--config", os.path.join(REPO, config), "--checkpoint", ckpt,
                       "--manifest", manifest, "--output", h5, "--overwrite", "--threads", str(self.a.threads),
                       "--device", "cpu", "--batch", "1"]
                for s in sets:
                    cmd += ["--set", s]
                res = must(self.child(cmd, f"{name}.{vid}.extract.log"), f"{name} {vid}: vidfeat extract")
                text = res["text"]
                segs, wall = find(r"done: .*? (\d+) segments, ([\d.]+) s,", text, "vidfeat extract")
                t0 = self.stamp(text, r"\d+ videos: ", "vidfeat extract")
                t1 = self.stamp(text, re.escape(vid) + r": \d+ frames", "vidfeat extract")
                t2 = self.stamp(text, re.escape(vid + "__again") + r": \d+ frames", "vidfeat extract")
                clips = int(segs) // 2
                row.update(segments=clips, vidfeat_s=(t1 - t0).total_seconds(),
                           steady_s=(t2 - t1).total_seconds(), vidfeat_total_s=wall, vidfeat_rss_mb=res["rss_mb"],
                           vidfeat_process_s=res["wall_s"], model_only_s=clips * fwd_s)
                m = re.search(r"HDF5 writes ([\d.]+) s", text) or re.search(r"rank 0: .*writing ([\d.]+) s", text)
                row["write_s"] = float(m.group(1)) if m else None
                m = re.search(r"rank 0: .*; model ([\d.]+) s", text)
                row["inrun_model_s"] = float(m.group(1)) if m else None
                m = re.search(r"(\d+) frames, \d+ segments", text)
                row["frames"] = int(m.group(1)) if m else None
            except StepError as e:
                row["vidfeat_error"] = str(e)
            rows.append(row)
        return rows

    def e2e_seed(self, name, config, kind, ckpt, pysf_opts, rows):
        if kind != "pysf":
            return rows
        for row, video in zip(rows, self.videos):
            vid, h5 = row["vid"], row["h5"]
            d = self.path("e2e", name)
            try:
                cmd = [self.py, os.path.join(TOOLS, "reference", "seed_pipeline.py"), video, os.path.join(REPO, config), ckpt,
                       "--out", os.path.join(d, vid + ".seed.npz"), "--threads", str(self.a.threads),
                       "--pysf", os.path.abspath(self.a.pysf), "--reference", self.a.reference]
                if os.path.exists(h5) and "vidfeat_error" not in row:
                    cmd += ["--compare", h5, "--video-id", vid]
                res = self.child(cmd + pysf_opts, f"{name}.{vid}.seed.log")
                # --compare exits 1 when the segment counts differ: the timing is still good.
                text = res["text"]
                row["seed_s"], row["seed_decode_s"], row["seed_forward_s"] = find(
                    r"^pipeline ([\d.]+) s: decode ([\d.]+) s, forward ([\d.]+) s", text, "seed_pipeline.py")
                row["seed_rss_mb"] = res["rss_mb"]
                m = re.search(r"overall ([\d.e+-]+)", text)
                row["seed_rel_err"] = float(m.group(1)) if m else None
                m = re.search(r"segments: vidfeat (\d+), seed (\d+)", text)
                if m and m.group(1) != m.group(2):
                    row["seed_note"] = f"segments differ: vidfeat {m.group(1)}, seed {m.group(2)}"
                if res["rc"] != 0 and not m:
                    must(res, f"{name} {vid}: seed_pipeline.py")
            except StepError as e:
                row["seed_error"] = str(e)
        return rows

    # -- memory flatness ------------------------------------------------------------------------
    def flatness(self):
        rows = []
        for minutes in self.a.flat_minutes:
            video = self.path("videos", f"testsrc_{minutes}min.mp4")
            if not os.path.exists(video):
                must(self.child(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i",
                                 f"testsrc=size=160x120:rate=25:duration={int(minutes * 60)}",
                                 "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
                                 video + ".tmp.mp4"], f"flat_{minutes}min.ffmpeg.log"), "ffmpeg testsrc")
                os.replace(video + ".tmp.mp4", video)
            manifest = self.path("videos", f"testsrc_{minutes}min.csv")
            with open(manifest, "w") as f:
                f.write(f"video_id,path\ntestsrc_{minutes}min,{video}\n")
            cmd = [self.vidfeat, "extract", "-v", "--config", os.path.join(REPO, "configs/Kinetics/SLOW_8x8_R50.yaml"),
                   "--random-weights", "1", "--manifest", manifest, "--output",
                   self.path("videos", f"testsrc_{minutes}min.h5"), "--overwrite", "--threads", str(self.a.threads),
                   "--device", "cpu"] + FLAT_SETS
            res = must(self.child(cmd, f"flat_{minutes}min.extract.log"), f"flatness {minutes} min: vidfeat extract")
            segs, wall = find(r"done: .*? (\d+) segments, ([\d.]+) s,", res["text"], "vidfeat extract")
            m = re.search(r"(\d+) frames, \d+ segments", res["text"])
            rows.append({"minutes": minutes, "frames": int(m.group(1)) if m else None, "segments": int(segs),
                         "wall_s": wall, "rss_mb": res["rss_mb"]})
        return {"rows": rows, "settings": " ".join(FLAT_SETS)}

    # -- the run --------------------------------------------------------------------------------
    def measure_model(self, spec):
        name, config, kind, pysf_opts = spec
        out = {"name": name, "config": config, "kind": kind, "load_before": os.getloadavg()[0]}
        t0 = time.perf_counter()
        try:
            ckpt, io, sets = self.fixture(name, config, kind, pysf_opts)
            # This machine's speed drifts by tens of percent over minutes: vidfeat's forward is
            # measured before and after its end-to-end runs (their model-only time is the mean of
            # the two), and the second measurement, right before PySlowFast's, gives the ratio.
            before = self.forward_vidfeat(name, config, ckpt, io, sets, "verify_before_e2e")
            if not self.a.skip_e2e:
                out["e2e"] = self.e2e_vidfeat(name, config, ckpt, sets, before["forward_s"])
            out["vidfeat"] = self.forward_vidfeat(name, config, ckpt, io, sets)
            out["vidfeat_before_e2e"] = before
            for row in out.get("e2e", []):
                if "segments" in row:
                    row["model_only_s"] = row["segments"] * (before["forward_s"] + out["vidfeat"]["forward_s"]) / 2
            out["reference"] = self.forward_reference(name, config, kind, ckpt, io, pysf_opts)
            if not self.a.skip_e2e:
                out["e2e"] = self.e2e_seed(name, config, kind, ckpt, pysf_opts, out["e2e"])
        except StepError as e:
            out["error"] = str(e)
        out["load_after"] = os.getloadavg()[0]
        out["bench_s"] = time.perf_counter() - t0
        return out

    def check_inputs(self):
        problems = []
        if not os.access(self.vidfeat, os.X_OK) and not self.a.fixtures_only:
            problems.append(f"{self.vidfeat}: no vidfeat binary (build it: cmake -G Ninja -S . -B {self.a.build} "
                            f"-DCMAKE_BUILD_TYPE=Release && ninja -C {self.a.build})")
        if not os.path.isdir(os.path.join(self.a.pysf, "slowfast")):
            problems.append(f"--pysf {self.a.pysf}: no slowfast/ package there (export PySlowFast's slowfast/ and "
                            f"configs/, see tools/reference/README.md)")
        if not os.path.exists(os.path.join(self.a.reference, "pysf_ref.py")):
            problems.append(f"--reference {self.a.reference}: no pysf_ref.py")
        self.videos = []
        for v in self.a.videos.split(","):
            p = v if os.path.isabs(v) else os.path.join(self.a.videos_dir, v)
            (self.videos.append(p) if os.path.exists(p) else problems.append(f"{p}: no such video"))
        if not self.a.skip_flatness and shutil.which("ffmpeg") is None:
            problems.append("ffmpeg not found (needed for the flatness videos; or --skip-flatness)")
        if problems:
            sys.exit("bench: cannot run:\n  " + "\n  ".join(problems))


def git_state():
    def git(*args):
        r = subprocess.run(["git", "-C", REPO] + list(args), capture_output=True, text=True)
        return r.stdout.strip()

    dirty = git("status", "--porcelain", "--untracked-files=no")
    return git("rev-parse", "--short", "HEAD") + (" + uncommitted changes" if dirty else "")


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


# ---------------------------------------------------------------------------------------------
# BENCHMARKS.md


def fmt(x, spec=".2f", none="–"):
    return none if x is None else format(x, spec)


def render(run, ceiling, results, flat, argv):
    ceil = ceiling["ceiling_gflops"]
    ob = ceiling.get("openblas") or {}
    vlibs = ceiling.get("vidfeat_libs", {})
    plibs = ceiling.get("libs", {})
    same_blas = sorted(set(vlibs.values()) & set(plibs.values()))
    removed = ", ".join(f"{k} ({'unset' if v is None else 'was ' + repr(v)})" for k, v in run["removed"].items())
    L = []
    w = L.append
    w("# Benchmarks: vidfeat against PySlowFast\n")
    peak_load = max([run["load_start"], os.getloadavg()[0]] +
                    [x for r in results for x in (r.get("load_before", 0), r.get("load_after", 0))])
    if peak_load > run["cores"]:
        w(f"> **Not a quiet machine**: the load average reached {peak_load:.1f} on {run['cores']} cores during "
          "this run, so the times below are longer than the machine's and the ratios are noise. Rerun the "
          "command below on an idle machine.\n")
    w(f"Generated by `tools/bench/bench.py` on {run['date']} (commit {run['commit']}), "
      f"{run['cpu']}, {run['cores']} cores, in {run['total_s'] / 60:.1f} min"
      + (f" (this invocation; {run['kept']} model(s) kept from an earlier run of --resume)" if run.get("kept") else "")
      + ". "
      f"Load average at start {run['load_start']:.2f}, at end {os.getloadavg()[0]:.2f} "
      "(a loaded machine makes every time longer and the ratios noisy).\n")
    w("Regenerate (from the repository root, with the machine otherwise idle):\n")
    w("```\n" + " ".join(shlex.quote(x) for x in argv) + "\n```\n")
    w("## Targets (issues 6 and 18)\n")
    fwd = [(r["name"], r["vidfeat"]["forward_s"] / r["reference"]["forward_s"]) for r in results
           if "vidfeat" in r and "reference" in r]
    bad = [f"{n} {x:.2f}" for n, x in fwd if x > FORWARD_TARGET]
    w(f"- Forward ≤ {FORWARD_TARGET}× PySlowFast eager, every model: {len(fwd) - len(bad)} of {len(fwd)} measured "
      f"models" + (f" (over: {', '.join(bad)})" if bad else "") + ".")
    e2e = [(r["name"], e) for r in results for e in r.get("e2e", []) if e.get("model_only_s")]
    bad = [f"{n} {e['video']} {e['steady_s'] / e['model_only_s']:.2f}" for n, e in e2e
           if e["steady_s"] / e["model_only_s"] > E2E_TARGET]
    w(f"- End to end ≤ {E2E_TARGET}× vidfeat's model-only time (steady state, per video): {len(e2e) - len(bad)} of "
      f"{len(e2e)} model × video rows" + (f" (over: {', '.join(bad)})" if bad else "") + ".")
    shares = [e["write_s"] / e["vidfeat_total_s"] for _, e in e2e
              if e.get("write_s") is not None and e["vidfeat_total_s"]]
    w(f"- HDF5 write time ≤ {WRITE_TARGET:.0%} of wall time: " +
      (f"largest share {max(shares):.2%} over {len(shares)} runs." if shares else "not measured."))
    if flat and len(flat["rows"]) >= 2:
        f0, f1 = flat["rows"][0], flat["rows"][-1]
        growth = f1["rss_mb"] / f0["rss_mb"] - 1
        w(f"- Peak RSS flat from {f0['minutes']} to {f1['minutes']} min of video (within {RSS_TARGET:.0%}): "
          f"{growth:+.1%} {'✅' if abs(growth) <= RSS_TARGET else '❌'}.")
    else:
        w("- Peak RSS flatness: not measured.")
    w("")
    w("## Settings of each side\n")
    w(f"- **Threads**: {run['threads']} on both sides — vidfeat `--threads {run['threads']}` "
      f"(`torch::set_num_threads`), Python `torch.set_num_threads({run['threads']})`; `OMP_NUM_THREADS="
      f"{run['threads']}` in both environments. One rank, CPU, float32, batch 1.")
    w(f"- **Environment**: the bench removes {removed} from its children's environment (only there), so "
      "OpenBLAS picks its kernels by its own CPU detection on both sides.")
    w(f"- **vidfeat**: {run['vidfeat']} — LibTorch and BLAS it links: "
      + ", ".join(f"`{k}` → `{v}`" for k, v in sorted(vlibs.items())) + ".")
    w(f"- **PySlowFast side**: Debian's `/usr/bin/python3`, torch {ceiling['torch']} "
      "(eager, `torch.inference_mode`), libraries mapped: "
      + ", ".join(f"`{v}`" for _, v in sorted(plibs.items())) + ".")
    if same_blas:
        w("- Both sides map the same library files: " + ", ".join(f"`{p}`" for p in same_blas) + ".")
    if ob:
        w(f"- **OpenBLAS**: `{ob.get('config')}`, kernel set detected at run time: **{ob.get('corename')}**. "
          f"oneDNN available to torch: {ceiling.get('mkldnn')}.")
    forced = ceiling.get("forced")
    fcore = (forced.get("openblas") or {}).get("corename") if forced else None
    w("")
    w("## Machine ceiling (torch, same threads, best of the runs)\n")
    if forced:
        w(f"The last column forces `OPENBLAS_CORETYPE={fcore}` for comparison only: nothing else in this file "
          "uses it. Shapes whose figure moves with it run through OpenBLAS, the others through oneDNN.\n")
        w(f"| kernel | GFLOP/s | with {fcore} |\n|---|---|---|")
    else:
        w("| kernel | GFLOP/s |\n|---|---|")
    for key, label in (("sgemm", lambda r: f"sgemm {r['n']}³"), ("conv3d", lambda r: f"conv3d {r['shape']}")):
        for i, r in enumerate(ceiling[key]):
            extra = f" {forced[key][i]['gflops']:.1f} |" if forced else ""
            w(f"| {label(r)} | {r['gflops']:.1f} |{extra}")
    w(f"\nCeiling used below: **{ceil:.1f} GFLOP/s**, the best figure of this table: what this machine's "
      "cores reach in float32 with these libraries.\n")

    w("## Forward per clip (random weights, the same checkpoint and input on both sides)\n")
    w(f"vidfeat: `vidfeat verify --repeat {run['repeat']}`; PySlowFast: `tools/bench/pysf_forward.py`; each "
      f"the median of {run['repeat']} timed forwards after a warm-up, run one right after the other (this "
      "machine's speed drifts over minutes). Ratio = vidfeat / PySlowFast "
      f"(target ≤ {FORWARD_TARGET} for every model). GFLOP per clip = 2 × the multiply-adds of convolutions and "
      "matrix products, counted on the PySlowFast model. RSS = peak resident memory of each process "
      "(model, checkpoint reading and the forward). Rel. error = ‖vidfeat − PySlowFast‖/‖PySlowFast‖ of "
      "the feature.\n")
    w("| model | input | GFLOP/clip | vidfeat s | PySlowFast s | vidfeat / PySlowFast | target | vidfeat GFLOP/s (% ceiling) "
      "| PySlowFast GFLOP/s (% ceiling) | peak RSS vidfeat / PySlowFast MB | rel. error |")
    w("|---|---|---|---|---|---|---|---|---|---|---|")
    notes = []
    for r in results:
        if "vidfeat" not in r or "reference" not in r:
            notes.append(f"- **{r['name']}**: not measured — {r.get('error', 'no result')}")
            w(f"| {r['name']} | | | | | | failed: see below | | | | |")
            continue
        v, p = r["vidfeat"], r["reference"]
        ratio = v["forward_s"] / p["forward_s"]
        target = "✅" if ratio <= FORWARD_TARGET else "❌"
        g = p.get("gflop")
        gv = f"{g / v['forward_s']:.1f} ({100 * g / v['forward_s'] / ceil:.0f}%)" if g else "–"
        gp = f"{g / p['forward_s']:.1f} ({100 * g / p['forward_s'] / ceil:.0f}%)" if g else "–"
        shape = " + ".join("×".join(str(s) for s in t[2:]) for t in p["input"])
        w(f"| {r['name']} | {shape} | {fmt(g, '.1f')} | {v['forward_s']:.3f} | {p['forward_s']:.3f} | "
          f"{ratio:.2f} | {target} | {gv} | {gp} | {v['rss_mb']:.0f} / {p['rss_mb']:.0f} | {v['rel_err']:.1e} |")
        if r.get("error"):
            notes.append(f"- **{r['name']}**: {r['error']}")
        if v["rel_err"] > 1e-4:
            notes.append(f"- **{r['name']}: vidfeat's feature differs from PySlowFast's by {v['rel_err']:.1e}** "
                         "(`vidfeat verify` tolerance 1e-4): its times are of a model that is not the reference.")
        spread = max(v["runs"]) / min(v["runs"]) if min(v["runs"]) > 0 else 0
        if spread > 1.3:
            notes.append(f"- {r['name']}: vidfeat's runs spread {spread:.1f}× ({', '.join(f'{x:.2f}' for x in v['runs'])} s)"
                         " — the machine was not quiet.")
    w("")

    if any("e2e" in r for r in results):
        w("## End to end per video (one rank, batch 1)\n")
        w("vidfeat: `vidfeat extract` run right after its forward measurement, on a manifest listing the video "
          "twice (the second time under the id `<video>__again`), times from its log: **first** = from the start "
          "of the extraction (manifest read; model already loaded) to the first video written — it carries the "
          "process's one-time costs: the first clip's decode with nothing to overlap, and the first forward, "
          "which builds MKL-DNN's kernels and fills the allocator's cache; **steady** = from the first video "
          "written to the second — a video in the middle of a dataset, its decoding overlapped with the model's "
          "work on the video before. Seed: `tools/reference/seed_pipeline.py` (PyAV decode of every frame, PySlowFast's "
          "preprocessing and model, batch 1), its `pipeline` time (one video, model loaded: compare with "
          "vidfeat's first). Model-only = vidfeat's clips × its forward median, the mean of one measurement "
          "right before these runs and the one above (right after them); steady / model-only "
          f"target ≤ {E2E_TARGET}. In-run = the whole extraction's wall time over the seconds its own "
          "forwards took in that same process (its summary): what decoding, waiting and writing added "
          "around the model, free of the drift between processes (but not of the forwards being slowed "
          "by the decode thread's share of the cores). HDF5 = vidfeat's time writing the output, both videos "
          f"(target ≤ {WRITE_TARGET:.0%} of its wall time). Rel. error = vidfeat's features against the seed's "
          "(the difference is the documented uint8 rounding of the resized frame, docs/MODELS.md).\n")
        w("| model | video (clips) | vidfeat first s | vidfeat steady s | seed s | vidfeat first / seed | "
          "vidfeat model-only s | steady / model-only | first / model-only | wall / in-run model | "
          "HDF5 write s (% wall) | peak RSS vidfeat / seed MB | rel. error vs seed |")
        w("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for r in results:
            for e in r.get("e2e", []):
                if "vidfeat_s" not in e:
                    w(f"| {r['name']} | {e['video']} | failed: see below | | | | | | | | | | |")
                    notes.append(f"- **{r['name']} {e['video']}**: {e.get('vidfeat_error')}")
                    continue
                seed = e.get("seed_s")
                ratio = f"{e['vidfeat_s'] / seed:.2f}" if seed else "–"
                mo = e["model_only_s"]
                em = e["steady_s"] / mo if mo else None
                em_s = f"{em:.2f} {'✅' if em <= E2E_TARGET else '❌'}" if em else "–"
                cold = f"{e['vidfeat_s'] / mo:.2f}" if mo else "–"
                inrun = f"{e['vidfeat_total_s'] / e['inrun_model_s']:.2f}" if e.get("inrun_model_s") else "–"
                if e.get("write_s") is not None:
                    share = e["write_s"] / e["vidfeat_total_s"] if e["vidfeat_total_s"] else 0
                    ws = f"{e['write_s']:.3f} ({share:.1%}) {'✅' if share <= WRITE_TARGET else '❌'}"
                else:
                    ws = "not printed"
                rss = f"{e['vidfeat_rss_mb']:.0f} / {fmt(e.get('seed_rss_mb'), '.0f')}"
                rel = fmt(e.get("seed_rel_err"), ".1e")
                w(f"| {r['name']} | {e['video']} ({e['segments']}) | {e['vidfeat_s']:.1f} | {e['steady_s']:.1f} | "
                  f"{fmt(seed, '.1f')} | {ratio} | {mo:.1f} | {em_s} | {cold} | {inrun} | {ws} | {rss} | {rel} |")
                if e.get("seed_error"):
                    notes.append(f"- {r['name']} {e['video']}: seed pipeline: {e['seed_error']}")
                if e.get("seed_note"):
                    notes.append(f"- {r['name']} {e['video']}: {e['seed_note']}")
        if any(r["kind"] == "tsm" for r in results):
            notes.append("- TSM has no seed pipeline (PySlowFast does not build it): its end-to-end row is "
                         "vidfeat against its own model-only time.")
        w("")

    if flat:
        w("## Memory flatness\n")
        rows = flat["rows"]
        w("Peak RSS of `vidfeat extract` (one rank) on generated `testsrc` videos (160×120, 25 fps, H.264), "
          f"a tiny random SLOW model (`{flat['settings']}`) so that the pipeline's memory, not the "
          f"model's, dominates. Target: within {RSS_TARGET:.0%}.\n")
        w("| video | frames | clips | wall s | peak RSS MB |\n|---|---|---|---|---|")
        for f in rows:
            w(f"| {f['minutes']} min | {fmt(f['frames'], 'd')} | {f['segments']} | {f['wall_s']:.1f} | {f['rss_mb']:.1f} |")
        if len(rows) >= 2:
            growth = rows[-1]["rss_mb"] / rows[0]["rss_mb"] - 1
            w(f"\nGrowth from {rows[0]['minutes']} to {rows[-1]['minutes']} min: {growth:+.1%} "
              f"{'✅' if abs(growth) <= RSS_TARGET else '❌'}\n")
    if flat is None and run.get("flat_error"):
        notes.append(f"- Memory flatness not measured: {run['flat_error']}")

    if notes:
        w("## Notes\n")
        L.extend(notes)
        w("")
    w("Per-step logs of this run: `" + run["work"] + "/logs/`.")
    return "\n".join(L) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build-bench", help="vidfeat build folder (relative to the repository)")
    ap.add_argument("--models", default="all", help="comma-separated names (or 'all'): " +
                    ", ".join(m[0] for m in MODELS))
    ap.add_argument("--repeat", type=int, default=5, help="timed forwards per side (median)")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--videos", default=DEFAULT_VIDEOS, help="comma-separated, relative to --videos-dir")
    ap.add_argument("--videos-dir", default=os.path.join(REPO, "..", "shared", "videos"))
    ap.add_argument("--pysf", default=os.environ.get("PYSF", "/tmp/SlowFast"), help="PySlowFast export")
    ap.add_argument("--tsm", default="/tmp/tsm", help="mit-han-lab/temporal-shift-module export (TSM only)")
    ap.add_argument("--reference", default=os.path.join(TOOLS, "reference"),
                    help="folder of pysf_ref.py and its stubs (default: tools/reference)")
    ap.add_argument("--work", default="/tmp/vidfeat-bench", help="fixtures, results and logs (kept)")
    ap.add_argument("--out", default=os.path.join(REPO, "BENCHMARKS.md"))
    ap.add_argument("--python", default="/usr/bin/python3")
    ap.add_argument("--timeout", type=float, default=3600, help="seconds per child process")
    ap.add_argument("--flat-minutes", default="1,20", help="lengths of the flatness videos")
    ap.add_argument("--probe-coretype", default="SkylakeX",
                    help="also measure the ceiling with this OPENBLAS_CORETYPE, for the header ('' = no)")
    ap.add_argument("--skip-e2e", action="store_true")
    ap.add_argument("--skip-flatness", action="store_true")
    ap.add_argument("--resume", action="store_true",
                    help="keep the complete results an earlier run left in --work; measure the missing or failed")
    ap.add_argument("--fixtures-only", action="store_true",
                    help="only make the missing checkpoints and inputs in --work (slow, once; no timing)")
    a = ap.parse_args()
    a.reference = os.path.abspath(a.reference)
    a.videos_dir = os.path.abspath(a.videos_dir)
    a.flat_minutes = [float(x) if "." in x else int(x) for x in a.flat_minutes.split(",") if x]
    wanted = [m for m in MODELS if a.models == "all" or m[0] in a.models.split(",")]
    unknown = set(a.models.split(",")) - {m[0] for m in MODELS} - {"all"}
    if unknown:
        sys.exit(f"bench: unknown model(s) {sorted(unknown)}; known: {', '.join(m[0] for m in MODELS)}")

    b = Bench(a)
    b.check_inputs()
    if a.fixtures_only:
        for spec in wanted:
            t0 = time.perf_counter()
            try:
                b.fixture(*spec)
                print(f"bench: {spec[0]}: fixture ready ({time.perf_counter() - t0:.0f} s)", flush=True)
            except StepError as e:
                print(f"bench: {spec[0]}: {e}", flush=True)
        return
    t_start = time.perf_counter()
    run = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
           "commit": git_state(), "cpu": cpu_name(), "cores": os.cpu_count(), "threads": a.threads,
           "repeat": a.repeat, "removed": b.removed, "load_start": os.getloadavg()[0], "work": b.work,
           "vidfeat": os.path.relpath(b.vidfeat, REPO)}
    argv = ["/usr/bin/python3", "tools/bench/bench.py"] + sys.argv[1:]
    print(f"bench: ceiling ({a.threads} threads)", flush=True)
    ceiling = b.ceiling()
    print(f"bench: ceiling {ceiling['ceiling_gflops']:.1f} GFLOP/s, OpenBLAS "
          f"{(ceiling.get('openblas') or {}).get('corename')}", flush=True)
    results, flat = [], None

    # The sections of tools/bench/decode.py, scale.py and multi_model.py (between their markers)
    # are kept as they are.
    kept = ""
    if os.path.exists(a.out):
        old = open(a.out, encoding="utf-8").read()
        for tool in ("decode.py", "scale.py", "multi_model.py"):
            begin, end = f"<!-- tools/bench/{tool}: begin -->", f"<!-- tools/bench/{tool}: end -->"
            if begin in old and end in old:
                kept += "\n" + begin + old.split(begin, 1)[1].split(end, 1)[0] + end + "\n"

    def write():
        run["total_s"] = time.perf_counter() - t_start
        with open(a.out + ".tmp", "w") as f:
            f.write(render(run, ceiling, results, flat, argv) + kept)
        os.replace(a.out + ".tmp", a.out)

    for spec in wanted:
        path = b.path("results", spec[0] + ".json")
        if a.resume and os.path.exists(path):
            with open(path) as f:
                kept = json.load(f)
            failed = kept.get("error") or any("vidfeat_error" in e or "seed_error" in e for e in kept.get("e2e", []))
            if not failed:
                results.append(kept)
                run["kept"] = run.get("kept", 0) + 1
                print(f"bench: {spec[0]}: kept from the earlier run", flush=True)
                continue
        print(f"bench: {spec[0]} ...", flush=True)
        r = b.measure_model(spec)
        with open(path, "w") as f:
            json.dump(r, f, indent=1)
        results.append(r)
        if "vidfeat" in r and "reference" in r:
            print(f"bench: {spec[0]}: vidfeat {r['vidfeat']['forward_s']:.3f} s, reference "
                  f"{r['reference']['forward_s']:.3f} s, {r['bench_s']:.0f} s spent", flush=True)
        if r.get("error"):
            print(f"bench: {spec[0]}: {r['error']}", flush=True)
        write()
    if not a.skip_flatness:
        path = b.path("results", "flatness.json")
        if a.resume and os.path.exists(path):
            with open(path) as f:
                flat = json.load(f)
        else:
            print("bench: memory flatness ...", flush=True)
            try:
                flat = b.flatness()
                with open(path, "w") as f:
                    json.dump(flat, f, indent=1)
            except StepError as e:
                run["flat_error"] = str(e)
                print(f"bench: flatness: {e}", flush=True)
    write()
    print(f"bench: wrote {a.out} in {(time.perf_counter() - t_start) / 60:.1f} min", flush=True)


if __name__ == "__main__":
    main()
