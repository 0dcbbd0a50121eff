"""A stand-in for PyYAML's safe_load / safe_dump, for nodes whose Python has torch and nothing else.

tools/gpu/pysf_anchor.py appends this folder to the END of sys.path, so an installed PyYAML always
wins. It reads the block-style YAML that PySlowFast's and vidfeat's model configs use: nested
mappings by indentation, `- item` sequences, flow sequences / mappings (`[[1, 2.0], [3, 2.0]]`,
`{a: 1}`), quoted strings, comments; plain scalars resolve as PyYAML's YAML 1.1 resolver does
(`1e-4` stays a string there, `1.0e-4` is a float, `True`/`off` are booleans, `~` / `null` are
None). Anchors, tags, multi-line strings and multiple documents are refused (YAMLError).
Ours, not PyYAML's code.
"""
import re

__all__ = ["safe_load", "safe_dump", "YAMLError"]


class YAMLError(Exception):
    pass


_BOOL = re.compile(r"^(?:yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$")
_TRUE = {"yes", "true", "on"}
_NULL = re.compile(r"^(?:~|null|Null|NULL|)$")
_INT = re.compile(r"^[-+]?(?:0|[1-9][0-9_]*)$")
_HEX = re.compile(r"^[-+]?0x[0-9a-fA-F_]+$")
_FLOAT = re.compile(r"^[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?$|^[-+]?\.[0-9_]+(?:[eE][-+][0-9]+)?$")
_INF = re.compile(r"^[-+]?\.(?:inf|Inf|INF)$")
_NAN = re.compile(r"^\.(?:nan|NaN|NAN)$")


def _scalar(text, where):
    t = text.strip()
    if not t:
        return None
    if t[0] in "&*!|>":
        raise YAMLError(f"{where}: anchors, tags and block scalars are not supported by this stand-in: {t!r}")
    if t[0] in "'\"":
        return _quoted(t, where)
    if _NULL.match(t):
        return None
    if _BOOL.match(t):
        return t.lower() in _TRUE
    if _INT.match(t):
        return int(t.replace("_", ""))
    if _HEX.match(t):
        return int(t.replace("_", ""), 16)
    if _FLOAT.match(t):
        return float(t.replace("_", ""))
    if _INF.match(t):
        return float("-inf") if t.startswith("-") else float("inf")
    if _NAN.match(t):
        return float("nan")
    return t


def _quoted(t, where):
    q = t[0]
    if len(t) < 2 or t[-1] != q:
        raise YAMLError(f"{where}: unterminated string {t!r}")
    body = t[1:-1]
    if q == "'":
        return body.replace("''", "'")
    return body.encode("latin-1", "backslashreplace").decode("unicode_escape") if "\\" in body else body


def _strip_comment(line):
    """The line without a trailing `# comment` (outside quotes)."""
    quote = None
    for i, c in enumerate(line):
        if quote:
            if c == quote:
                quote = None
        elif c in "'\"":
            quote = c
        elif c == "#" and (i == 0 or line[i - 1] in " \t"):
            return line[:i].rstrip()
    return line.rstrip()


class _Flow:
    """Parser of one flow collection ([...] / {...})."""

    def __init__(self, text, where):
        self.s, self.i, self.where = text, 0, where

    def parse(self):
        v = self.value()
        self.ws()
        if self.i != len(self.s):
            raise YAMLError(f"{self.where}: unexpected {self.s[self.i:]!r}")
        return v

    def ws(self):
        while self.i < len(self.s) and self.s[self.i] in " \t":
            self.i += 1

    def value(self):
        self.ws()
        c = self.s[self.i:self.i + 1]
        if c == "[":
            self.i += 1
            out = []
            while True:
                self.ws()
                if self.s[self.i:self.i + 1] == "]":
                    self.i += 1
                    return out
                out.append(self.value())
                self.ws()
                c = self.s[self.i:self.i + 1]
                self.i += 1
                if c == "]":
                    return out
                if c != ",":
                    raise YAMLError(f"{self.where}: expected , or ] in {self.s!r}")
        if c == "{":
            self.i += 1
            out = {}
            while True:
                self.ws()
                if self.s[self.i:self.i + 1] == "}":
                    self.i += 1
                    return out
                key = self.atom(":")
                self.ws()
                if self.s[self.i:self.i + 1] != ":":
                    raise YAMLError(f"{self.where}: expected : in {self.s!r}")
                self.i += 1
                out[key] = self.value()
                self.ws()
                c = self.s[self.i:self.i + 1]
                self.i += 1
                if c == "}":
                    return out
                if c != ",":
                    raise YAMLError(f"{self.where}: expected , or }} in {self.s!r}")
        return self.atom("")

    def atom(self, extra_stop):
        self.ws()
        start = self.i
        if self.s[self.i:self.i + 1] in ("'", '"'):
            q = self.s[self.i]
            self.i += 1
            while self.i < len(self.s):
                if self.s[self.i] == "\\" and q == '"':
                    self.i += 2
                elif self.s[self.i] == q and q == "'" and self.s[self.i + 1:self.i + 2] == "'":
                    self.i += 2
                elif self.s[self.i] == q:
                    break
                else:
                    self.i += 1
            self.i += 1
            return _quoted(self.s[start:self.i], self.where)
        while self.i < len(self.s) and self.s[self.i] not in ",]}" + extra_stop:
            self.i += 1
        return _scalar(self.s[start:self.i], self.where)


