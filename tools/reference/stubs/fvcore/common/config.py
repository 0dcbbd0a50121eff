"""fvcore.common.config.CfgNode: the YAML config tree PySlowFast's defaults.py is built of.

Written for this harness to the semantics of yacs' CfgNode (which fvcore's extends), so that
PySlowFast's YAML files and KEY VALUE overrides give the config they give with the real packages:

- a node is a dict whose keys read and write as attributes (cfg.MODEL.ARCH);
- merge_from_file loads YAML (yaml.safe_load) and merges it into the defaults; merge_from_list
  merges flat ["A.B", value, ...] pairs;
- every merged string is first tried as a Python literal (ast.literal_eval), so "(2, 4, 4)" is a
  tuple, "[1, 3]" a list, "False" a bool, "1.0" a float; what does not parse stays a string;
- a merged key must already exist (KeyError "Non-existent config key: A.B"), unless its node
  allows new keys;
- a merged value must have the default's type, except list <-> tuple (converted to the
  default's type) and None on either side (KeyError / ValueError otherwise);
- "_BASE_: other.yaml" (fvcore's addition) merges that file, relative to this one, first;
- dump() is yaml.safe_dump of the plain-dict tree (what PySlowFast stores as a checkpoint's
  "cfg"), clone() a deep copy, freeze()/defrost() make the tree read-only / writable again.
"""
import ast
import copy
import os

import yaml

_BASE_KEY = "_BASE_"


class CfgNode(dict):
    def __init__(self, init_dict=None, key_list=None, new_allowed=False):
        super().__init__()
        self.__dict__["_frozen"] = False
        self.__dict__["_new_allowed"] = new_allowed
        for k, v in (init_dict or {}).items():
            if isinstance(v, dict) and not isinstance(v, CfgNode):
                v = CfgNode(v, (key_list or []) + [k], new_allowed)
            dict.__setitem__(self, k, v)

    # attribute access --------------------------------------------------------------------------
    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name, value):
        if self.__dict__.get("_frozen"):
            raise AttributeError("Attempted to set %s to %r, but the CfgNode is frozen" % (name, value))
        self[name] = value

    # state ---------------------------------------------------------------------------------------
    def freeze(self):
        self._set_frozen(True)

    def defrost(self):
        self._set_frozen(False)

    def is_frozen(self):
        return self.__dict__["_frozen"]

    def _set_frozen(self, frozen):
        self.__dict__["_frozen"] = frozen
        for v in self.values():
            if isinstance(v, CfgNode):
                v._set_frozen(frozen)

    def is_new_allowed(self):
        return self.__dict__["_new_allowed"]

    def set_new_allowed(self, allowed):
        self.__dict__["_new_allowed"] = allowed
        for v in self.values():
            if isinstance(v, CfgNode):
                v.set_new_allowed(allowed)

    def clone(self):
        return copy.deepcopy(self)

    # merging -------------------------------------------------------------------------------------
    @classmethod
    def load_yaml_with_base(cls, filename, allow_unsafe=False):
        with open(filename, "r") as f:
            loaded = yaml.safe_load(f) or {}
        base = loaded.pop(_BASE_KEY, None) if isinstance(loaded, dict) else None
        if base is None:
            return loaded
        if not os.path.isabs(base):
            base = os.path.join(os.path.dirname(filename), base)
        merged = cls.load_yaml_with_base(base, allow_unsafe)

        def merge_dicts(into, other):
            for k, v in other.items():
                if isinstance(v, dict) and isinstance(into.get(k), dict):
                    merge_dicts(into[k], v)
                else:
                    into[k] = v

        merge_dicts(merged, loaded)
        return merged

    def merge_from_file(self, cfg_filename, allow_unsafe=True):
        self.merge_from_other_cfg(type(self)(self.load_yaml_with_base(cfg_filename, allow_unsafe)))

    def merge_from_other_cfg(self, cfg_other):
        self._check_writable()
        _merge_into(cfg_other, self, [])

    def merge_from_list(self, cfg_list):
        if len(cfg_list) % 2:
            raise ValueError("Override list has odd length: %r; it must be KEY VALUE pairs" % (cfg_list,))
        self._check_writable()
        for full_key, raw in zip(cfg_list[0::2], cfg_list[1::2]):
            node = self
            parts = full_key.split(".")
            for part in parts[:-1]:
                if part not in node:
                    raise KeyError("Non-existent key: %s" % full_key)
                node = node[part]
            last = parts[-1]
            if last not in node:
                raise KeyError("Non-existent key: %s" % full_key)
            value = _coerce(_decode(raw), node[last], full_key)
            setattr(node, last, value)

    def _check_writable(self):
        if self.is_frozen():
            raise AttributeError("Cannot merge into a frozen CfgNode")

    # output --------------------------------------------------------------------------------------
    def dump(self, **kwargs):
        def plain(v):
            return {k: plain(x) for k, x in v.items()} if isinstance(v, CfgNode) else v

        return yaml.safe_dump(plain(self), **kwargs)

    def __str__(self):
        return self.dump()

    def __repr__(self):
        return "%s(%s)" % (type(self).__name__, dict.__repr__(self))


def _decode(value):
    """A merged value as yacs sees it: dicts become nodes, strings are tried as Python literals."""
    if isinstance(value, dict):
        return CfgNode(value)
    if not isinstance(value, str):
        return value
    try:
        return ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return value


def _coerce(replacement, original, full_key):
    if type(replacement) is type(original) or replacement is None or original is None:
        return replacement
    if isinstance(original, list) and type(replacement) is tuple:
        return list(replacement)
    if isinstance(original, tuple) and type(replacement) is list:
        return tuple(replacement)
    raise ValueError("Type mismatch (%s vs. %s) with values (%r vs. %r) for config key: %s"
                     % (type(original), type(replacement), original, replacement, full_key))


def _merge_into(src, dst, key_list):
    for k, raw in src.items():
        full_key = ".".join(key_list + [k])
        value = _decode(copy.deepcopy(raw))
        if k in dst:
            value = _coerce(value, dst[k], full_key)
            if isinstance(value, CfgNode):
                _merge_into(value, dst[k], key_list + [k])
            else:
                dict.__setitem__(dst, k, value)
        elif dst.is_new_allowed():
            dict.__setitem__(dst, k, value)
        else:
            raise KeyError("Non-existent config key: %s" % full_key)
