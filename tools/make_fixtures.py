#!/usr/bin/python3
"""Make vidfeat's parity fixtures from PySlowFast's own model code.

For every entry of FIXTURES this runs tools/reference/pysf_ref.py (PySlowFast builds the model,
randomises every parameter and BN statistic, runs a seeded input) and writes, under --out:

  NAME.pyth         torch.save zip format           {"model_state": OrderedDict, "cfg": str}
  NAME.legacy.pyth  torch.save pre-1.6 format       (same content)
  NAME.pkl          the same weights in Caffe2 naming, as a Python-2 pickle (protocol 2) of
                    {"blobs": {caffe2_name: numpy array}} the way Caffe2/Detectron wrote them
  NAME.io.pt        {"inputs": [pathway tensors], "feature": PySlowFast's feature}

and fixtures.json, the manifest the C++ tests read (name, config, overrides, feature dim, files).

  PYSF=/tmp/SlowFast PYSF_OLD=/tmp/SlowFast_old /usr/bin/python3 tools/make_fixtures.py \
      [--out tests/fixtures] [--only NAME ...] [--fuzz-seeds tests/fuzz/corpus] [--reference tools/reference]

PYSF is an export of PySlowFast's slowfast/ and configs/ (see tools/reference/README.md);
PYSF_OLD one from before commit 99a655b ("unsup"), which still has the c2d_nopool arch. Nothing
of PySlowFast is copied into this project; only its outputs are.

The Caffe2 names are the inverse of PySlowFast's Caffe2 -> PyTorch conversion
(slowfast/utils/c2_model_loading.py). Every name written here is checked by running PySlowFast's
own forward conversion on it, so a wrong inverse cannot produce a fixture.
"""
import argparse
import json
import os
import pickle
import re
import shutil
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

# Shared reductions: 8 frames, 96 px test crop with a 64 px train crop (the head's average pool is
# sized from the train crop, so it slides over the larger test map), 10 classes.
COMMON = ["DATA.NUM_FRAMES", "8", "DATA.TRAIN_CROP_SIZE", "64", "DATA.TEST_CROP_SIZE", "96",
          "MODEL.NUM_CLASSES", "10"]
RESNET_SMALL = ["RESNET.WIDTH_PER_GROUP", "4"]
# SlowFast's fast pathway is WIDTH_PER_GROUP / BETA_INV (8) wide: 8 is the smallest width left.
SLOWFAST_SMALL = ["RESNET.WIDTH_PER_GROUP", "8"]
# The three 16x8 R50 variants and R101 share SLOWFAST_8x8_R50's blocks; they test the config
# (depth, heads, multigrid section) at a quarter of the size: fast pathway 1 channel wide.
SLOWFAST_TINY = ["RESNET.WIDTH_PER_GROUP", "4", "SLOWFAST.BETA_INV", "4"]
X3D_SMALL = ["X3D.DIM_C1", "4", "X3D.DIM_C5", "64", "X3D.WIDTH_FACTOR", "1.0"]
# MViT: PySlowFast asserts TRAIN_CROP_SIZE == TEST_CROP_SIZE; 8-wide embedding, stages at blocks
# 1, 3, 5 (dims 8, 16, 32, 64).
_MVIT_STAGES = ["MVIT.EMBED_DIM", "8", "MVIT.DIM_MUL", "[[1, 2.0], [3, 2.0], [5, 2.0]]",
                "MVIT.HEAD_MUL", "[[1, 2.0], [3, 2.0], [5, 2.0]]"]
MVIT_B_SMALL = _MVIT_STAGES + ["DATA.TRAIN_CROP_SIZE", "64", "DATA.TEST_CROP_SIZE", "64", "MVIT.DEPTH", "6",
                               "MVIT.POOL_Q_STRIDE", "[[1, 1, 2, 2], [3, 1, 2, 2], [5, 1, 2, 2]]"]
