"""simplejson stand-in (PySlowFast's logging imports it): the standard library's json. Appended
last to sys.path by tools/gpu/pysf_anchor.py, so an installed simplejson wins."""
from json import *  # noqa: F401,F403
from json import dumps, loads  # noqa: F401
