#!/usr/bin/env python3
"""vidfeat's GPU check: one table (and one JSON file) of what a CUDA node does with vidfeat.

  tools/gpu/check.sh BUNDLE.tar.xz [--quick] [--out DIR] [--pysf DIR]   # on the GPU node
  tools/gpu/check.sh --vidfeat build/src/cli/vidfeat [--quick] ...      # a build tree, e.g. here

Rows, each measured in this run (tools/gpu/README.md says how and what it costs):
  1 parity      every model of `vidfeat models`, full size, random weights (gpu_probe): CUDA fp32
                feature vs the CPU fp32 feature of the same weights and input (TF32 off), <= 1e-4
                relative; bf16 / fp16 errors next to it.
  2 throughput  clips/s at batch 1, 8, 32 (then doubled until it flattens) per precision, GPU
                memory per batch, channels_last_3d gain; one run per distinct network.
  3 anchor      PySlowFast's own eager model (tools/gpu/pysf_anchor.py, the node's torch only) at
                the same batch and precision: vidfeat / PySlowFast time ratio (goal <= 0.5).
  4 decoding    NVDEC vs vidfeat's CPU decoder frames/s, 1080p / 360p H.264 and HEVC, sampling 1, 8.
  5 end to end  `vidfeat extract` of ~100 generated videos, SLOWFAST_8x8_R50 and X3D_M,
                --decode-device cpu and cuda: clips/s, share of time waiting for decoded clips.

It degrades: every step is a child process with its own timeout inside a per-row budget; a step
that fails or runs out of time gives FAILED cells with the reason, and the other rows go on.
Without a CUDA device (CPU fallback) every CUDA cell says "no CUDA device" and the CPU parts run.
Python standard library and (for row 3) torch only.
"""
import argparse
import datetime
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tarfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

QUICK_MODELS = ["SLOWFAST_8x8_R50", "X3D_M", "MVITv2_S_16x4"]
E2E_MODELS = ["SLOWFAST_8x8_R50", "X3D_M"]
PRECISIONS = ["fp32", "bf16", "fp16"]
PARITY_TOL = 1e-4
ANCHOR_GOAL = 0.5
# Per-row budgets in seconds (full run; --quick scales them). Unused time of a row goes to the next.
BUDGETS = {"setup": 25, "models": 250, "anchor": 80, "decode": 45, "e2e": 70}
QUICK_BUDGETS = {"setup": 20, "models": 70, "anchor": 35, "decode": 20, "e2e": 30}
NO_CUDA = "no CUDA device"


# ------------------------------------------------------------------------------------------------
# the table


class Table:
    """Rows of (row, item, setting, result, detail); a FAILED cell carries its reason."""

    def __init__(self):
        self.rows = []

    def add(self, row, item, setting, result, detail="", ok=None, failed=False, data=None):
        self.rows.append({"row": row, "item": item, "setting": setting, "result": result, "detail": detail,
                          "ok": ok, "failed": failed, "data": data or {}})

    def fail(self, row, item, setting, why, data=None):
        self.add(row, item, setting, "FAILED: " + one_line(why), failed=True, data=data)

    def render(self):
        head = ("row", "item", "setting", "result", "detail")
        cells = [head] + [(r["row"], r["item"], r["setting"],
                           r["result"] + ({True: " ok", False: " MISSED"}.get(r["ok"], "")), r["detail"])
                          for r in self.rows]
        width = [min(70, max(len(c[i]) for c in cells)) for i in range(len(head))]
        out = []
        for n, c in enumerate(cells):
            out.append("| " + " | ".join(c[i].ljust(width[i]) for i in range(len(head))) + " |")
            if n == 0:
                out.append("|" + "|".join("-" * (w + 2) for w in width) + "|")
        return "\n".join(out)


def one_line(text, limit=160):
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def fmt(v, spec=".3g", none="-"):
    return none if v is None else format(v, spec)


# ------------------------------------------------------------------------------------------------
# children


class Budget:
    """Seconds left for one row, and overall."""

    def __init__(self, total_deadline, seconds):
        self.end = min(total_deadline, time.monotonic() + seconds)

    def left(self):
        return self.end - time.monotonic()


