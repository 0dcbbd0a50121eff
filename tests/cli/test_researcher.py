"""Researcher-facing commands: models, locate, export, and --model with a cached download from a
local HTTP server (127.0.0.1 only) whose first response breaks off mid-file.

  test_researcher.py MODE VIDFEAT SOURCE_DIR CORPUS_DIR      MODE: models | locate_export | download | crops

The videos come from the generated corpus (tests/support/make_corpus.py).
"""
import hashlib
import http.server
import os
import shutil
import subprocess
import sys
import tempfile
import threading

import h5py
import numpy as np
import yaml

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import vftest  # noqa: E402
from vftest import MPI_ENV as ENV, TINY, check, failures  # noqa: E402

MODE, VIDFEAT, SRC, CORPUS = sys.argv[1:5]
vftest.use_corpus(CORPUS)
NTSC = vftest.corpus_video("h264_981_50_aac.mp4")  # 4 s at 19.62 fps: segments on both sides of [1.5, 3.2]
PATTERN = vftest.corpus_video("h264_bframes.mp4")  # testsrc2, 320x240: left, centre, right differ
SHORT = vftest.corpus_video("rot90.mov")




def vidfeat(*args, env=None):
    return subprocess.run([VIDFEAT] + list(args), capture_output=True, text=True, env=env)


def mode_models(tmp):
    r = vidfeat("models")
    check(r.returncode == 0, "vidfeat models runs")
    listed = yaml.safe_load(open(os.path.join(SRC, "configs/models.yaml")))["models"]
    for m in listed:
        check(m["name"] in r.stdout, f"lists {m['name']}")
        check(os.path.exists(os.path.join(SRC, "configs", m["config"])), f"{m['name']}: its config is shipped")
    r = vidfeat("extract", "--model", "NO_SUCH_MODEL", "--manifest", "x", "--output", "y")
    check(r.returncode != 0 and "known:" in r.stderr, "an unknown name lists the known ones")


def mode_locate_export(tmp):
    m = os.path.join(tmp, "m.csv")
    open(m, "w").write("video_id,path\nclips/ntsc,%s\nvp8,%s\n" % (NTSC, vftest.corpus_video("vp8.webm")))
    out = os.path.join(tmp, "o.h5")
    r = vidfeat("extract", "--config", os.path.join(SRC, "configs/Kinetics/SLOW_8x8_R50.yaml"), "--random-weights", "1",
                "--manifest", m, "--output", out, *TINY)
    check(r.returncode == 0, "tiny extraction")
    check("progress: 2/2 videos (0 failed)" in r.stderr, "the progress line reaches the log")
    check("rank 0: 2 videos" in r.stderr and "clips/s" in r.stderr, "the summary gives per-rank videos and clips/s")
    with h5py.File(out) as f:
        v = f["videos"][0]
        segs = f["segments"][v["first_row"]:v["first_row"] + v["segment_count"]]
        feats = f["features"][v["first_row"]:v["first_row"] + v["segment_count"]]
    want = [int(s["segment"]) for s in segs if s["end_time"] > 1.5 and s["start_time"] <= 3.2]
    r = vidfeat("locate", out, "--video", "clips/ntsc", "--start", "1.5", "--end", "3.2")
    line = [l for l in r.stdout.splitlines() if "-> segments" in l]
    got = [int(x) for x in line[0].split("segments")[1].split()] if line else None
    check(r.returncode == 0 and got == want and 1 < len(want) < len(segs),
          f"locate gives the segments meeting [1.5, 3.2]: {got} vs {want}")
    n, fps, l = len(segs), float(v["fps"]), int(v["decoded_frames"])
    check(f"{1.5 * n * fps / l:.3f}" in r.stdout, "locate prints the seed's tau = t*n*fps/l")
    d = os.path.join(tmp, "npy")
    r = vidfeat("export", out, "--npy", d)
    check(r.returncode == 0, "export runs")
    a = np.load(os.path.join(d, "clips/ntsc.npy"))
    check(a.dtype == np.float32 and a.shape == feats.shape and (a == feats).all(), "clips/ntsc.npy equals its rows")
    check(os.path.exists(os.path.join(d, "vp8.npy")), "every complete video is exported")
    d2 = os.path.join(tmp, "npy2")
    r = vidfeat("export", out, "--npy", d2, "--ids", "vp8")
    check(r.returncode == 0 and os.listdir(d2) == ["vp8.npy"], "--ids exports a subset")
    r = vidfeat("export", out, "--npy", d2, "--ids", "nope")
    check(r.returncode != 0 and "nope" in r.stderr, "an unknown id is an error")
    # An id that would leave the export folder is refused, and nothing is written outside it.
    m2 = os.path.join(tmp, "m2.csv")
    open(m2, "w").write("video_id,path\n../escaped,%s\n" % SHORT)
    out2 = os.path.join(tmp, "o2.h5")
    vidfeat("extract", "--config", os.path.join(SRC, "configs/Kinetics/SLOW_8x8_R50.yaml"), "--random-weights", "1",
            "--manifest", m2, "--output", out2, *TINY)
    d3 = os.path.join(tmp, "inner", "npy")
    r = vidfeat("export", out2, "--npy", d3)
    check(r.returncode != 0 and "refusing to write outside" in r.stderr, "an id with '..' is refused")
    check(not os.path.exists(os.path.join(tmp, "inner", "escaped.npy")), "nothing written outside the folder")


