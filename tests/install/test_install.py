"""`cmake --install` gives a working vidfeat that finds its configs next to itself.

  test_install.py CMAKE BUILD_DIR SOURCE_DIR CORPUS_DIR

1. installs BUILD_DIR into a fresh prefix; checks PREFIX/bin/vidfeat and that every YAML of the
   source tree's configs/ is installed, byte for byte, under PREFIX/share/vidfeat/configs;
2. moves the whole prefix to another folder (so nothing can come from where it was installed, nor
   from the build tree, which has no path to the moved copy), adds a model that only the moved
   copy's models.yaml names, and checks the binary carries no path to the source tree's configs;
3. runs the moved PREFIX/bin/vidfeat without VIDFEAT_CONFIG_DIR: `vidfeat models` lists every
   model of the source's models.yaml and the moved copy's own one, each with its clip geometry
   read from its installed config (frames NxS and crop, not "?"); `vidfeat extract --help`;
   `vidfeat extract --model SLOW_8x8_R50` (its config found through the installed models.yaml)
   with seeded random weights and the tests' tiny settings on one corpus video: exit 0, the
   video complete with ceil(frames / 8) segments (frames: corpus.tsv, ffprobe's count);
4. VIDFEAT_CONFIG_DIR: another folder's models.yaml replaces the installed one; a folder without
   models.yaml is refused with an error naming the variable and the folder (models and extract);
   a binary copied away from its share/ folder says it cannot find the configs and where it looked.
"""
import filecmp
import math
import os
import shutil
import subprocess
import sys
import tempfile

import h5py
import yaml

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import vftest  # noqa: E402
from vftest import TINY, check, failures  # noqa: E402

CMAKE, BUILD, SRC, CORPUS = sys.argv[1:5]
SRC = os.path.abspath(SRC)
vftest.use_corpus(CORPUS)
VIDEO = "rot90.mov"
SOURCE_MODELS = yaml.safe_load(open(os.path.join(SRC, "configs", "models.yaml")))["models"]


def run(cmd, env_extra=None, drop=("VIDFEAT_CONFIG_DIR",), cwd=None):
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(env_extra or {})
    return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd, timeout=300)


def why(r):
    """The end of a failed command's output, for the check's line."""
    return f" (exit {r.returncode}: {(r.stdout + r.stderr)[-800:]})" if r.returncode else ""


def source_yamls():
    base = os.path.join(SRC, "configs")
    for d, _, files in os.walk(base):
        for f in files:
            if f.endswith(".yaml"):
                yield os.path.relpath(os.path.join(d, f), base)


