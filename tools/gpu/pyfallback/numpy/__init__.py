"""A stand-in for the few numpy functions PySlowFast's model code calls while it builds and runs
the models of `vidfeat models`, for nodes whose Python has torch and nothing else.

tools/gpu/pysf_anchor.py appends this folder to the END of sys.path, so an installed numpy always
wins. prod() is what slowfast/models/attention.py calls (MViT's pooling shapes); anything else
raises NotImplementedError naming the function (a model that needs more fails clearly, in its own
cell). Ours, not numpy's code.
"""
import math

__version__ = "0-stand-in"
float32 = "float32"
float64 = float_ = "float64"
int64 = "int64"
newaxis = None


def prod(a, axis=None, dtype=None):
    if axis is not None:
        raise NotImplementedError("numpy stand-in (tools/gpu/pyfallback): prod with axis")
    if hasattr(a, "tolist"):
        a = a.tolist()
    if isinstance(a, (int, float)):
        return a
    flat = []

    def walk(x):
        for y in x:
            walk(y) if isinstance(y, (list, tuple)) else flat.append(y)

    walk(a)
    return math.prod(flat)


def __getattr__(name):
    if name.startswith("__"):
        raise AttributeError(name)

    def missing(*_a, **_k):
        raise NotImplementedError(f"numpy.{name}: the numpy stand-in of tools/gpu/pyfallback has only prod(); "
                                  "install numpy for this model")

    return missing