MVITV2_S_SMALL = _MVIT_STAGES + [
    "DATA.TRAIN_CROP_SIZE", "80", "DATA.TEST_CROP_SIZE", "80", "MVIT.DEPTH", "7",
    "MVIT.POOL_Q_STRIDE",
    "[[0, 1, 1, 1], [1, 1, 2, 2], [2, 1, 1, 1], [3, 1, 2, 2], [4, 1, 1, 1], [5, 1, 2, 2], [6, 1, 1, 1]]"]
# The last layer must be reversible (PySlowFast fuses two streams after it): 7 layers, buffers 1, 3, 5.
REV_MVIT_SMALL = _MVIT_STAGES + ["DATA.TRAIN_CROP_SIZE", "64", "DATA.TEST_CROP_SIZE", "64", "MVIT.DEPTH", "7",
                                 "MVIT.POOL_Q_STRIDE", "[[1, 1, 2, 2], [3, 1, 2, 2], [5, 1, 2, 2]]",
                                 "MVIT.REV.BUFFER_LAYERS", "[1, 3, 5]"]
# Which checkpoint formats each fixture gets (the committed total must stay small): every loader
# is exercised on the ResNet family, SLOWFAST_8x8_R50 (lateral connections in Caffe2 naming) and
# X3D-S (squeeze-excitation, conv_5/lin_5 in Caffe2 naming); the rest carry the zip .pyth only
# (SLOWFAST_8x8_R50 no legacy copy: that container is tested on the others).
ALL_FORMATS = ("pyth", "legacy", "caffe2")
PYTH_ONLY = ("pyth",)