def _value(text, where):
    t = text.strip()
    if t[:1] in ("[", "{"):
        return _Flow(t, where).parse()
    return _scalar(t, where)


def _depth(text):
    """Open [ / { minus closed ones, outside quotes."""
    depth, quote = 0, None
    for c in text:
        if quote:
            if c == quote:
                quote = None
        elif c in "'\"":
            quote = c
        elif c in "[{":
            depth += 1
        elif c in "]}":
            depth -= 1
    return depth


def _split_key(content, where):
    """`key: value` -> (key, value text) or None when the line is not a mapping entry."""
    if content[:1] in ("'", '"'):
        end = content.find(content[0], 1)
        rest = content[end + 1:]
        if end > 0 and (rest.startswith(": ") or rest == ":"):
            return _quoted(content[:end + 1], where), rest[1:]
        return None
    m = re.match(r"^([^\s:#\[\]{},][^:#]*?|[^:]+?)\s*:(?:\s+(.*)|$)", content)
    if not m:
        return None
    return _scalar(m.group(1), where), m.group(2) or ""


def safe_load(stream):
    text = stream.read() if hasattr(stream, "read") else stream
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    lines = []
    for n, raw in enumerate(text.splitlines(), 1):
        if raw.strip() in ("---", "...") and not lines:
            continue
        if raw.strip() in ("---", "..."):
            raise YAMLError(f"line {n}: more than one document is not supported by this stand-in")
        if "\t" in raw[:len(raw) - len(raw.lstrip())]:
            raise YAMLError(f"line {n}: tab in indentation")
        s = _strip_comment(raw)
        if not s.strip():
            continue
        if lines and lines[-1][3] > 0:  # inside a flow collection that spans lines
            ind, content, n0, _ = lines[-1]
            content += " " + s.strip()
            lines[-1] = (ind, content, n0, _depth(content))
            continue
        lines.append((len(s) - len(s.lstrip(" ")), s.strip(), n, _depth(s)))
    if lines and lines[-1][3] > 0:
        raise YAMLError(f"line {lines[-1][2]}: unclosed [ or {{")
    lines = [x[:3] for x in lines]
    if not lines:
        return None
    pos = [0]

    def block(indent):
        ind, content, n = lines[pos[0]]
        if content.startswith("- ") or content == "-":
            out = []
            while pos[0] < len(lines) and lines[pos[0]][0] == ind and (
                    lines[pos[0]][1].startswith("- ") or lines[pos[0]][1] == "-"):
                _, content, n = lines[pos[0]]
                rest = content[1:].strip()
                pos[0] += 1
                if not rest:
                    out.append(block_after(ind))
                elif _split_key(rest, f"line {n}") and rest[:1] not in "[{":
                    # "- key: value" starts a mapping indented past the dash
                    lines.insert(pos[0], (ind + 2, rest, n))
                    out.append(block(ind + 2))
                else:
                    out.append(_value(rest, f"line {n}"))
            return out
        out = {}
        while pos[0] < len(lines) and lines[pos[0]][0] == ind:
            _, content, n = lines[pos[0]]
            kv = _split_key(content, f"line {n}")
            if kv is None:
                raise YAMLError(f"line {n}: expected `key: value`, got {content!r}")
            key, rest = kv
            pos[0] += 1
            out[key] = block_after(ind) if not rest.strip() else _value(rest, f"line {n}")
        if pos[0] < len(lines) and lines[pos[0]][0] > ind:
            raise YAMLError(f"line {lines[pos[0]][2]}: unexpected indentation")
        return out

    def block_after(ind):
        """The nested block of a `key:` / `-` with nothing after it (None when there is none)."""
        if pos[0] < len(lines) and (lines[pos[0]][0] > ind or (
                lines[pos[0]][0] == ind and lines[pos[0]][1].startswith("- "))):
            return block(lines[pos[0]][0])
        return None

    v = block(lines[0][0])
    if pos[0] != len(lines):
        raise YAMLError(f"line {lines[pos[0]][2]}: unexpected content")
    return v


load = safe_load


def _dump_scalar(v):
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    s = str(v)
    if _scalar(s, "") != s or s != s.strip() or any(c in s for c in ":#[]{},'\"") or not s:
        return "'" + s.replace("'", "''") + "'"
    return s


def _dump_flow(v):
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_dump_flow(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_dump_scalar(k)}: {_dump_flow(x)}" for k, x in v.items()) + "}"
    return _dump_scalar(v)


def safe_dump(data, stream=None, **_kwargs):
    out = []

    def emit(v, indent):
        for k in sorted(v) if isinstance(v, dict) else []:
            x = v[k]
            if isinstance(x, dict) and x:
                out.append(" " * indent + f"{_dump_scalar(k)}:")
                emit(x, indent + 2)
            else:
                out.append(" " * indent + f"{_dump_scalar(k)}: {_dump_flow(x)}")

    if isinstance(data, dict):
        emit(data, 0)
    else:
        out.append(_dump_flow(data))
    text = "\n".join(out) + "\n"
    if stream is not None:
        stream.write(text)
        return None
    return text


dump = safe_dump
