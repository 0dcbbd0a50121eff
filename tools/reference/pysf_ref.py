#!/usr/bin/python3
"""vidfeat's reference harness: PySlowFast's own model code makes what vidfeat must reproduce.

PySlowFast builds the model from one of its YAML configs (plus KEY VALUE overrides, merged as
PySlowFast merges them); every floating-point parameter and buffer is then perturbed from a seeded
generator, so a wrong eps, a running statistic left at its default or a transposed weight changes
the result; a seeded random input runs one eval-mode forward; the feature the seed extractor takes
is captured by a forward pre-hook:

  ResNet / SlowFast / X3D  the input of head.projection averaged over H and W, flattened over T*C
  MViT                     the input of the head (after the final norm and the cls token / mean)

  PYSF=/tmp/SlowFast /usr/bin/python3 tools/reference/pysf_ref.py CONFIG.yaml \\
      [--save PREFIX] [--seed 0] [--batch 1] [--threads 2] [--reps 1] [KEY VALUE ...]

--save PREFIX writes PREFIX.pyth (torch.save, zip container: {"model_state": OrderedDict, "cfg":
YAML str}, as PySlowFast's checkpoints), PREFIX.legacy.pyth (the same in the pre-1.6 container),
PREFIX.io.pt ({"inputs": [pathway tensors], "feature": tensor}) and PREFIX.json; the summary JSON is
also the last line on stdout. As a module (tools/bench/pysf_forward.py): use_pysf(), load_cfg(),
randomize(), model_inputs(), capture_feature().

Seeding (what the committed fixtures are a function of): torch.manual_seed(seed) before
build_model (PySlowFast's own inits draw from the global generator); a torch.Generator seeded
seed + 1 then draws, in named_parameters() order followed by named_buffers() order:
running_var ~ U[0.5, 1.5), running_mean ~ 0.1 N(0, 1), other tensors of <= 1 dim += 0.1 N(0, 1),
larger ones += 0.1 std(t) N(0, 1) (std clamped to >= 1e-3); and after them the input
N(0, 1) of shape [batch, 3, DATA.NUM_FRAMES, DATA.TEST_CROP_SIZE, DATA.TEST_CROP_SIZE], from which
a two-pathway model's slow input takes NUM_FRAMES / SLOWFAST.ALPHA frames at
linspace(0, T - 1) (PySlowFast's pack_pathway_output).

Nothing of PySlowFast is in this repository: PYSF (or use_pysf(path)) names an export of its
slowfast/ and configs/ folders (tools/reference/README.md). stubs/ stands in for the fvcore,
iopath, detectron2 and pytorchvideo pieces that PySlowFast imports; fallback/ for matplotlib and
PyAV when they are not installed (it goes last on sys.path, so installed ones win).
"""
import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
STUBS = os.path.join(HERE, "stubs")
FALLBACK = os.path.join(HERE, "fallback")
DEFAULT_PYSF = "/tmp/SlowFast"


def use_pysf(pysf=None):
    """Put the stubs and PySlowFast (pysf, else $PYSF, else /tmp/SlowFast) first on sys.path, the
    fallbacks last; returns the PySlowFast path. Fails clearly when it is not an export."""
    pysf = os.path.abspath(pysf or os.environ.get("PYSF") or DEFAULT_PYSF)
    if not os.path.isfile(os.path.join(pysf, "slowfast", "models", "build.py")):
        raise SystemExit("pysf_ref: %s is not an export of PySlowFast (no slowfast/models/build.py); "
                         "see tools/reference/README.md" % pysf)
    for p in (STUBS, pysf):
        if p in sys.path:
            sys.path.remove(p)
    sys.path[:0] = [STUBS, pysf]
    if FALLBACK not in sys.path:
        sys.path.append(FALLBACK)
    return pysf


def load_cfg(path, opts=()):
    """PySlowFast's defaults, then the YAML file, then NUM_GPUS 0, then the KEY VALUE overrides."""
    from slowfast.config.defaults import get_cfg

    cfg = get_cfg()
    cfg.merge_from_file(path)
    cfg.NUM_GPUS = 0
    cfg.merge_from_list(list(opts))
    return cfg


