"""The README's usage block names every option that every command's --help lists.

  test_readme_options.py VIDFEAT SOURCE_DIR

Reads `vidfeat --help` (its command list and the options of every command) and `vidfeat COMMAND
--help` for each command (the lines of Boost's option table: two spaces, then `-x [ --name ]` or
`--name`), and the code block under "## Using it" in SOURCE_DIR/README.md. Each command must have a
line there (`vidfeat COMMAND ...`, with its indented continuation lines), and each of its options
(but --help) must stand in those lines by its long or short name, as a whole word (`--wave` is not
found in `--wave-seconds`); the options of every command must stand in the block's
`vidfeat COMMAND ...` line. An option the synopsis takes positionally (its name in capitals there:
`--file` of `vidfeat inspect FILE`, `--part` of `vidfeat merge PART...`) may be given as the
positional argument instead.
"""
import os
import re
import subprocess
import sys

VIDFEAT, SRC = sys.argv[1:3]
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def help_text(*args):
    r = subprocess.run([VIDFEAT, *args, "--help"], capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        sys.exit(f"vidfeat {' '.join(args)} --help exited {r.returncode}: {r.stderr[-500:]}")
    return r.stdout + r.stderr


def options(text):
    """[(names, line)] of every option line of a help text (a line of two spaces, then '-')."""
    out = []
    for line in text.splitlines():
        if re.match(r"^  -", line):
            spec = re.split(r"\s{2,}", line.strip())[0]  # the option column, before the description
            names = re.findall(r"(?<![\w-])(--?[A-Za-z][\w-]*)", spec)
            if names and "--help" not in names:
                out.append((names, line.strip()))
    return out


def mentioned(name, text):
    return re.search(r"(?<![\w-])" + re.escape(name) + r"(?![\w-])", text) is not None


# ---- the README's usage block ----
readme = open(os.path.join(SRC, "README.md"), encoding="utf-8").read()
m = re.search(r"^## Using it\n.*?^```\n(.*?)^```", readme, re.S | re.M)
check(m is not None, "README.md has a code block under '## Using it'")
block = m.group(1) if m else ""


def usage_lines(command):
    """The block's lines for one command: `vidfeat COMMAND ...` and the indented lines after it."""
    lines, inside = [], False
    for line in block.splitlines():
        if line.startswith("vidfeat "):
            inside = line.split()[1] == command
        elif not line.startswith(" "):
            inside = False
        if inside:
            lines.append(line)
    return "\n".join(lines)


# ---- vidfeat --help: the commands and the options of every command ----
top = help_text()
commands = re.findall(r"^  ([a-z]+)\s{2,}\S", top.split("commands:", 1)[-1].split("\n\n", 1)[0], re.M)
check(len(commands) >= 7, f"`vidfeat --help` lists the commands ({', '.join(commands)})")
every = options(top.split("commands:", 1)[-1])
everywhere = usage_lines("COMMAND")
check(bool(everywhere), "the block has a `vidfeat COMMAND ...` line for the options of every command")
for names, line in every:
    check(any(mentioned(n, everywhere) for n in names),
          f"every command's {'/'.join(names)} is in the `vidfeat COMMAND ...` line ({line})")

# ---- each command's --help ----
total = 0
for command in commands:
    text = help_text(command)
    synopsis = text.strip().splitlines()[0]
    mine = usage_lines(command)
    check(bool(mine), f"the block has a `vidfeat {command} ...` line")
    opts = options(text)
    check(re.search(r"^  -h \[ --help \]", text, re.M) is not None,
          f"`vidfeat {command} --help` prints its option table ({len(opts)} options besides --help)")
    for names, line in opts:
        total += 1
        longest = max(names, key=len)
        positional = mentioned(longest.lstrip("-").upper(), synopsis)
        check(any(mentioned(n, mine) for n in names) or positional,
              f"{command} {'/'.join(names)} is in the README's usage block"
              + (" (positional in the synopsis)" if positional and not any(mentioned(n, mine) for n in names) else "")
              + ("" if any(mentioned(n, mine) for n in names) or positional else f": add it ({line})"))
print(f"{total} options of {len(commands)} commands; {len(failures)} failed")
sys.exit(1 if failures else 0)