def mode_crops(tmp):
    m = os.path.join(tmp, "m.csv")
    open(m, "w").write("video_id,path\npattern,%s\n" % PATTERN)
    cfg = os.path.join(SRC, "configs/Kinetics/SLOW_8x8_R50.yaml")
    one, three = os.path.join(tmp, "c1.h5"), os.path.join(tmp, "c3.h5")
    r1 = vidfeat("extract", "--config", cfg, "--random-weights", "1", "--manifest", m, "--output", one, *TINY)
    r3 = vidfeat("extract", "--config", cfg, "--random-weights", "1", "--manifest", m, "--output", three,
                 "--crops", "3", *TINY)
    check(r1.returncode == 0 and r3.returncode == 0, "extract with --crops 1 and 3")
    with h5py.File(one) as f1, h5py.File(three) as f3:
        a, b = f1["features"][:], f3["features"][:]
        check(b.ndim == 3 and b.shape[1] == 3 and b.shape[0] == a.shape[0] and b.shape[2] == a.shape[1],
              f"--crops 3 adds an axis: {b.shape} vs {a.shape}")
        check(int(f3.attrs["crops"]) == 3, "the file records crops = 3")
        err = np.linalg.norm(b[:, 1] - a) / np.linalg.norm(a)
        check(err < 1e-5, f"the centre crop equals the single-crop run (rel. error {err:.1e})")
        check(not np.allclose(b[:, 0], b[:, 1]) and not np.allclose(b[:, 2], b[:, 1]), "left and right crops differ")
    d = os.path.join(tmp, "npy")
    r = vidfeat("export", three, "--npy", d)
    check(r.returncode == 0 and np.load(os.path.join(d, "pattern.npy")).shape == b.shape, "export keeps the crop axis")
    r = vidfeat("extract", "--config", cfg, "--random-weights", "1", "--manifest", m, "--output", three, *TINY)
    check(r.returncode != 0 and "--crops" in r.stderr, "resuming with another --crops is refused")