def randomize(model, gen):
    """Perturb every floating-point parameter and buffer from `gen` (order: parameters, buffers)."""
    import torch

    tensors = list(model.named_parameters()) + list(model.named_buffers())
    with torch.no_grad():
        for name, t in tensors:
            if not t.is_floating_point():
                continue
            if name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=gen) + 0.5)
            elif name.endswith("running_mean"):
                t.copy_(torch.randn(t.shape, generator=gen) * 0.1)
            elif t.dim() <= 1:
                t.add_(torch.randn(t.shape, generator=gen) * 0.1)
            else:
                scale = t.std().clamp(min=1e-3)
                t.add_(torch.randn(t.shape, generator=gen) * scale * 0.1)


def model_inputs(cfg, gen, batch=1):
    """The seeded clip as the list of pathway tensors the model takes."""
    import torch

    frames, crop = cfg.DATA.NUM_FRAMES, cfg.DATA.TEST_CROP_SIZE
    fast = torch.randn(batch, 3, frames, crop, crop, generator=gen)
    if cfg.MODEL.ARCH not in cfg.MODEL.MULTI_PATHWAY_ARCH:
        return [fast]
    slow_idx = torch.linspace(0, frames - 1, frames // cfg.SLOWFAST.ALPHA).long()
    return [torch.index_select(fast, 2, slow_idx), fast]


def capture_feature(model):
    """Registers the pre-hook; returns a dict whose "feat" holds the last forward's feature."""
    box = {}

    def pre_hook(_module, args):
        x = args[0]
        if x.dim() == 5:  # [N, T, H, W, C] at the projection: mean over H, W; flatten T*C
            x = x.mean(3).mean(2).reshape(x.shape[0], -1)
        box["feat"] = x

    if type(model).__name__ == "MViT":
        model.head.register_forward_pre_hook(pre_hook)
    else:
        model.head.projection.register_forward_pre_hook(pre_hook)
    return box


def build(cfg, seed):
    """PySlowFast's model for cfg, eval mode, randomised; returns (model, generator)."""
    import torch
    from slowfast.models import build_model

    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed + 1)
    model = build_model(cfg).eval()
    randomize(model, gen)
    return model, gen


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("cfg", help="PySlowFast YAML config")
    ap.add_argument("--pysf", default=None, help="PySlowFast export (default $PYSF, else %s)" % DEFAULT_PYSF)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=1, help="timed forwards after the first one")
    ap.add_argument("--save", default=None, metavar="PREFIX")
    a, opts = ap.parse_known_args(argv)
    if len(opts) % 2 or any(o.startswith("--") for o in opts[0::2]):
        ap.error("unknown option or odd KEY VALUE list: %s" % " ".join(opts))
    use_pysf(a.pysf)
    import torch

    torch.set_num_threads(a.threads)
    cfg = load_cfg(a.cfg, opts)
    model, gen = build(cfg, a.seed)
    box = capture_feature(model)
    inputs = model_inputs(cfg, gen, a.batch)
    times = []
    with torch.no_grad():
        model(inputs)
        feat = box["feat"]
        for _ in range(a.reps):
            t0 = time.perf_counter()
            model(inputs)
            times.append(time.perf_counter() - t0)
    summary = {
        "cfg": a.cfg, "arch": cfg.MODEL.ARCH, "frames": cfg.DATA.NUM_FRAMES, "crop": cfg.DATA.TEST_CROP_SIZE,
        "feat_dim": int(feat.shape[-1]),
        "params_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 3),
        "fwd_s_median": round(sorted(times)[len(times) // 2], 4) if times else None,
        "feat_norm": float(feat.norm()),
    }
    if a.save:
        state = {"model_state": model.state_dict(), "cfg": cfg.dump()}
        torch.save(state, a.save + ".pyth")
        torch.save(state, a.save + ".legacy.pyth", _use_new_zipfile_serialization=False)
        torch.save({"inputs": inputs, "feature": feat}, a.save + ".io.pt")
        with open(a.save + ".json", "w") as f:
            json.dump(summary, f, indent=1)
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
