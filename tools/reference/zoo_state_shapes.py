#!/usr/bin/python3
"""Write tests/fixtures/zoo_state_shapes.json: for every model configs/models.yaml names, the
state-dict keys and shapes of the reference's own model built from that model's config (no weights
involved). tests/model/test_zoo_shapes.cpp builds vidfeat's model from the same config and compares
the key set and every shape.

The reference per family:
  PySlowFast ($PYSF, an export of commit 287ec00): build_model on the vidfeat config file (they are
      PySlowFast's YAMLs; REV_MVIT_B_16x4_CONV's says MVIT.CLS_EMBED_ON False, see docs/MODELS.md).
  MODEL_NAME ResNet_nopool ($PYSF_OLD, PySlowFast before commit 99a655b): ResNet with the
      c2d_nopool / i3d_nopool arch, the only way that PySlowFast ever built this config.
  MODEL_NAME TSN ($TSM, an export of mit-han-lab/temporal-shift-module): its ops/models.py TSN,
      built as tools/fixtures/make_tsm_fixtures.py does (full width).
Each model is built in a child process (old and new PySlowFast cannot share one interpreter).

  PYSF=/tmp/SlowFast PYSF_OLD=/tmp/SlowFast_old TSM=/tmp/tsm /usr/bin/python3 \\
      tools/reference/zoo_state_shapes.py [--out tests/fixtures/zoo_state_shapes.json] [--only NAME ...]

Output: {"models": {NAME: {"config": path under configs/, "reference": ..., "shapes": SET}},
"shape_sets": {SET: {key: shape}}}; models whose reference state dicts are equal share one set
(named after the first of them), which keeps the file small.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CONFIGS = os.path.join(ROOT, "configs")


def shapes_pyslowfast(pysf, config, opts):
    sys.path.insert(0, HERE)
    import pysf_ref  # noqa: E402  (tools/reference: the stubs PySlowFast's imports need)

    pysf_ref.use_pysf(pysf)
    from slowfast.models import build_model

    model = build_model(pysf_ref.load_cfg(config, opts))
    return {k: list(v.shape) for k, v in model.state_dict().items()}


def shapes_tsm(tsm, config):
    sys.path.insert(0, os.path.join(ROOT, "tools", "fixtures"))
    import make_tsm_fixtures  # noqa: E402  (builds the TSM repository's own TSN class)

    with open(config) as f:
        cfg = yaml.safe_load(f)
    arch = cfg["MODEL"]["ARCH"]
    depth = cfg.get("RESNET", {}).get("DEPTH", 50)
    if depth != 50:
        raise SystemExit("%s: only ResNet-50 TSN/TSM references are built here" % config)
    net = make_tsm_fixtures.build(tsm, arch == "tsm", cfg["DATA"]["NUM_FRAMES"], 64, cfg["MODEL"]["NUM_CLASSES"])
    return {k: list(v.shape) for k, v in net.state_dict().items()}


def one(model, path):
    """Runs in the child: writes {"reference", "shapes"} for one models.yaml entry to `path` (the
    reference code prints to stdout)."""
    config = os.path.join(CONFIGS, model["config"])
    with open(config) as f:
        cfg = yaml.safe_load(f)
    name = cfg["MODEL"].get("MODEL_NAME", "SlowFast")  # PySlowFast's default
    if name == "TSN":
        tsm = os.environ.get("TSM", "/tmp/tsm")
        out = {"reference": "temporal-shift-module ops/models.py TSN", "shapes": shapes_tsm(tsm, config)}
    elif name == "ResNet_nopool":
        arch = {"c2d": "c2d_nopool", "i3d": "i3d_nopool"}[cfg["MODEL"]["ARCH"]]
        pysf = os.environ.get("PYSF_OLD", "/tmp/SlowFast_old")
        out = {"reference": "PySlowFast before 99a655b, MODEL_NAME ResNet, ARCH " + arch,
               "shapes": shapes_pyslowfast(pysf, config, ["MODEL.MODEL_NAME", "ResNet", "MODEL.ARCH", arch])}
    else:
        pysf = os.environ.get("PYSF", "/tmp/SlowFast")
        out = {"reference": "PySlowFast build_model", "shapes": shapes_pyslowfast(pysf, config, [])}
    with open(path, "w") as f:
        json.dump(out, f)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(ROOT, "tests", "fixtures", "zoo_state_shapes.json"))
    ap.add_argument("--only", nargs="*", help="model names (default: every models.yaml entry)")
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    a = ap.parse_args()
    with open(os.path.join(CONFIGS, "models.yaml")) as f:
        models = yaml.safe_load(f)["models"]
    if a.child:
        one(next(m for m in models if m["name"] == a.child[0]), a.child[1])
        return
    result = {"models": {}, "shape_sets": {}}
    if a.only and os.path.exists(a.out):  # update those models in the existing file
        with open(a.out) as f:
            result = json.load(f)
    for m in models:
        if a.only and m["name"] not in a.only:
            continue
        with tempfile.NamedTemporaryFile(suffix=".json") as tmp:
            subprocess.run([sys.executable, os.path.abspath(__file__), "--child", m["name"], tmp.name],
                           check=True, stdout=subprocess.DEVNULL)
            with open(tmp.name) as f:
                got = json.load(f)
        shapes = got["shapes"]
        set_name = next((k for k, v in result["shape_sets"].items() if v == shapes), m["name"])
        result["shape_sets"][set_name] = shapes
        result["models"][m["name"]] = {"config": m["config"], "reference": got["reference"], "shapes": set_name}
        print("%-36s %4d keys  (%s; set %s)" % (m["name"], len(shapes), got["reference"], set_name))
    used = {v["shapes"] for v in result["models"].values()}
    result["shape_sets"] = {k: v for k, v in result["shape_sets"].items() if k in used}
    with open(a.out, "w") as f:
        json.dump(result, f, separators=(",", ":"), sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
