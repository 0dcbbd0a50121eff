#!/usr/bin/python3
"""Write tests/fixtures/mvit_state_shapes.json: every state-dict key and shape, the key count and
the parameter count of PySlowFast's full-size MViT models, read off PySlowFast's own build_model on
the YAMLs (no weights involved). tests/model/test_mvit.cpp compares vidfeat's models with it.

  PYSF=/tmp/SlowFast /usr/bin/python3 tools/mvit_state_shapes.py [--out tests/fixtures/mvit_state_shapes.json]
"""
import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(HERE, "reference"))
import pysf_ref  # noqa: E402  (tools/reference: the stubs PySlowFast's imports need)

PYSF = pysf_ref.use_pysf(os.environ.get("PYSF", "/tmp/SlowFast"))

# name, config under PySlowFast's configs/, overrides. PySlowFast's REV_MVIT_B_16x4_CONV.yaml sets
# MVIT.CLS_EMBED_ON True, which its reversible model rejects (vidfeat's configs/ copy says False).
MODELS = [
    ("MVIT_B_32x3_CONV", "configs/Kinetics/MVIT_B_32x3_CONV.yaml", []),
    ("MVITv2_S_16x4", "configs/Kinetics/MVITv2_S_16x4.yaml", []),
    ("REV_MVIT_B_16x4_CONV", "configs/Kinetics/REV_MVIT_B_16x4_CONV.yaml", ["MVIT.CLS_EMBED_ON", False]),
]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(ROOT, "tests", "fixtures", "mvit_state_shapes.json"))
    a = ap.parse_args()
    from slowfast.config.defaults import get_cfg
    from slowfast.models import build_model
    out = {}
    for name, config, opts in MODELS:
        cfg = get_cfg()
        cfg.merge_from_file(os.path.join(PYSF, config))
        cfg.NUM_GPUS = 0
        cfg.merge_from_list(list(opts))
        model = build_model(cfg)
        sd = model.state_dict()
        out[name] = {"config": config, "state_keys": len(sd),
                     "parameters": sum(p.numel() for p in model.parameters()),
                     "shapes": {k: list(v.shape) for k, v in sd.items()}}
        print(name, len(sd), out[name]["parameters"])
    with open(a.out, "w") as f:
        json.dump(out, f, separators=(",", ":"))
        f.write("\n")


if __name__ == "__main__":
    main()
