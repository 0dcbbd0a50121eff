#!/usr/bin/env python3
"""Seed-style Python pipeline for one video, to compare vidfeat with end to end.

decode -> buckets -> preprocessing -> PySlowFast forward, each step done the way the seed
extractor (PySlowFast's test-time data path) does it, with PySlowFast's own functions and model
imported at run time from a PySlowFast checkout (PYSF); nothing of PySlowFast lives in this repo.

  decode      every frame with PyAV, in presentation order (sorted by pts as PySlowFast's
              pyav decoder does), frame.to_rgb().to_ndarray() (uint8 H x W x 3)
  buckets     vidfeat's definition (README "Clips"): NUM_FRAMES frames every SAMPLING_RATE
              frames, clips SPAN = NUM_FRAMES * SAMPLING_RATE apart; a clip is full when its last
              sampled position exists; the last partial clip repeats the last frame
              (vidfeat --tail repeat); a video shorter than one clip gives one segment
  preprocess  slowfast.datasets.utils.tensor_normalize (uint8 -> /255 -> (x-MEAN)/STD),
              T,H,W,C -> C,T,H,W, slowfast.datasets.utils.spatial_sampling with spatial_idx 1 and
              min = max scale = DATA.TRAIN_JITTER_SCALES[0], crop DATA.TEST_CROP_SIZE (short-side
              scale with torch bilinear align_corners=False, then uniform_crop centre),
              slowfast.datasets.utils.pack_pathway_output
  forward     slowfast.models.build_model with the checkpoint's model_state (strict), eval mode;
              feature = the input of head.projection averaged over H and W and flattened over
              T*C (a forward pre-hook, as tools/reference/pysf_ref.py does)

Writes an .npz: features (S, D) float32, first_frame, last_frame, padded_frames (S,) int64,
decoded_frames, frame_size (H, W). With --compare OUT.h5 it also reads vidfeat's features for the
video and prints the segment counts and ||ours - seed|| / ||seed|| per segment and overall.

  PYSF=/tmp/SlowFast /usr/bin/python3 tools/reference/seed_pipeline.py VIDEO CONFIG.yaml CHECKPOINT.pyth \
      --out seed.npz [--compare vidfeat.h5 --video-id ID] [KEY VALUE ...]

Needs Debian's python3-av (PyAV) besides what pysf_ref.py needs. Rotation metadata is not
applied (PySlowFast does not apply it either).
"""
import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))


def setup_path(pysf, reference):
    # pysf_ref.use_pysf: the reference stubs (fvcore, iopath, detectron2, pytorchvideo pieces) and
    # PySlowFast go first; its fallbacks (matplotlib, av) last, so the real PyAV wins over them.
    sys.path.insert(0, reference)
    import pysf_ref

    pysf_ref.use_pysf(pysf)


def decode_rgb(path):
    """Every frame of the first video stream as uint8 RGB (H, W, 3), in pts order."""
    import av
    import numpy as np

    frames = []
    with av.open(path) as container:
        stream = container.streams.video[0]
        for i, frame in enumerate(container.decode(stream)):
            pts = frame.pts if frame.pts is not None else i
            frames.append((pts, i, frame.to_rgb().to_ndarray()))
    frames.sort(key=lambda t: (t[0], t[1]))
    return [np.ascontiguousarray(f) for _, _, f in frames]