# name, config (relative to the PySlowFast checkout), checkout ("new" or "old"), overrides applied
# by both PySlowFast and vidfeat, overrides for PySlowFast only, checkpoint formats.
FIXTURES = [
    ("C2D_8x8_R50", "configs/Kinetics/C2D_8x8_R50.yaml", "new", RESNET_SMALL, [], ALL_FORMATS),
    # The published YAML names MODEL_NAME ResNet_nopool with ARCH c2d; the PySlowFast code of that
    # time registers no such model: it is ResNet with the c2d_nopool arch (no pool after the stem).
    ("C2D_NOPOOL_8x8_R50", "configs/Kinetics/c2/C2D_NOPOOL_8x8_R50.yaml", "old", RESNET_SMALL,
     ["MODEL.MODEL_NAME", "ResNet", "MODEL.ARCH", "c2d_nopool"], ALL_FORMATS),
    ("I3D_8x8_R50", "configs/Kinetics/I3D_8x8_R50.yaml", "new", RESNET_SMALL, [], ALL_FORMATS),
    ("I3D_NLN_8x8_R50", "configs/Kinetics/I3D_NLN_8x8_R50.yaml", "new", RESNET_SMALL, [], ALL_FORMATS),
    ("SLOW_8x8_R50", "configs/Kinetics/SLOW_8x8_R50.yaml", "new", RESNET_SMALL, [], ALL_FORMATS),
    ("SLOWFAST_8x8_R50", "configs/Kinetics/SLOWFAST_8x8_R50.yaml", "new", SLOWFAST_SMALL, [],
     ("pyth", "caffe2")),
    ("Charades_SLOWFAST_16x8_R50", "configs/Charades/SLOWFAST_16x8_R50.yaml", "new", SLOWFAST_TINY, [], PYTH_ONLY),
    ("Charades_SLOWFAST_16x8_R50_multigrid", "configs/Charades/SLOWFAST_16x8_R50_multigrid.yaml", "new",
     SLOWFAST_TINY, [], PYTH_ONLY),
    ("SSv2_SLOWFAST_16x8_R50", "configs/SSv2/SLOWFAST_16x8_R50.yaml", "new", SLOWFAST_TINY, [], PYTH_ONLY),
    ("SLOWFAST_16x8_R101_50_50", "configs/Kinetics/c2/SLOWFAST_16x8_R101_50_50.yaml", "new", SLOWFAST_TINY, [], PYTH_ONLY),
    ("X3D_S", "configs/Kinetics/X3D_S.yaml", "new", X3D_SMALL, [], ALL_FORMATS),
    ("X3D_M", "configs/Kinetics/X3D_M.yaml", "new", X3D_SMALL, [], PYTH_ONLY),
] + [
    # MViT (PySlowFast asserts TRAIN_CROP_SIZE == TEST_CROP_SIZE, hence the crop pair): 8-wide
    # embedding, the three pooling/dim-mul stages kept on fewer blocks.
    ("MVIT_B_32x3_CONV", "configs/Kinetics/MVIT_B_32x3_CONV.yaml", "new", MVIT_B_SMALL, [], PYTH_ONLY),
    # Crop 80: block 5 pools the 5x5 map to 3x3 where PySlowFast sized block 6's relative
    # position tables for 2x2, so its interpolation of rel_pos_h / rel_pos_w runs.
    ("MVITv2_S_16x4", "configs/Kinetics/MVITv2_S_16x4.yaml", "new", MVITV2_S_SMALL, [], PYTH_ONLY),
    # PySlowFast's own YAML sets CLS_EMBED_ON True, which its reversible model rejects (vidfeat's
    # copy in configs/ says False).
    ("REV_MVIT_B_16x4_CONV", "configs/Kinetics/REV_MVIT_B_16x4_CONV.yaml", "new", REV_MVIT_SMALL,
     ["MVIT.CLS_EMBED_ON", "False"], PYTH_ONLY),
    # Variants the published configs do not reach: the residual MLP fusions of the reversible model;
    # max pooling, separate q/k/v, one positional embedding and mean pooling without a cls token.
    ("REV_MVIT_B_16x4_CONV_concat_linear", "configs/Kinetics/REV_MVIT_B_16x4_CONV.yaml", "new",
     REV_MVIT_SMALL + ["MVIT.REV.PRE_Q_FUSION", "concat_linear_2.0", "MVIT.REV.RESPATH_FUSE", "ln+concat_linear"],
     ["MVIT.CLS_EMBED_ON", "False"], PYTH_ONLY),
    ("MVIT_B_32x3_CONV_max_sepqkv_meanpool", "configs/Kinetics/MVIT_B_32x3_CONV.yaml", "new",
     MVIT_B_SMALL + ["MVIT.MODE", "max", "MVIT.SEPARATE_QKV", "True", "MVIT.CLS_EMBED_ON", "False",
                     "MVIT.SEP_POS_EMBED", "False", "MVIT.USE_MEAN_POOLING", "True"], [], PYTH_ONLY),
]

BN_SUFFIX = {"weight": "s", "bias": "b", "running_mean": "rm", "running_var": "riv"}
PARAM_SUFFIX = {"weight": "w", "bias": "b"}