def main(tmp):
    # ---- 1. install ----
    prefix = os.path.join(tmp, "installed")
    r = run([CMAKE, "--install", BUILD, "--prefix", prefix])
    check(r.returncode == 0, f"cmake --install {BUILD} --prefix {prefix}" + why(r))
    check(os.access(os.path.join(prefix, "bin", "vidfeat"), os.X_OK), "PREFIX/bin/vidfeat is installed")
    cfg = os.path.join(prefix, "share", "vidfeat", "configs")
    yamls = sorted(source_yamls())
    check(len(yamls) > 10 and "models.yaml" in yamls, f"the source tree has configs to install ({len(yamls)})")
    missing = [y for y in yamls if not os.path.isfile(os.path.join(cfg, y))]
    check(not missing, f"every configs/*.yaml is installed under share/vidfeat/configs (missing: {missing[:5]})")
    differ = [y for y in yamls if y not in missing and not filecmp.cmp(os.path.join(SRC, "configs", y),
                                                                        os.path.join(cfg, y), shallow=False)]
    check(not differ, f"the installed configs equal the source's (differ: {differ[:5]})")

    # ---- 2. moved elsewhere; a model only the moved copy knows ----
    moved = os.path.join(tmp, "elsewhere", "vidfeat-prefix")
    os.makedirs(os.path.dirname(moved))
    shutil.move(prefix, moved)
    exe = os.path.join(moved, "bin", "vidfeat")
    cfg = os.path.join(moved, "share", "vidfeat", "configs")
    models_yaml = os.path.join(cfg, "models.yaml")
    listed = yaml.safe_load(open(models_yaml))
    slow = next(m for m in listed["models"] if m["name"] == "SLOW_8x8_R50")
    listed["models"].append(dict(slow, name="ONLY_IN_THE_MOVED_INSTALL"))
    yaml.safe_dump(listed, open(models_yaml, "w"))
    with open(exe, "rb") as f:
        binary = f.read()
    check((SRC + "/configs").encode() not in binary, f"the binary holds no path to {SRC}/configs")

    # ---- 3. the moved vidfeat, from a folder of its own, no VIDFEAT_CONFIG_DIR ----
    work = os.path.join(tmp, "work")
    os.makedirs(work)
    r = run([exe, "models"], cwd=work)
    check(r.returncode == 0, "vidfeat models runs" + why(r))
    lines = {ln.split()[0]: ln.split() for ln in r.stdout.splitlines() if ln.strip()}
    for m in SOURCE_MODELS + [{"name": "ONLY_IN_THE_MOVED_INSTALL"}]:
        row = lines.get(m["name"])
        check(row is not None, f"`vidfeat models` lists {m['name']}")
        if row:
            check("?" not in row[2:4], f"{m['name']}: clip geometry read from its installed config ({row[2:4]})")
    r = run([exe, "extract", "--help"], cwd=work)
    check(r.returncode == 0 and "--manifest" in r.stdout and "--model" in r.stdout,
          "vidfeat extract --help" + why(r))
    manifest = vftest.write_manifest(work, [("v", vftest.corpus_video(VIDEO))])
    out = os.path.join(work, "o.h5")
    extract = [exe, "extract", "--model", "SLOW_8x8_R50", "--random-weights", "3", "--threads", "1", *TINY,
               "--manifest", manifest, "--output", out]
    r = run(extract, cwd=work)
    check(r.returncode == 0, "vidfeat extract --model SLOW_8x8_R50 (tiny, random weights)" + why(r))
    if r.returncode == 0:
        frames = vftest.corpus_row(VIDEO)["frames"]
        with h5py.File(out) as f:
            v = f["videos"][0]
            check(f.attrs["model_name"] == "SLOW_8x8_R50", "the output records the model name")
            check(v["status"] == 1 and v["segment_count"] == math.ceil(frames / vftest.TINY_SPAN),
                  f"the video is complete with ceil({frames} / {vftest.TINY_SPAN}) segments "
                  f"(status {v['status']}, {v['segment_count']} segments)")

    # ---- 4. VIDFEAT_CONFIG_DIR ----
    other = os.path.join(tmp, "other-configs")
    os.makedirs(os.path.dirname(os.path.join(other, slow["config"])))
    shutil.copy(os.path.join(SRC, "configs", slow["config"]), os.path.join(other, slow["config"]))
    yaml.safe_dump({"models": [dict(slow, name="FROM_VIDFEAT_CONFIG_DIR")]},
                   open(os.path.join(other, "models.yaml"), "w"))
    r = run([exe, "models"], {"VIDFEAT_CONFIG_DIR": other}, cwd=work)
    names = [ln.split()[0] for ln in r.stdout.splitlines()[1:] if ln.strip() and not ln.startswith("checkpoints")]
    check(r.returncode == 0 and names == ["FROM_VIDFEAT_CONFIG_DIR"],
          f"VIDFEAT_CONFIG_DIR's models.yaml replaces the installed one (listed: {names})")
    wrong = os.path.join(tmp, "no-configs-here")
    os.makedirs(wrong)
    for cmd in ([exe, "models"], extract[:-2] + ["--output", os.path.join(work, "o2.h5")]):
        r = run(cmd, {"VIDFEAT_CONFIG_DIR": wrong}, cwd=work)
        check(r.returncode != 0 and f"VIDFEAT_CONFIG_DIR={wrong}" in r.stderr and "no models.yaml" in r.stderr,
              f"`vidfeat {cmd[1]}` with a wrong VIDFEAT_CONFIG_DIR: a clear error ({r.stderr.strip()[-300:]})")
    lonely = os.path.join(tmp, "lonely", "bin")
    os.makedirs(lonely)
    shutil.copy(exe, lonely)
    r = run([os.path.join(lonely, "vidfeat"), "models"], cwd=work)
    check(r.returncode != 0 and "cannot find vidfeat's configs" in r.stderr and lonely in r.stderr
          and "VIDFEAT_CONFIG_DIR" in r.stderr,
          f"a vidfeat without its share/ folder says where it looked ({r.stderr.strip()[-300:]})")


tmp = tempfile.mkdtemp(prefix="vidfeat-install-")
try:
    main(tmp)
finally:
    shutil.rmtree(tmp, ignore_errors=True)
print(f"{len(failures)} failed")
sys.exit(1 if failures else 0)
