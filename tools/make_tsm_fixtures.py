#!/usr/bin/python3
"""Make vidfeat's TSN / TSM parity fixtures from the TSM repository's own model code.

mit-han-lab/temporal-shift-module's ops/models.py TSN class builds the model (its torchvision
ResNet backbone, TemporalShift wrapped around each residual block's conv1 for TSM 'blockres'),
every parameter and BatchNorm statistic is perturbed from a seeded generator (as
tools/reference/pysf_ref.py does for PySlowFast), and a seeded input runs through it. Written
under --out, per fixture NAME:

  NAME.pth    torch.save of {"epoch", "arch", "state_dict", "best_prec1"}, state_dict keys
              prefixed "module." (the TSN model was wrapped in DataParallel when TSM's main.py saved
              it): the shape of the published TSM_kinetics_RGB_resnet50_*.pth files. TSM is
              written in the pre-1.6 container (as the published files are), TSN in the zip one,
              so both readers see a TSM-style dict.
  NAME.io.pt  {"inputs": [clip], "feature": ..., "logits": ...}; clip is vidfeat's layout
              [B, C, T, H, W]; the reference sees it as TSM's test script feeds it, [B, T*C, H, W]
              (frame-major). feature = the average consensus over segments of the base model's
              pooled output (before dropout and new_fc), logits = TSN.forward (new_fc per segment,
              average consensus).

and tsm_fixtures.json (name, config, overrides, sizes). The small fixtures scale every ResNet
width by RESNET.WIDTH_PER_GROUP / 64 (stem 64 -> w, planes 64/128/256/512 -> w..8w, feature
2048 -> 32w): torchvision's ResNet is subclassed so the state-dict keys stay exactly the
published ones, only the shapes shrink. vidfeat reads RESNET.WIDTH_PER_GROUP the same way.

  /usr/bin/python3 tools/make_tsm_fixtures.py --tsm /tmp/tsm [--out tests/fixtures]
  /usr/bin/python3 tools/make_tsm_fixtures.py --tsm /tmp/tsm --full /tmp/tsm_full   # full size

--tsm is an export of the TSM repository (git archive HEAD); nothing of it is copied here.
--full writes full-width ResNet-50 checkpoints and inputs (224 px, batch 1) with the reference's
CPU forward time, for docs/MODELS.md; those files are far too large to commit.
"""
import argparse
import json
import os
import sys
import time

import torch
import torchvision
from torchvision.models.resnet import Bottleneck

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

# name, config, shift, segments, crop, width, batch, torch.save container
SMALL = [
    ("TSN_R50_avg_segment5", "configs/TSN/TSN_R50_avg_segment5.yaml", False, 3, 64, 8, 2, "zip"),
    ("TSM_R50_shift8_blockres_avg_segment8", "configs/TSM/TSM_R50_shift8_blockres_avg_segment8.yaml",
     True, 8, 64, 8, 2, "legacy"),
]
FULL = [
    ("TSN_R50_avg_segment5", "configs/TSN/TSN_R50_avg_segment5.yaml", False, 8, 224, 64, 1, "legacy"),
    ("TSM_R50_shift8_blockres_avg_segment8", "configs/TSM/TSM_R50_shift8_blockres_avg_segment8.yaml",
     True, 8, 224, 64, 1, "legacy"),
]
NUM_CLASSES_SMALL = 10
NUM_CLASSES_FULL = 400


class NarrowResNet(torchvision.models.ResNet):
    """torchvision's ResNet with every width scaled by width / 64 (same module names)."""

    def __init__(self, width, layers, num_classes=1000):
        self._width = width
        super().__init__(Bottleneck, layers, num_classes=num_classes)
        self.conv1 = torch.nn.Conv2d(3, width, kernel_size=7, stride=2, padding=3, bias=False)
        torch.nn.init.kaiming_normal_(self.conv1.weight, mode="fan_out", nonlinearity="relu")
        self.bn1 = torch.nn.BatchNorm2d(width)
        self.fc = torch.nn.Linear(8 * width * Bottleneck.expansion, num_classes)

    def _make_layer(self, block, planes, blocks, stride=1, dilate=False):
        if planes == 64:  # layer1: the stem's output width
            self.inplanes = self._width
        return super()._make_layer(block, planes * self._width // 64, blocks, stride, dilate)


def install_backbone(width):
    """TSN calls getattr(torchvision.models, 'resnet50')(pretrained); 0.14 takes no positional."""

    def resnet50(pretrained=False):
        assert not pretrained
        if width == 64:
            return torchvision.models.resnet.ResNet(Bottleneck, [3, 4, 6, 3])
        return NarrowResNet(width, [3, 4, 6, 3])

    torchvision.models.resnet50 = resnet50


def randomize(model, gen):
    """Perturb every float parameter and buffer so default inits cannot hide bugs (pysf_ref.py)."""
    with torch.no_grad():
        for name, t in list(model.named_parameters()) + list(model.named_buffers()):
            if not t.is_floating_point():
                continue
            if name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=gen) + 0.5)
            elif name.endswith("running_mean"):
                t.copy_(torch.randn(t.shape, generator=gen) * 0.1)
            elif t.dim() <= 1:
                t.add_(torch.randn(t.shape, generator=gen) * 0.1)
            else:
                t.add_(torch.randn(t.shape, generator=gen) * t.std().clamp(min=1e-3) * 0.1)