def caffe2_name(key, last_block):
    """PySlowFast state-dict key -> the Caffe2 blob name PySlowFast would convert back to it.

    last_block[stage]: index of the fast pathway's last block in that stage (Caffe2 named the
    lateral connection after it). Returns None for keys Caffe2 had no blob for.
    """
    if key.endswith("num_batches_tracked"):
        return None
    m = re.fullmatch(r"head\.projection\.(weight|bias)", key)
    if m:
        return "pred_" + PARAM_SUFFIX[m[1]]
    m = re.fullmatch(r"head\.(conv_5|lin_5)\.(weight|bias)", key)
    if m:
        return "%s_%s" % (m[1], PARAM_SUFFIX[m[2]])
    m = re.fullmatch(r"head\.conv_5_bn\.(\w+)", key)
    if m:
        return "conv_5_bn_" + BN_SUFFIX[m[1]]
    m = re.fullmatch(r"s1\.pathway([01])_stem\.(conv|conv_xy)\.weight", key)
    if m:
        pre = "t_" if m[1] == "1" else ""
        return pre + ("conv1_w" if m[2] == "conv" else "conv1_xy_w")
    m = re.fullmatch(r"s1\.pathway([01])_stem\.bn\.(\w+)", key)
    if m:
        return ("t_" if m[1] == "1" else "") + "res_conv1_bn_" + BN_SUFFIX[m[2]]
    m = re.fullmatch(r"s(\d+)\.pathway([01])_res(\d+)\.(.*)", key)
    if m:
        block = ("t_" if m[2] == "1" else "") + "res%s_%s_" % (m[1], m[3])
        rest = m[4]
        r = re.fullmatch(r"branch1\.weight", rest)
        if r:
            return block + "branch1_w"
        r = re.fullmatch(r"branch1_bn\.(\w+)", rest)
        if r:
            return block + "branch1_bn_" + BN_SUFFIX[r[1]]
        r = re.fullmatch(r"branch2\.([abc])\.(weight|bias)", rest)
        if r:
            return block + "branch2%s_%s" % (r[1], PARAM_SUFFIX[r[2]])
        r = re.fullmatch(r"branch2\.([abc])_bn\.(\w+)", rest)
        if r:
            return block + "branch2%s_bn_%s" % (r[1], BN_SUFFIX[r[2]])
        r = re.fullmatch(r"branch2\.se\.(fc\d)\.(weight|bias)", rest)
        if r:  # X3D's squeeze-excitation hangs off the 3x3x3 conv's BN in Caffe2
            return block + "branch2b_bn_%s_%s" % (r[1], PARAM_SUFFIX[r[2]])
    m = re.fullmatch(r"s(\d+)\.pathway0_nonlocal(\d+)\.conv_(theta|phi|g|out)\.(weight|bias)", key)
    if m:
        return "nonlocal_conv%s_%s_%s_%s" % (m[1], m[2], m[3], PARAM_SUFFIX[m[4]])
    m = re.fullmatch(r"s(\d+)\.pathway0_nonlocal(\d+)\.bn\.(\w+)", key)
    if m:
        return "nonlocal_conv%s_%s_bn_%s" % (m[1], m[2], BN_SUFFIX[m[3]])
    m = re.fullmatch(r"s(\d+)_fuse\.(conv_f2s|bn)\.(\w+)", key)
    if m:
        stage = int(m[1])
        base = "t_pool1_subsample" if stage == 1 else "t_res%d_%d_branch2c_bn_subsample" % (stage, last_block[stage])
        if m[2] == "conv_f2s":
            return base + "_" + PARAM_SUFFIX[m[3]]
        return base + "_bn_" + BN_SUFFIX[m[3]]
    raise SystemExit("make_fixtures: no Caffe2 name for state-dict key %r; extend caffe2_name()" % key)


class Py2Pickler(pickle._Pickler):
    """Protocol-2 pickler writing bytes and ASCII text as Python 2's `str` (BINSTRING), as a
    Python 2 Caffe2 run wrote them, instead of Python 3's _codecs.encode / BINUNICODE."""

    dispatch = dict(pickle._Pickler.dispatch)

    def _save_binstring(self, data):
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<I", len(data)) + data)

    def save_bytes(self, obj):
        self._save_binstring(obj)
        self.memoize(obj)

    def save_str(self, obj):
        if obj.isascii():
            self._save_binstring(obj.encode("ascii"))
            self.memoize(obj)
        else:
            pickle._Pickler.save_str(self, obj)

    dispatch[bytes] = save_bytes
    dispatch[str] = save_str


