"""Placeholders for names PySlowFast imports at module level but never uses when it builds a model
and runs an eval forward on CPU (detection heads, synchronised BN, FLOP counting, losses).

absent("detectron2.layers.ROIAlign") is a class whose construction (or a function whose call)
fails with an error naming the missing package, so a config that really needs one says so instead
of silently running something else.
"""


class MissingDependency(RuntimeError):
    pass


def _fail(qualname):
    raise MissingDependency(
        "%s is not available: tools/reference/stubs only stands in for it at import time "
        "(PySlowFast's model building on CPU never calls it). Install the real package to use "
        "a config that needs it." % qualname)


def absent_class(qualname):
    def __init__(self, *args, **kwargs):
        _fail(qualname)

    return type(qualname.rsplit(".", 1)[-1], (object,), {"__init__": __init__, "__doc__": "absent: " + qualname})


def absent_function(qualname):
    def function(*args, **kwargs):
        _fail(qualname)

    function.__name__ = qualname.rsplit(".", 1)[-1]
    function.__doc__ = "absent: " + qualname
    return function