def run(cmd, log, timeout, env=None, cwd=None):
    """Runs cmd with stdout+stderr to `log`; kills its whole process group at the timeout.
    Returns dict(rc, text, wall_s, timed_out)."""
    os.makedirs(os.path.dirname(log), exist_ok=True)
    timeout = max(1.0, timeout)
    t0 = time.monotonic()
    with open(log, "w") as f:
        f.write("$ " + " ".join(shlex.quote(str(c)) for c in cmd) + "\n")
        f.flush()
        try:
            p = subprocess.Popen([str(c) for c in cmd], stdout=f, stderr=subprocess.STDOUT, env=env, cwd=cwd,
                                 start_new_session=True)
        except OSError as e:
            return {"rc": 127, "text": str(e), "wall_s": 0.0, "timed_out": False, "log": log}
        timed_out = False
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except OSError:
                pass
            p.wait()
    with open(log, errors="replace") as f:
        text = f.read()
    return {"rc": p.returncode, "text": text, "wall_s": time.monotonic() - t0, "timed_out": timed_out,
            "log": log, "timeout": timeout}


def json_lines(text):
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{") and line.endswith("}"):
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
    return out


def why(res, what):
    """The reason a child failed, for a FAILED cell."""
    if res["timed_out"]:
        return f"{what}: timed out after {res['timeout']:.0f} s (log {res['log']})"
    tail = [l for l in res["text"].strip().splitlines()[1:] if l.strip()][-2:]
    return f"{what}: exit code {res['rc']}: {' / '.join(tail)} (log {res['log']})"


# ------------------------------------------------------------------------------------------------
# the check