class Server(http.server.BaseHTTPRequestHandler):
    payload = b""
    broken_once = True
    requests = []

    def log_message(self, *a):
        pass

    def do_GET(self):
        Server.requests.append(self.headers.get("Range"))
        rng = self.headers.get("Range")
        start = int(rng.split("=")[1].split("-")[0]) if rng else 0
        body = Server.payload[start:]
        self.send_response(206 if rng else 200)
        if rng:
            self.send_header("Content-Range", f"bytes {start}-{len(Server.payload) - 1}/{len(Server.payload)}")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if Server.broken_once and not rng:
            Server.broken_once = False
            self.wfile.write(body[: len(body) // 2])  # the connection breaks mid-file
            self.wfile.flush()
            self.connection.shutdown(2)
            return
        self.wfile.write(body)


def mode_download(tmp):
    fx = json_fixture = None
    import json
    fixtures = json.load(open(os.path.join(SRC, "tests/fixtures/fixtures.json")))["fixtures"]
    fx = next(f for f in fixtures if f["name"] == "C2D_8x8_R50")
    Server.payload = open(os.path.join(SRC, "tests/fixtures", fx["files"]["pyth"]), "rb").read()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Server)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    port = httpd.server_address[1]
    cfgdir = os.path.join(tmp, "configs")
    os.makedirs(cfgdir)
    cfg = yaml.safe_load(open(os.path.join(SRC, fx["config"])))
    for kv in fx["overrides"]:
        k, v = kv.split("=", 1)
        sec, key = k.split(".")
        cfg.setdefault(sec, {})[key] = yaml.safe_load(v)
    yaml.safe_dump(cfg, open(os.path.join(cfgdir, "tiny_c2d.yaml"), "w"))
    yaml.safe_dump({"models": [{"name": "TINY_C2D", "config": "tiny_c2d.yaml", "feature_dim": fx["feature_dim"],
                                "url": f"http://127.0.0.1:{port}/models/TINY_C2D.pyth"}]},
                   open(os.path.join(cfgdir, "models.yaml"), "w"))
    cache = os.path.join(tmp, "cache")
    env = dict(os.environ, VIDFEAT_CONFIG_DIR=cfgdir, VIDFEAT_CACHE_DIR=cache)
    m = os.path.join(tmp, "m.csv")
    open(m, "w").write("video_id,path\nv,%s\n" % SHORT)
    out = os.path.join(tmp, "o.h5")
    r = vidfeat("extract", "--model", "TINY_C2D", "--manifest", m, "--output", out, env=env)
    check(r.returncode == 0, f"extract --model downloads and runs: {r.stderr[-800:] if r.returncode else ''}")
    want = hashlib.sha256(Server.payload).hexdigest()
    cached = os.path.join(cache, "TINY_C2D.pyth")
    check(os.path.exists(cached) and hashlib.sha256(open(cached, "rb").read()).hexdigest() == want,
          "the cached file is the published one, whole")
    check(open(cached + ".sha256").read().strip() == want, "its sha256 is recorded")
    check(not os.path.exists(cached + ".part"), "no partial file left")
    check(any(r and r.startswith("bytes=") for r in Server.requests), f"the broken download resumed with a Range request: {Server.requests}")
    with h5py.File(out) as f:
        check(f.attrs["checkpoint_sha256"] == want and f.attrs["model_name"] == "TINY_C2D", "the output records model and sha256")
    n = len(Server.requests)
    out2 = os.path.join(tmp, "o2.h5")
    r = vidfeat("extract", "--model", "TINY_C2D", "--manifest", m, "--output", out2, env=env)
    check(r.returncode == 0 and len(Server.requests) == n, "second use comes from the cache")
    httpd.shutdown()
    env_off = dict(env, VIDFEAT_OFFLINE="1", VIDFEAT_CACHE_DIR=os.path.join(tmp, "empty"))
    r = vidfeat("extract", "--model", "TINY_C2D", "--manifest", m, "--output", os.path.join(tmp, "o3.h5"), env=env_off)
    check(r.returncode != 0 and "put it at" in r.stderr and "TINY_C2D.pyth" in r.stderr,
          "offline: the message says which file to put where")


tmp = tempfile.mkdtemp(prefix="vidfeat-cli-")
try:
    {"models": mode_models, "locate_export": mode_locate_export, "download": mode_download,
     "crops": mode_crops}[MODE](tmp)
finally:
    shutil.rmtree(tmp, ignore_errors=True)
print(f"{len(failures)} failed")
sys.exit(1 if failures else 0)