def plan_buckets(n, num_frames, rate):
    """(first_frame, last_frame, positions, padded) per segment, vidfeat's --tail repeat."""
    span = num_frames * rate
    last_offset = (num_frames - 1) * rate
    segs = []
    k = 0
    while k * span + last_offset < n:
        start = k * span
        segs.append((start, min(start + span, n) - 1, [start + j * rate for j in range(num_frames)], 0))
        k += 1
    start = k * span
    if start < n:
        pos = [start + j * rate for j in range(num_frames)]
        padded = sum(p >= n for p in pos)
        segs.append((start, n - 1, [min(p, n - 1) for p in pos], padded))
    return segs


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("video")
    ap.add_argument("cfg")
    ap.add_argument("checkpoint", help="PySlowFast .pyth (torch.save dict with model_state)")
    ap.add_argument("--out", required=True, help="output .npz")
    ap.add_argument("--pysf", default=os.environ.get("PYSF", "SlowFast"), help="PySlowFast checkout")
    ap.add_argument("--reference", default=HERE,
                    help="folder of pysf_ref.py and its stubs (default: tools/reference)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=1, help="clips per forward")
    ap.add_argument("--dump-clip", type=int, default=-1,
                    help="also store segment K's preprocessed input (pathway tensors) and its uint8 frames")
    ap.add_argument("--compare", default=None, help="vidfeat output .h5 to compare with")
    ap.add_argument("--video-id", default=None, help="video_id in --compare (default: file stem)")
    a, a.opts = ap.parse_known_args()

    setup_path(os.path.abspath(a.pysf), os.path.abspath(a.reference))
    import numpy as np
    import torch
    from slowfast.config.defaults import get_cfg
    from slowfast.datasets import utils as dutils
    from slowfast.models import build_model

    torch.set_num_threads(a.threads)
    cfg = get_cfg()
    cfg.merge_from_file(a.cfg)
    cfg.NUM_GPUS = 0
    cfg.merge_from_list(list(a.opts))

    model = build_model(cfg).eval()
    ckpt = torch.load(a.checkpoint, map_location="cpu")
    state = ckpt["model_state"] if isinstance(ckpt, dict) and "model_state" in ckpt else ckpt
    model.load_state_dict(state, strict=True)
    box = {}

    def hook(_mod, inp):
        x = inp[0]
        box["feat"] = x.mean(3).mean(2).reshape(x.shape[0], -1) if x.dim() == 5 else x

    (model.head if model.__class__.__name__ == "MViT" else model.head.projection).register_forward_pre_hook(hook)

    t0 = time.perf_counter()
    frames = decode_rgb(a.video)
    n = len(frames)
    h, w = frames[0].shape[:2]
    t_decode = time.perf_counter() - t0
    print(f"decoded {n} frames {w}x{h} in {t_decode:.1f} s", flush=True)

    segs = plan_buckets(n, cfg.DATA.NUM_FRAMES, cfg.DATA.SAMPLING_RATE)
    scale = cfg.DATA.TRAIN_JITTER_SCALES[0]
    crop = cfg.DATA.TEST_CROP_SIZE

    def preprocess(positions):
        clip = torch.from_numpy(np.stack([frames[p] for p in positions]))  # T,H,W,C uint8
        clip = dutils.tensor_normalize(clip, cfg.DATA.MEAN, cfg.DATA.STD)
        clip = clip.permute(3, 0, 1, 2)  # C,T,H,W
        clip = dutils.spatial_sampling(clip, spatial_idx=1, min_scale=scale, max_scale=scale,
                                       crop_size=crop, random_horizontal_flip=False)
        return dutils.pack_pathway_output(cfg, clip)

    feats = []
    dump = {}
    t_forward = 0.0
    with torch.no_grad():
        for b in range(0, len(segs), a.batch):
            group = segs[b:b + a.batch]
            packed = [preprocess(s[2]) for s in group]
            inputs = [torch.stack([p[i] for p in packed]) for i in range(len(packed[0]))]
            t1 = time.perf_counter()
            model(inputs)
            t_forward += time.perf_counter() - t1
            feats.append(box["feat"].float().numpy())
            for j, s in enumerate(group):
                if b + j == a.dump_clip:
                    for i, p in enumerate(packed[j]):
                        dump[f"clip_pathway{i}"] = p.numpy()
                    dump["clip_frames"] = np.stack([frames[q] for q in s[2]])
            print(f"segments {b}..{b + len(group) - 1} of {len(segs)}: forward {time.perf_counter() - t1:.1f} s",
                  flush=True)
    features = np.concatenate(feats).astype(np.float32)
    np.savez(a.out, features=features,
             first_frame=np.array([s[0] for s in segs], np.int64),
             last_frame=np.array([s[1] for s in segs], np.int64),
             padded_frames=np.array([s[3] for s in segs], np.int64),
             decoded_frames=np.int64(n), frame_size=np.array([h, w], np.int64), **dump)
    print(f"wrote {a.out}: {features.shape[0]} segments x {features.shape[1]}")
    # decode -> buckets -> preprocessing -> forward -> written, without imports and model loading
    # (tools/bench parses this line).
    print(f"pipeline {time.perf_counter() - t0:.3f} s: decode {t_decode:.3f} s, forward {t_forward:.3f} s, "
          f"{len(segs)} segments", flush=True)

    if a.compare:
        compare(a.compare, a.video_id or os.path.splitext(os.path.basename(a.video))[0], features, segs)


def compare(h5path, video_id, seed, segs):
    import h5py
    import numpy as np

    with h5py.File(h5path, "r") as f:
        videos = f["videos"][:]
        ids = (f["manifest"] if "manifest" in f else f["videos"])["video_id"]  # format 2 / 1
        row = np.flatnonzero(ids == video_id.encode())
        if len(row) != 1:
            sys.exit(f"video_id {video_id!r} not found once in {h5path}")
        v = videos[row[0]]
        lo, hi = int(v["first_row"]), int(v["first_row"]) + int(v["segment_count"])
        ours = f["features"][lo:hi]
        seg = f["segments"][lo:hi]
    print(f"segments: vidfeat {len(ours)}, seed {len(seed)}")
    if len(ours) != len(seed):
        sys.exit(1)
    bad_span = [i for i, s in enumerate(segs)
                if (seg["first_frame"][i], seg["last_frame"][i], seg["padded_frames"][i]) != s[:2] + (s[3],)]
    if bad_span:
        print(f"segment spans differ at {bad_span}")
    per = np.linalg.norm(ours - seed, axis=1) / np.linalg.norm(seed, axis=1)
    for i, e in enumerate(per):
        print(f"  segment {i} frames {segs[i][0]}-{segs[i][1]} padded {segs[i][3]}: rel. error {e:.3e}")
    overall = np.linalg.norm(ours - seed) / np.linalg.norm(seed)
    print(f"max per segment {per.max():.3e}, overall {overall:.3e}")


if __name__ == "__main__":
    main()