class Check:
    def __init__(self, a):
        self.a = a
        self.t0 = time.monotonic()
        self.deadline = self.t0 + a.budget
        self.out = os.path.abspath(a.out)
        self.logs = os.path.join(self.out, "logs")
        os.makedirs(self.logs, exist_ok=True)
        self.table = Table()
        self.raw = {}
        self.times = {}
        self.cuda = False
        self.env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
        self.threads = a.threads or os.cpu_count() or 1
        budgets = QUICK_BUDGETS if a.quick else BUDGETS
        scale = a.budget / 480.0 if not a.quick else a.budget / 170.0
        self.budgets = {k: v * scale for k, v in budgets.items()}
        self.carry = 0.0  # unused seconds of earlier rows

    def budget(self, row):
        b = Budget(self.deadline, self.budgets[row] + self.carry)
        return b

    def spent(self, row, b, t_start):
        self.times[row] = time.monotonic() - t_start
        self.carry = max(0.0, b.left())

    def forced(self, row):
        return row in self.a.force_fail

    # -- setup --------------------------------------------------------------------------------
    def setup(self):
        a = self.a
        if a.bundle:
            dest = os.path.join(self.out, "bundle")
            if not os.path.isdir(dest) or a.unpack_again:
                shutil.rmtree(dest, ignore_errors=True)
                os.makedirs(dest)
                with tarfile.open(a.bundle) as t:
                    t.extractall(dest)
            tops = [d for d in os.listdir(dest) if os.path.isdir(os.path.join(dest, d, "bin"))]
            if not tops:
                raise SystemExit(f"check: {a.bundle} has no <folder>/bin/ (tools/bundle/build.sh makes <name>/bin/vidfeat ...)")
            b = os.path.join(dest, tops[0])
            self.vidfeat = os.path.join(b, "bin", "vidfeat")
            self.probe = a.probe or os.path.join(b, "bin", "gpu_probe")
            self.mpirun = os.path.join(b, "bin", "mpirun")
            self.ffmpeg = a.ffmpeg or (os.path.join(b, "bin", "ffmpeg") if os.path.exists(os.path.join(b, "bin", "ffmpeg"))
                                       else shutil.which("ffmpeg"))
            self.configs = os.path.join(b, "share", "vidfeat", "configs")
        else:
            self.vidfeat = os.path.abspath(a.vidfeat)
            # build/vidfeat (the copy at the top of a build tree) or build/src/cli/vidfeat
            build = os.path.dirname(self.vidfeat)
            for up in (build, os.path.dirname(os.path.dirname(build))):
                if os.path.exists(os.path.join(up, "tools", "gpu", "gpu_probe")):
                    build = up
                    break
            self.probe = a.probe or os.path.join(build, "tools", "gpu", "gpu_probe")
            self.mpirun = None
            self.ffmpeg = a.ffmpeg or shutil.which("ffmpeg")
            self.configs = os.environ.get("VIDFEAT_CONFIG_DIR") or os.path.join(build, "share", "vidfeat", "configs")
            if not os.path.isfile(os.path.join(self.configs, "models.yaml")):
                self.configs = os.path.join(REPO, "configs")
        for path, what in ((self.vidfeat, "vidfeat"), (self.probe, "gpu_probe")):
            if not os.path.exists(path):
                raise SystemExit(f"check: {what} not found at {path}")
        self.env["VIDFEAT_CONFIG_DIR"] = self.configs
        res = run([self.probe, "info"], os.path.join(self.logs, "info.log"), 120, env=self.env)
        info = next((j for j in json_lines(res["text"]) if j.get("kind") == "info"), None)
        self.raw["info"] = info
        if info is None:
            raise SystemExit("check: " + why(res, "gpu_probe info"))
        self.cuda = bool(info.get("cuda")) and not self.a.no_cuda
        self.raw["gpu"] = self.nvidia_smi()
        res = run([self.vidfeat, "models"], os.path.join(self.logs, "models.log"), 60, env=self.env)
        models = []
        for line in res["text"].splitlines()[1:]:
            m = re.match(r"^(\S+)\s+(\d+)\s+(\S+)\s+(\d+|\?)\s+.*?\s(\S+\.yaml)", line)
            if m and m.group(1) != "name":
                models.append({"name": m.group(1), "dim": int(m.group(2)), "config": os.path.join(self.configs, m.group(5))})
        if not models:
            raise SystemExit("check: " + why(res, "vidfeat models") + " (no models listed)")
        if a.models:
            want = a.models.split(",")
            unknown = sorted(set(want) - {m["name"] for m in models})
            if unknown:
                raise SystemExit(f"check: unknown model(s) {unknown}")
            models = [m for m in models if m["name"] in want]
        elif a.quick:
            models = [m for m in models if m["name"] in QUICK_MODELS]
        self.models = models

    def nvidia_smi(self):
        exe = shutil.which("nvidia-smi")
        if not exe:
            return None
        try:
            r = subprocess.run([exe, "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
                               capture_output=True, text=True, timeout=20)
            return r.stdout.strip() or None
        except (OSError, subprocess.TimeoutExpired):
            return None

    # -- rows 1 and 2 ---------------------------------------------------------------------------
    def models_rows(self):
        row_p, row_t = "1 parity", "2 throughput"
        b = self.budget("models")
        t_start = time.monotonic()
        seen = {}  # signature -> model name
        self.vidfeat_rate = {}  # (model, precision, batch) -> clips/s
        batches = "8" if self.a.quick else "1,8,32"
        pbatch = 1 if self.a.quick else 2
        device = "cuda"  # without one the probe reports "no CUDA device" in each CUDA cell
        for i, m in enumerate(self.models):
            name = m["name"]
            left = b.left()
            # an even share of what is left, at least 20 s (the CPU forward of the largest model)
            share = max(20.0, left / max(1, len(self.models) - i))
            if left < 5:
                self.table.fail(row_p, name, "fp32 (TF32 off)", "skipped: the row's time budget was spent")
                continue
            cmd = [self.probe, "model", m["config"], "--device", device, "--batch", pbatch,
                   "--precisions", ",".join(PRECISIONS), "--batches", batches, "--seconds", self.a.seconds,
                   "--threads", self.threads, "--skip-signatures", ",".join(seen) or "-"]
            if not self.a.quick:
                cmd += ["--flatten", "--channels-last"]
            if self.forced("parity") and i == 0:
                cmd = [self.probe, "model", "/nonexistent/forced-failure.yaml"]
            res = run(cmd, os.path.join(self.logs, f"model.{name}.log"), min(share, left), env=self.env)
            lines = json_lines(res["text"])
            self.raw.setdefault("models", {})[name] = lines
            cpu = next((j for j in lines if j["kind"] == "cpu"), None)
            if cpu is None:
                fatal = next((j["error"] for j in lines if j["kind"] == "fatal"), None)
                self.table.fail(row_p, name, "fp32 (TF32 off)", fatal or why(res, "gpu_probe"))
                continue
            par = {j["precision"]: j for j in lines if j["kind"] == "parity"}
            self.parity_row(name, cpu, par, res)
            same = next((j for j in lines if j["kind"] == "same_network"), None)
            if same:
                self.table.add(row_t, name, "all", f"= {seen.get(same['signature'], '?')}",
                               "same network (only the classifier differs): not measured again")
                self.vidfeat_rate.update({(name,) + k[1:]: v for k, v in self.vidfeat_rate.items()
                                          if k[0] == seen.get(same["signature"])})
                continue
            seen[cpu["signature"]] = name
            self.throughput_rows(name, lines, res)
        self.spent("models", b, t_start)

    def parity_row(self, name, cpu, par, res):
        row = "1 parity"
        p32 = par.get("fp32")
        others = ", ".join(f"{p} {fmt(par[p].get('rel_err'), '.1e')}" if "rel_err" in par.get(p, {})
                           else f"{p} {('FAILED: ' + par[p]['error']) if p in par else 'missing'}"
                           for p in PRECISIONS[1:])
        detail = (f"{others}; CPU fp32 batch {cpu['batch']} {cpu['cpu_s']:.2f} s, input {cpu['input']}, "
                  f"dim {cpu['feature_dim']}")
        if p32 is None:
            self.table.fail(row, name, "fp32 (TF32 off)", why(res, "gpu_probe") if res["rc"] or res["timed_out"]
                            else "no fp32 line", data={"cpu": cpu})
            self.table.rows[-1]["detail"] = detail
        elif "error" in p32:
            self.table.fail(row, name, "fp32 (TF32 off)", p32["error"], data={"cpu": cpu, "parity": par})
            self.table.rows[-1]["detail"] = detail
        else:
            err = p32["rel_err"]
            self.table.add(row, name, "fp32 (TF32 off)", f"{err:.1e}", detail, ok=err <= PARITY_TOL,
                           data={"cpu": cpu, "parity": par})

    def throughput_rows(self, name, lines, res):
        row = "2 throughput"
        cl = {j["precision"]: j for j in lines if j["kind"] == "channels_last"}
        for p in PRECISIONS:
            ts = [j for j in lines if j["kind"] == "throughput" and j["precision"] == p]
            ok = [j for j in ts if "clips_per_s" in j]
            err = next((j["error"] for j in ts if "error" in j), None)
            if not ok:
                self.table.fail(row, name, p, err or why(res, "gpu_probe") if (err or res["rc"] or res["timed_out"])
                                else "no measurement")
                continue
            for j in ok:
                self.vidfeat_rate[(name, p, j["batch"])] = j["clips_per_s"]
            flat = next((j["batch"] for j in ok if j.get("flat")), None)
            rates = " / ".join(f"{j['clips_per_s']:.1f}" for j in ok)
            mem = " / ".join(f"{j['gpu_mem_mib'] / 1024:.2f}" for j in ok if "gpu_mem_mib" in j)
            detail = f"GPU memory {mem} GiB" if mem else "GPU memory not measured"
            if flat:
                detail += f"; flat from batch {flat}"
            elif len(ok) == len(ts) and res["rc"] == 0 and not self.a.quick:
                detail += "; still growing at the last batch"
            if err:
                detail += f"; batch {ts[len(ok)]['batch']}: FAILED: {one_line(err, 80)}"
            c = cl.get(p)
            if c and "gain" in c:
                detail += (f"; channels_last_3d x{c['gain']:.2f} at batch {c['batch']}"
                           + (" (wins)" if c["gain"] > 1.03 else " (no gain)"))
            elif c:
                detail += f"; channels_last_3d FAILED: {one_line(c.get('error'), 60)}"
            self.table.add(row, name, f"{p} batch {'/'.join(str(j['batch']) for j in ok)}", f"{rates} clips/s",
                           detail, data={"runs": ts, "channels_last": c})
            if res["timed_out"]:
                self.table.rows[-1]["detail"] += f"; cut by the timeout ({res['timeout']:.0f} s)"

    # -- row 3 ----------------------------------------------------------------------------------
    def anchor_rows(self):
        row = "3 anchor"
        b = self.budget("anchor")
        t_start = time.monotonic()
        batch = 8 if self.cuda else (1 if self.a.quick else 2)
        precisions = PRECISIONS if self.cuda else ["fp32"]
        device = "cuda" if self.cuda else "cpu"
        todo = [m for m in self.models if not m["name"].startswith("TS")]
        for m in self.models:
            if m["name"].startswith("TS"):
                self.table.add(row, m["name"], "-", "n/a", "not a PySlowFast model (TSM's repository is not carried)")
        python = self.a.python
        if self.forced("anchor"):
            python = "/nonexistent/python3"
        got = {}
        attempts = 0
        while todo and b.left() > 5 and attempts < 3:
            attempts += 1
            spec = os.path.join(self.out, "anchor_models.json")
            with open(spec, "w") as f:
                json.dump([{"name": m["name"], "config": m["config"]} for m in todo], f)
            cmd = [python, os.path.join(HERE, "pysf_anchor.py"), "--models", spec, "--pysf", self.a.pysf,
                   "--device", device, "--batch", batch, "--precisions", ",".join(precisions),
                   "--seconds", self.a.seconds if self.cuda else 0, "--min-forwards", 3 if self.cuda else 1,
                   "--threads", self.threads, "--deadline", max(1, b.left() - 3)]
            res = run(cmd, os.path.join(self.logs, f"anchor.{attempts}.log"), b.left(), env=self.env, cwd=REPO)
            lines = json_lines(res["text"])
            for j in lines:
                if j.get("kind") == "anchor":
                    got.setdefault(j["name"], []).append(j)
            done = {n for n, js in got.items() if any(j.get("done") for j in js)}
            fatal = next((j["error"] for j in lines if j.get("kind") == "fatal"), None)
            if fatal or (res["rc"] != 0 and not lines):
                for m in todo:
                    if m["name"] not in got:
                        got[m["name"]] = [{"name": m["name"], "error": fatal or why(res, "pysf_anchor.py")}]
                break
            # a crash or timeout inside one model: record it, restart with the rest
            current = next((m for m in todo if m["name"] not in done), None)
            if current is not None and (res["rc"] != 0 or res["timed_out"]):
                got.setdefault(current["name"], []).append(
                    {"name": current["name"], "error": why(res, "pysf_anchor.py"), "done": True})
                done.add(current["name"])
            todo = [m for m in todo if m["name"] not in done]
        for m in todo:
            got.setdefault(m["name"], []).append({"name": m["name"], "error": "skipped: the row's time budget was spent"})
        for m in self.models:
            if m["name"].startswith("TS"):
                continue
            js = got.get(m["name"], [])
            self.raw.setdefault("anchor", {})[m["name"]] = js
            timed = {j["precision"]: j for j in js if "clips_per_s" in j}
            errors = [j["error"] for j in js if "error" in j]
            if not timed:
                self.table.fail(row, m["name"], f"batch {batch}", errors[0] if errors else "no result")
                continue
            for p in precisions:
                j = timed.get(p)
                if j is None:
                    err = next((x["error"] for x in js if x.get("precision") == p and "error" in x), None) or \
                        (errors[0] if errors else "no result")
                    self.table.fail(row, m["name"], f"{p} batch {batch}", err)
                    continue
                if self.cuda:
                    ours = self.vidfeat_rate.get((m["name"], p, batch))
                else:  # CPU fallback: vidfeat's CPU fp32 forward of row 1 (same batch)
                    cpu = next((r["data"].get("cpu") for r in self.table.rows
                                if r["row"] == "1 parity" and r["item"] == m["name"]), None)
                    ours = cpu["batch"] / cpu["cpu_s"] if cpu and cpu.get("batch") == batch else None
                detail = f"PySlowFast {j['clips_per_s']:.2f} clips/s on {j['device']}, torch {j.get('torch')}"
                if ours:
                    ratio = j["clips_per_s"] / ours  # time ratio: t_vidfeat / t_PySlowFast
                    detail = f"vidfeat {ours:.2f} clips/s; " + detail
                    self.table.add(row, m["name"], f"{p} batch {batch}", f"{ratio:.2f}", detail,
                                   ok=ratio <= ANCHOR_GOAL, data=j)
                else:
                    self.table.add(row, m["name"], f"{p} batch {batch}", "FAILED: no vidfeat figure (row 2)",
                                   detail, failed=True, data=j)
        self.spent("anchor", b, t_start)

    # -- videos ---------------------------------------------------------------------------------
    def encoders(self):
        """The first working encoder per codec: NVENC on a GPU node, libx264/libx265 elsewhere."""
        if hasattr(self, "_enc"):
            return self._enc
        self._enc = {}
        for codec, names in (("h264", ["h264_nvenc", "libx264"]), ("hevc", ["hevc_nvenc", "libx265"])):
            for enc in names:
                if not self.ffmpeg:
                    break
                test = os.path.join(self.out, "videos", f"probe_{enc}.mp4")
                os.makedirs(os.path.dirname(test), exist_ok=True)
                r = run([self.ffmpeg, "-y", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=256x144:rate=25",
                         "-frames:v", "2", "-c:v", enc, test], os.path.join(self.logs, f"encoder.{enc}.log"), 30)
                if r["rc"] == 0:
                    self._enc[codec] = enc
                    break
        return self._enc

    def make_video(self, name, codec, w, h, frames, fps=30):
        path = os.path.join(self.out, "videos", name)
        if os.path.exists(path) and os.path.getsize(path) > 0:
            return path, None
        enc = self.encoders().get(codec)
        if not enc:
            return None, f"no {codec} encoder in {self.ffmpeg or 'no ffmpeg found'} (tried NVENC and lib{'x264' if codec == 'h264' else 'x265'})"
        extra = ["-preset", "p1"] if "nvenc" in enc else ["-preset", "ultrafast"]
        if enc == "libx265":
            extra += ["-x265-params", "log-level=error"]
        # testsrc2 moves everywhere (every macroblock changes), a fair decode load; GOP of 2 s
        tmp = path + ".tmp.mp4"
        r = run([self.ffmpeg, "-y", "-v", "error", "-f", "lavfi", "-i", f"testsrc2=size={w}x{h}:rate={fps}",
                 "-frames:v", frames, "-c:v", enc] + extra + ["-g", 2 * fps, "-pix_fmt", "yuv420p", tmp],
                os.path.join(self.logs, f"make.{name}.log"), 60)
        if r["rc"] != 0:
            return None, why(r, f"ffmpeg ({enc})")
        os.replace(tmp, path)
        return path, None

    # -- row 4 ----------------------------------------------------------------------------------
    def decode_rows(self):
        row = "4 decoding"
        b = self.budget("decode")
        t_start = time.monotonic()
        frames = 120 if self.a.quick else 300
        sizes = [("1080p", 1920, 1080), ("360p", 640, 360)]
        if self.a.quick:
            sizes = sizes[:1]
        for label, w, h in sizes:
            for codec in ("h264", "hevc"):
                item = f"{label} {codec.upper()}"
                path, err = self.make_video(f"dec_{label}_{codec}.mp4", codec, w, h, frames)
                if self.forced("decode") and label == "1080p" and codec == "h264":
                    path, err = None, "forced failure (--force-fail decode)"
                if path is None:
                    self.table.fail(row, item, "sampling 1, 8", err)
                    continue
                for s in (1, 8):
                    rates = {}
                    for dev in ("cpu", "cuda"):
                        if b.left() < 3:
                            rates[dev] = {"error": "skipped: the row's time budget was spent"}
                            continue
                        if dev == "cuda" and not self.cuda:
                            rates[dev] = {"error": NO_CUDA}
                            continue
                        r = run([self.probe, "decode", path, "--device", dev, "--sampling", s,
                                 "--decode-threads", 0, "--seconds", 8],
                                os.path.join(self.logs, f"decode.{label}.{codec}.{s}.{dev}.log"),
                                min(30, b.left()), env=self.env)
                        j = next((x for x in json_lines(r["text"]) if x.get("kind") == "decode"), None)
                        if j is None:
                            j = {"error": why(r, "gpu_probe decode")}
                        elif dev == "cuda" and "error" not in j and not j.get("frames_on_device"):
                            j["error"] = "NVDEC did not decode (fell back to the CPU; see the log)"
                        rates[dev] = j
                    cpu, gpu = rates["cpu"], rates["cuda"]
                    parts = []
                    for dev, j in (("NVDEC", gpu), ("CPU", cpu)):
                        parts.append(f"{dev} {j['frames_per_s']:.0f}" if "frames_per_s" in j and "error" not in j
                                     else f"{dev} FAILED: {one_line(j['error'], 70)}")
                    both = all("frames_per_s" in j and "error" not in j for j in (cpu, gpu))
                    result = (f"x{gpu['frames_per_s'] / cpu['frames_per_s']:.2f} NVDEC/CPU" if both else
                              "FAILED" if not any("frames_per_s" in j and "error" not in j for j in (cpu, gpu)) else
                              "partial")
                    detail = " / ".join(parts) + " frames/s"
                    if "codec_threads" in cpu:
                        detail += f"; CPU decoder {cpu['codec_threads']} threads, {cpu.get('frames')} frames"
                    self.table.add(row, item, f"sampling {s}", result, detail, failed=result == "FAILED",
                                   data={"cpu": cpu, "cuda": gpu})
        self.spent("decode", b, t_start)

    # -- row 5 ----------------------------------------------------------------------------------
    def e2e_rows(self):
        row = "5 end to end"
        b = self.budget("e2e")
        t_start = time.monotonic()
        n_videos = self.a.e2e_videos or ((30 if self.a.quick else 100) if self.cuda else (4 if self.a.quick else 8))
        # distinct files: sizes 360p-1080p, lengths 1-6 s; the manifest cycles over them
        kinds = [("360p", 640, 360, 60), ("540p", 960, 540, 120), ("720p", 1280, 720, 90),
                 ("1080p", 1920, 1080, 150), ("360p", 640, 360, 180), ("1080p", 1920, 1080, 45),
                 ("720p", 1280, 720, 30), ("540p", 960, 540, 60)]
        files, err = [], None
        for i, (label, w, h, frames) in enumerate(kinds):
            p, e = self.make_video(f"e2e_{i}_{label}_{frames}.mp4", "h264", w, h, frames)
            if p:
                files.append((p, label, frames))
            err = err or e
        if self.forced("e2e"):
            files, err = [], "forced failure (--force-fail e2e)"
        if not files:
            for m in E2E_MODELS:
                self.table.fail(row, m, "decode cpu / cuda", err or "no videos")
            self.spent("e2e", b, t_start)
            return
        manifest = os.path.join(self.out, "videos", f"e2e_{n_videos}.csv")
        with open(manifest, "w") as f:
            f.write("video_id,path\n")
            for i in range(n_videos):
                f.write(f"v{i:03d},{files[i % len(files)][0]}\n")
        share_1080 = sum(1 for i in range(n_videos) if files[i % len(files)][1] == "1080p") / n_videos
        frames = sum(files[i % len(files)][2] for i in range(n_videos))
        runs = [(m, d) for m in E2E_MODELS for d in ("cpu", "cuda")]
        for k, (m, dec) in enumerate(runs):
            setting = f"decode {dec}, model {'cuda' if self.cuda else 'cpu (' + NO_CUDA + ')'}"
            left = b.left()
            if left < 5:
                self.table.fail(row, m, setting, "skipped: the row's time budget was spent")
                continue
            out = os.path.join(self.out, f"e2e_{m}_{dec}.h5")
            cmd = [self.vidfeat, "extract", "--model", m, "--random-weights", 0, "--manifest", manifest,
                   "--output", out, "--overwrite", "--device", "cuda" if self.cuda else "cpu",
                   "--decode-device", dec, "--batch", 8 if self.cuda else 2]
            res = run(cmd, os.path.join(self.logs, f"e2e.{m}.{dec}.log"), left / (len(runs) - k), env=self.env)
            t = res["text"]
            done = re.search(r"done: .*? (\d+) segments, ([\d.]+) s, ([\d.]+) clips/s", t)
            rank = re.search(r"rank 0: .*?busy ([\d.]+) s of ([\d.]+) s .*?model ([\d.]+) s, waiting for decoded "
                             r"clips ([\d.]+) s, writing ([\d.]+) s", t)
            if res["rc"] != 0 or not done or not rank:
                self.table.fail(row, m, setting, why(res, "vidfeat extract") if res["rc"] or res["timed_out"]
                                else "no summary line in its log")
                continue
            wall, model_s, wait_s, write_s = float(rank.group(2)), float(rank.group(3)), float(rank.group(4)), float(rank.group(5))
            shares = {"decoding": wait_s / wall, "model": model_s / wall, "writing": write_s / wall}
            bound = max(shares, key=shares.get)
            # extract's warning when NVDEC cannot start: "--decode-device cuda: ...; decoding on the CPU"
            nvdec_fallback = dec == "cuda" and re.search(r"decoding on the CPU|fall(s|ing)? back", t) is not None
            detail = (f"{n_videos} videos ({share_1080:.0%} 1080p, {frames} frames), {done.group(1)} clips in "
                      f"{wall:.1f} s; model {model_s:.1f} s, waiting {wait_s:.1f} s, writing {write_s:.2f} s; "
                      f"bound by {bound}")
            if nvdec_fallback:
                detail += "; NVDEC fell back to the CPU (see the log)"
            ok = (shares["decoding"] <= 0.10) if (dec == "cuda" and self.cuda) else None
            self.table.add(row, m, setting, f"{float(done.group(3)):.2f} clips/s, waiting {shares['decoding']:.0%}",
                           detail, ok=ok, data={"wall_s": wall, "model_s": model_s, "wait_s": wait_s,
                                                "write_s": write_s, "videos": n_videos})
        self.spent("e2e", b, t_start)

    # -- all ------------------------------------------------------------------------------------
    def run_all(self):
        t = time.monotonic()
        self.setup()
        self.times["setup"] = time.monotonic() - t
        for name, step in (("models", self.models_rows), ("anchor", self.anchor_rows),
                           ("decode", self.decode_rows), ("e2e", self.e2e_rows)):
            if name in self.a.skip:
                continue
            t = time.monotonic()
            try:
                step()
            except Exception as e:  # a bug in one row never hides the others
                self.table.fail({"models": "1-2", "anchor": "3 anchor", "decode": "4 decoding",
                                 "e2e": "5 end to end"}[name], "(row)", "-", f"check.py: {type(e).__name__}: {e}")
                self.times[name] = time.monotonic() - t
            print(f"check: {name} done in {self.times.get(name, 0):.0f} s", file=sys.stderr, flush=True)
        self.write()

    def write(self):
        total = time.monotonic() - self.t0
        info = self.raw.get("info") or {}
        head = [f"vidfeat GPU check, {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, "
                f"{'quick' if self.a.quick else 'full'}, {total:.0f} s "
                f"({', '.join(f'{k} {v:.0f} s' for k, v in self.times.items())})",
                f"GPU: {self.raw.get('gpu') or 'none (nvidia-smi not found)'}; LibTorch {info.get('torch')} "
                f"(CUDA build: {info.get('built_with_cuda')}, device seen: {info.get('cuda')}); "
                f"{os.cpu_count()} cores; vidfeat {self.vidfeat}"]
        if not self.cuda:
            head.append(f"CPU fallback: {NO_CUDA}: CUDA cells fail with that reason, the CPU parts ran")
        text = "\n".join(head) + "\n\n" + self.table.render() + "\n"
        with open(os.path.join(self.out, "check.md"), "w") as f:
            f.write(text)
        with open(os.path.join(self.out, "check.json"), "w") as f:
            json.dump({"header": head, "cuda": self.cuda, "total_s": total, "row_s": self.times,
                       "quick": self.a.quick, "rows": self.table.rows, "raw": self.raw}, f, indent=1)
        print(text, flush=True)
        print(f"check: wrote {self.out}/check.md and check.json (logs in {self.logs})", file=sys.stderr)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("bundle", nargs="?", help="vidfeat-<version>-cuda.tar.* (tools/bundle)")
    ap.add_argument("--vidfeat", help="a vidfeat executable of a build tree instead of a bundle")
    ap.add_argument("--probe", help="gpu_probe (default: next to vidfeat in the bundle or build tree)")
    ap.add_argument("--ffmpeg", help="ffmpeg CLI for the generated videos (default: the bundle's, else PATH)")
    ap.add_argument("--pysf", default=os.environ.get("PYSF", "/tmp/SlowFast"), help="PySlowFast export (row 3)")
    ap.add_argument("--python", default=os.environ.get("VIDFEAT_PYTHON", sys.executable),
                    help="python with torch for row 3")
    ap.add_argument("--out", default="/tmp/vidfeat-gpucheck")
    ap.add_argument("--quick", action="store_true", help="three models, batch 8, fewer videos (< 3 min)")
    ap.add_argument("--models", help="comma-separated subset of `vidfeat models`")
    ap.add_argument("--budget", type=float, default=None, help="seconds for the whole check (480; quick 170)")
    ap.add_argument("--seconds", type=float, default=None, help="timed seconds per throughput cell")
    ap.add_argument("--threads", type=int, default=0, help="CPU threads (default: all cores)")
    ap.add_argument("--e2e-videos", type=int, default=0, help="manifest length of row 5 (100; CPU fallback 8)")
    ap.add_argument("--skip", default="", help="rows to leave out: models,anchor,decode,e2e")
    ap.add_argument("--force-fail", default="", help="make these rows fail on purpose (tests): parity,anchor,decode,e2e")
    ap.add_argument("--no-cuda", action="store_true", help="act as if no CUDA device were there")
    ap.add_argument("--unpack-again", action="store_true")
    a = ap.parse_args(argv)
    if bool(a.bundle) == bool(a.vidfeat):
        ap.error("give a bundle (tar file) or --vidfeat EXECUTABLE")
    a.skip = set(filter(None, a.skip.split(",")))
    a.force_fail = set(filter(None, a.force_fail.split(",")))
    if a.budget is None:
        a.budget = 170.0 if a.quick else 480.0
    if a.seconds is None:
        a.seconds = 0.3 if a.quick else 0.5
    a.pysf = os.path.abspath(a.pysf)
    Check(a).run_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())
