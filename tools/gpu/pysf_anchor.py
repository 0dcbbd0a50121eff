#!/usr/bin/env python3
"""Row 3 of tools/gpu/check.py: PySlowFast's own eager model, timed at a batch and precision.

  python3 tools/gpu/pysf_anchor.py --models MODELS.json --pysf /tmp/SlowFast --device cuda \
      --batch 8 --precisions fp32,bf16,fp16 [--seconds 0.5] [--threads N] [--deadline S]

MODELS.json: [{"name", "config"}] (vidfeat's shipped config of each model). Per model:
slowfast.models.build_model from the PySlowFast export (tools/reference/pysf_ref.py's use_pysf and
load_cfg: its stubs first on sys.path), seeded random weights (pysf_ref.randomize; the times do
not depend on them), eval mode, under torch.inference_mode; per precision the model and a random
input of [batch, 3, T, crop, crop] (packed into pathways as pysf_ref.model_inputs does) cast to
that dtype (fp16 / bf16: the weights cast, as vidfeat casts its own), one warm-up forward, then
forwards for --seconds (at least 3), synchronised; clips/s = batch x forwards / seconds.

Needs only torch: PyYAML and numpy, when absent, are stood in for by tools/gpu/pyfallback/
(appended last to sys.path, so installed ones win). One JSON line per (model, precision) and a
{"done": true} line per model, flushed; a model that fails prints its error and the next goes on.
"""
import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOOLS = os.path.dirname(HERE)

# PySlowFast never registered ResNet_nopool: the same network is slow_c2d (tools/bench/bench.py).
PYSF_OVERRIDES = {"C2D_NOPOOL_8x8_R50": ["MODEL.ARCH", "slow_c2d", "MODEL.MODEL_NAME", "ResNet"]}


# Packages PySlowFast's modules import at module level but never call while they build a model and
# run an eval forward (datasets, visualisation, metrics). When one is not installed, an import of
# it (or of any of its submodules) gives a placeholder whose attributes fail when used, naming it.
STAND_INS = {"psutil", "torchvision", "cv2", "sklearn", "tqdm", "scipy", "pandas", "termcolor", "av",
             "matplotlib", "PIL"}


def install_stand_ins():
    import importlib.abc
    import importlib.machinery
    import types

    def absent(qual):
        class Meta(type):
            def __getattr__(cls, attr):  # Image.BILINEAR, torchvision.transforms.functional.X ...
                if attr.startswith("__"):
                    raise AttributeError(attr)
                return absent(f"{qual}.{attr}")

        def fail(*_a, **_k):
            raise ModuleNotFoundError(f"{qual}: {qual.split('.')[0]} is not installed "
                                      "(tools/gpu/pysf_anchor.py stands in for it at import time only)")

        return Meta(qual.rsplit(".", 1)[-1], (object,), {"__init__": fail, "__call__": fail})

    class Placeholder(types.ModuleType):
        def __getattr__(self, attr):
            if attr.startswith("__"):
                raise AttributeError(attr)
            return absent(f"{self.__name__}.{attr}")

    class Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
        def find_spec(self, fullname, path=None, target=None):
            if fullname.split(".")[0] in STAND_INS:
                return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
            return None

        def create_module(self, spec):
            m = Placeholder(spec.name)
            m.__path__ = []
            m.__version__ = "0.0"  # PIL's is parsed at import time (rand_augment.py)
            return m

        def exec_module(self, module):
            pass

    sys.meta_path.append(Finder())  # last: installed packages are found first


def emit(**kw):
    print(json.dumps(kw), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", required=True)
    ap.add_argument("--pysf", default=os.environ.get("PYSF", "/tmp/SlowFast"))
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--precisions", default="fp32,bf16,fp16")
    ap.add_argument("--seconds", type=float, default=0.5)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--min-forwards", type=int, default=3, help="timed forwards at least (after the warm-up)")
    ap.add_argument("--deadline", type=float, default=0, help="stop starting models after this many seconds")
    a = ap.parse_args()
    t_start = time.monotonic()
    sys.path.insert(0, os.path.join(TOOLS, "reference"))
    sys.path.append(os.path.join(HERE, "pyfallback"))  # last: installed PyYAML / numpy win
    install_stand_ins()
    try:
        import pysf_ref

        pysf_ref.use_pysf(a.pysf)
        import torch
        from slowfast.models import build_model
    except BaseException as e:  # SystemExit from use_pysf too
        emit(kind="fatal", error=f"PySlowFast at {a.pysf}: {type(e).__name__}: {e}")
        return 1
    if a.threads:
        torch.set_num_threads(a.threads)
    if a.device.startswith("cuda") and not torch.cuda.is_available():
        emit(kind="fatal", error=f"no CUDA device (torch {torch.__version__})")
        return 1
    # The same arithmetic as vidfeat's rows: cuDNN may pick its algorithms; TF32 as torch's default.
    torch.backends.cudnn.benchmark = True
    dtypes = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
    with open(a.models) as f:
        models = json.load(f)
    for m in models:
        name = m["name"]
        if a.deadline and time.monotonic() - t_start > a.deadline:
            emit(kind="anchor", name=name, error="skipped: the row's time budget was spent", done=True)
            continue
        try:
            cfg = pysf_ref.load_cfg(m["config"], PYSF_OVERRIDES.get(name, []))
            torch.manual_seed(0)
            net = build_model(cfg).eval()
            pysf_ref.randomize(net, torch.Generator().manual_seed(1))
            gen = torch.Generator().manual_seed(2)
        except Exception as e:
            emit(kind="anchor", name=name, error=f"build_model: {type(e).__name__}: {e}", done=True)
            continue
        for p in a.precisions.split(","):
            try:
                net = net.to(device=a.device, dtype=dtypes[p])
                inputs = [t.to(device=a.device, dtype=dtypes[p]) for t in pysf_ref.model_inputs(cfg, gen, a.batch)]
                sync = torch.cuda.synchronize if a.device.startswith("cuda") else (lambda: None)
                with torch.inference_mode():
                    net(inputs)  # warm-up
                    sync()
                    if a.device.startswith("cuda"):
                        torch.cuda.reset_peak_memory_stats()
                    n, t0 = 0, time.perf_counter()
                    while n < a.min_forwards or time.perf_counter() - t0 < a.seconds:
                        net(inputs)
                        n += 1
                    sync()
                    s = time.perf_counter() - t0
                mem = torch.cuda.max_memory_allocated() / 2**20 if a.device.startswith("cuda") else None
                emit(kind="anchor", name=name, precision=p, batch=a.batch, device=a.device, forwards=n,
                     clips_per_s=a.batch * n / s, gpu_mem_mib=mem, torch=torch.__version__)
            except Exception as e:
                emit(kind="anchor", name=name, precision=p, error=f"{type(e).__name__}: {str(e).splitlines()[0][:200]}")
            finally:
                if a.device.startswith("cuda"):
                    torch.cuda.empty_cache()
        emit(kind="anchor", name=name, done=True)
        del net
    return 0


if __name__ == "__main__":
    sys.exit(main())