def write_caffe2_pickle(state, path, pysf_root):
    import numpy as np
    import importlib.util
    # Load PySlowFast's converter module on its own (it needs only `re`), not the whole package.
    spec = importlib.util.spec_from_file_location(
        "pysf_c2_model_loading", os.path.join(pysf_root, "slowfast", "utils", "c2_model_loading.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    to_pytorch = module.get_name_convert_func()
    last_block = {}
    for k in state:
        m = re.match(r"s(\d+)\.pathway1_res(\d+)\.", k)
        if m:
            last_block[int(m[1])] = max(last_block.get(int(m[1]), 0), int(m[2]))
    blobs = {}
    for k, t in state.items():
        name = caffe2_name(k, last_block)
        if name is None:
            continue
        back = to_pytorch(name)
        if back != k:
            raise SystemExit("make_fixtures: %s -> Caffe2 %s -> PySlowFast %s (not the same key)" % (k, name, back))
        a = t.detach().cpu().numpy().copy()
        if name == "lin_5_w":
            # Caffe2's X3D wrote lin_5 as an FC (2-D); PySlowFast appends the 1x1x1 dims on load.
            a = a.reshape(a.shape[0], a.shape[1])
        blobs[name] = a
    # Training blobs real Caffe2 checkpoints carry; PySlowFast skips them without a warning.
    blobs["lr"] = np.array([0.1], dtype=np.float32)
    blobs["model_iter"] = np.array([1000], dtype=np.int64)
    blobs["conv1_w_momentum"] = np.zeros((2, 2), dtype=np.float32)
    with open(path, "wb") as f:
        Py2Pickler(f, protocol=2).dump({"blobs": blobs})
    return len(blobs)


def make(name, config, which, overrides, pysf_only, formats, roots, reference, out):
    root = roots[which]
    cfg_path = os.path.join(root, config)
    prefix = os.path.join(out, name)
    # pysf_ref.py puts its own stubs (fvcore, iopath, detectron2, pytorchvideo) and the checkout on
    # sys.path itself.
    args = ["/usr/bin/python3", os.path.join(reference, "pysf_ref.py"), cfg_path, "--pysf", root, "--save", prefix]
    args += COMMON + overrides + pysf_only
    proc = subprocess.run(args, env=dict(os.environ, PYSF=root), capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout + proc.stderr)
        raise SystemExit("make_fixtures: pysf_ref.py failed for " + name)
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    os.remove(prefix + ".json")

    import torch
    state = torch.load(prefix + ".pyth", map_location="cpu")["model_state"]
    nblobs = 0
    if "caffe2" in formats:
        nblobs = write_caffe2_pickle(state, prefix + ".pkl", root)
    elif os.path.exists(prefix + ".pkl"):
        os.remove(prefix + ".pkl")
    if "legacy" not in formats:
        os.remove(prefix + ".legacy.pyth")

    # The config travels with the fixtures, under PySlowFast's folder names.
    dst = os.path.join(ROOT, config)
    if not os.path.exists(dst):
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copyfile(cfg_path, dst)

    def kv(pairs):
        return ["%s=%s" % (pairs[i], pairs[i + 1]) for i in range(0, len(pairs), 2)]

    entry = {
        "name": name,
        "config": config,
        "overrides": kv(COMMON + overrides),
        "pysf_only_overrides": kv(pysf_only),
        "pysf_checkout": "before 99a655b" if which == "old" else "current",
        "arch": summary["arch"],
        "feature_dim": summary["feat_dim"],
        "params_m": summary["params_m"],
        "feature_norm": summary["feat_norm"],
        "caffe2_blobs": nblobs,
        "files": {"io": name + ".io.pt"},
    }
    suffix = {"pyth": ".pyth", "legacy": ".legacy.pyth", "caffe2": ".pkl"}
    for fmt in formats:
        entry["files"][fmt] = name + suffix[fmt]
    size = sum(os.path.getsize(os.path.join(out, f)) for f in entry["files"].values())
    print("%-40s %-10s dim %5d  %.2f MB" % (name, summary["arch"], summary["feat_dim"], size / 1e6), flush=True)
    return entry


def write_extras(out):
    """Small files for the container variants PySlowFast fixtures do not cover."""
    import torch
    from collections import OrderedDict
    gen = torch.Generator().manual_seed(7)
    sd = OrderedDict([("conv.weight", torch.randn(4, 3, 1, 1, 1, generator=gen)),
                      ("bn.running_mean", torch.randn(4, generator=gen)),
                      ("bn.num_batches_tracked", torch.tensor(3))])
    # TSM style: {"state_dict": {"module.<key>": tensor}, "epoch": n}, and a bare state dict.
    torch.save({"state_dict": OrderedDict(("module." + k, v) for k, v in sd.items()), "epoch": 3},
               os.path.join(out, "tsm_style.pth"))
    torch.save(sd, os.path.join(out, "bare_state.legacy.pth"), _use_new_zipfile_serialization=False)


def write_fuzz_seeds(out_dir):
    """Seed corpus of the unpickler fuzz target: one small pickle per construct the formats use."""
    import io
    import numpy as np
    import torch
    from collections import OrderedDict
    os.makedirs(out_dir, exist_ok=True)
    arr = np.arange(6, dtype=np.float32).reshape(2, 3)
    with open(os.path.join(out_dir, "py3_numpy.pkl"), "wb") as f:
        pickle.dump({"blobs": {"pred_w": arr}}, f, protocol=2)
    with open(os.path.join(out_dir, "py2_numpy.pkl"), "wb") as f:
        Py2Pickler(f, protocol=2).dump({"blobs": {"pred_w": arr, "lr": np.array([0.1]),
                                                  "fortran": np.asfortranarray(np.ones((2, 2), np.float64))}})
    sd = OrderedDict([("w", torch.arange(6.0).reshape(2, 3)), ("n", torch.tensor(3))])
    buf = io.BytesIO()
    torch.save({"model_state": sd}, buf)
    import zipfile
    z = zipfile.ZipFile(io.BytesIO(buf.getvalue()))
    with open(os.path.join(out_dir, "torch_zip_data.pkl"), "wb") as f:
        f.write(z.read([n for n in z.namelist() if n.endswith("data.pkl")][0]))
    buf = io.BytesIO()
    torch.save({"model_state": sd}, buf, _use_new_zipfile_serialization=False)
    with open(os.path.join(out_dir, "torch_legacy.bin"), "wb") as f:
        f.write(buf.getvalue())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(ROOT, "tests", "fixtures"))
    ap.add_argument("--reference", default=os.path.join(HERE, "reference"),
                    help="folder of pysf_ref.py (default: tools/reference)")
    ap.add_argument("--only", nargs="*", default=None)
    ap.add_argument("--fuzz-seeds", default=os.path.join(ROOT, "tests", "fuzz", "corpus"))
    a = ap.parse_args()
    unknown = sorted(set(a.only or ()) - {f[0] for f in FIXTURES})
    if unknown:
        ap.error("--only: no fixture named %s (see FIXTURES)" % ", ".join(unknown))
    roots = {"new": os.environ.get("PYSF", "/tmp/SlowFast"), "old": os.environ.get("PYSF_OLD", "/tmp/SlowFast_old")}
    os.makedirs(a.out, exist_ok=True)
    manifest_path = os.path.join(a.out, "fixtures.json")
    entries = {}
    if os.path.exists(manifest_path):
        with open(manifest_path) as f:
            entries = {e["name"]: e for e in json.load(f)["fixtures"]}
    for name, config, which, overrides, pysf_only, formats in FIXTURES:
        if a.only and name not in a.only:
            continue
        entries[name] = make(name, config, which, overrides, pysf_only, formats, roots, a.reference, a.out)
    write_extras(a.out)
    write_fuzz_seeds(a.fuzz_seeds)
    order = [f[0] for f in FIXTURES]
    manifest = {
        "generator": "tools/make_fixtures.py",
        "note": "Weights are seeded random, not trained. overrides apply to vidfeat and PySlowFast; "
                "pysf_only_overrides only to PySlowFast. Relative error bound: 1e-4.",
        "fixtures": [entries[n] for n in order if n in entries],
    }
    with open(manifest_path, "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