def build(tsm_root, shift, segments, width, num_classes):
    sys.path.insert(0, tsm_root)
    from ops.models import TSN  # noqa: E402  (the reference's own class)

    install_backbone(width)
    # As test_models.py builds it: TSM with n_segment = the test segments, TSN with 1 (its
    # consensus averages whatever number of frames arrives).
    net = TSN(num_classes, segments if shift else 1, "RGB", base_model="resnet50",
              consensus_type="avg", dropout=0.5, pretrain="none", is_shift=shift, shift_div=8,
              shift_place="blockres", print_spec=False)
    if not shift:
        net.num_segments = segments  # one video per batch row, as test_models.py's reshape does
    return net


def run(net, clip):
    """clip: [B, C, T, H, W] (vidfeat) -> feature [B, D], logits [B, classes], seconds."""
    B, C, T, H, W = clip.shape
    x = clip.permute(0, 2, 1, 3, 4).reshape(B, T * C, H, W)  # TSM's [B, T*C, H, W]
    box = {}
    hook = net.base_model.register_forward_hook(lambda _m, _i, out: box.__setitem__("base", out))
    with torch.no_grad():
        net(x)  # warm-up
        t0 = time.perf_counter()
        logits = net(x)
        seconds = time.perf_counter() - t0
    hook.remove()
    # base_model's fc is the dropout (identity in eval): its output is the pooled 2048-d frame
    # feature; the consensus over segments is the mean (ConsensusModule 'avg').
    feature = box["base"].reshape(B, T, -1).mean(1)
    return feature, logits.reshape(B, -1), seconds


def make(args, spec, out, num_classes, seed):
    name, config, shift, segments, crop, width, batch, container = spec
    # torchvision's and TSN's own inits draw from the global generator: seed it too, so the same
    # command writes the same files.
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    net = build(args.tsm, shift, segments, width, num_classes)
    randomize(net, gen)
    net.eval()
    clip = torch.randn(batch, 3, segments, crop, crop, generator=gen)
    feature, logits, seconds = run(net, clip)
    state = {"module." + k: v for k, v in net.state_dict().items()}
    ckpt = {"epoch": 50, "arch": "resnet50", "state_dict": state, "best_prec1": 0.0}
    pth = os.path.join(out, name + ".pth")
    torch.save(ckpt, pth, _use_new_zipfile_serialization=(container == "zip"))
    io = os.path.join(out, name + ".io.pt")
    torch.save({"inputs": [clip], "feature": feature, "logits": logits}, io)
    params = sum(p.numel() for p in net.parameters())
    return {
        "name": name,
        "config": config,
        "overrides": [f"DATA.NUM_FRAMES={segments}", f"DATA.TRAIN_JITTER_SCALES=[{crop},{crop}]",
                      f"DATA.TEST_CROP_SIZE={crop}", f"MODEL.NUM_CLASSES={num_classes}",
                      f"RESNET.WIDTH_PER_GROUP={width}"],
        "shift": shift,
        "segments": segments,
        "batch": batch,
        "feature_dim": int(feature.shape[1]),
        "state_keys": len(state),
        "parameters": int(params),
        "feature_norm": float(feature.norm()),
        "reference_forward_s": seconds,
        "container": container,
        "files": {"checkpoint": name + ".pth", "io": name + ".io.pt"},
    }


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tsm", required=True, help="export of mit-han-lab/temporal-shift-module")
    p.add_argument("--out", default=os.path.join(ROOT, "tests", "fixtures"))
    p.add_argument("--full", help="write full-size ResNet-50 files here instead of the small fixtures")
    p.add_argument("--threads", type=int, default=0)
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    full = a.full is not None
    out = a.full if full else a.out
    os.makedirs(out, exist_ok=True)
    rows = [make(a, s, out, NUM_CLASSES_FULL if full else NUM_CLASSES_SMALL, seed=7 + i)
            for i, s in enumerate(FULL if full else SMALL)]
    manifest = {
        "generator": "tools/make_tsm_fixtures.py",
        "reference": "mit-han-lab/temporal-shift-module ops/models.py TSN, ops/temporal_shift.py",
        "note": "Weights are seeded random, not trained. Relative error bound: 1e-4.",
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "fixtures": rows,
    }
    with open(os.path.join(out, "tsm_fixtures.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    for r in rows:
        print(f"{r['name']}: D={r['feature_dim']} keys={r['state_keys']} params={r['parameters']} "
              f"|feature|={r['feature_norm']:.4f} reference forward {r['reference_forward_s']:.3f} s")


if __name__ == "__main__":
    main()
