"""What a person sees on stderr from `vidfeat extract`, on a terminal and off one.

  test_terminal.py MODE VIDFEAT SOURCE_DIR CORPUS_DIR        MODE: pty | pipe

A few generated corpus videos (tests/support/make_corpus.py) and one file that is not a video
(text.mp4, kind `bad` in corpus.tsv: it fails, so an error line arrives while the status is shown),
extracted with a tiny SLOW model (random weights).

pty:  vidfeat runs under a pseudo-terminal (Python's pty module, TERM=xterm, a set window width);
      the bytes it writes are checked raw and as a small terminal emulator renders them (\\r, \\n,
      erase-line, colours): every log line starts at column 0 (at the start of the output, after a
      line break or after the erase-line sequence that removes the status line), no log line shares
      a screen line with the status, each status draw fits the window, the last status shows N/N
      and stays, no per-video line without -v and one per video with -v; NO_COLOR=1 drops the colours
      but keeps the live line; Ctrl-C's stop message starts at column 0 too; TERM=dumb and a 2-rank
      mpirun (the ranks' stderr is a pipe to mpirun) give plain lines, no escape sequence.
pipe: stderr is a pipe: plain lines, each starting with its rank ("[rank 0] ", "[rank 1] " under
      mpirun -n 2), no escape sequence or carriage return, the final "progress: N/N videos", with
      VIDFEAT_PROGRESS_INTERVAL=0.2 progress lines at least 0.2 s apart (their timestamps), -q
      prints nothing on success and only error lines when a video fails, -v one line per video.
"""
import fcntl
import os
import pty
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import termios
from datetime import datetime

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import vftest  # noqa: E402
from vftest import MPI_ENV, TINY, check, stem  # noqa: E402

MODE, VIDFEAT, SRC, CORPUS = sys.argv[1:5]
vftest.use_corpus(CORPUS)
CONFIG = os.path.join(SRC, "configs/Kinetics/SLOW_8x8_R50.yaml")
GOOD = ["bframes.mov", "tiny_1x1.mp4", "anim.gif", "rot90.mov", "vidéo_ü.mp4"]
BAD = "text.mp4"
for name in GOOD + [BAD]:
    want = "bad" if name == BAD else "good"
    if vftest.corpus_row(name)["kind"] != want:
        sys.exit(f"corpus.tsv: {name} is not of kind {want}")

# A log line's start as the pattern makes it: "[2026-12-01 21:53:09.035] [info] ".
STAMP = re.compile(r"\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3})\] \[(trace|debug|info|warning|error|critical)\] ")
SGR = r"(?:\x1b\[[0-9;]*m)*"  # colour sequences around the level name on a terminal
STAMP_RAW = re.compile(r"\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}\] \[" + SGR + r"[a-z]+" + SGR + r"\] ")
STATUS = re.compile(r"(\d+)/(\d+) videos")  # the start of a live status line
PER_VIDEO = re.compile(r"\] (\S+): \d+ frames, \d+ segments$")  # extraction's line per video
CLEAR = "\r\x1b[K"


# Each good video four times under four ids (r0/rot90, ...), so the run has a few rounds of the
# status; the bad one once.
VIDEOS = [(f"r{k}/{stem(n)}", n) for k in range(4) for n in GOOD]
IDS = sorted(i for i, _ in VIDEOS)
WITH_BAD = VIDEOS + [(stem(BAD), BAD)]


def extract_cmd(tmp, out, videos, *extra, ranks=0):
    rows = [(i, vftest.corpus_video(n)) for i, n in videos]
    m = vftest.write_manifest(tmp, rows, name=out + ".csv")
    cmd = [VIDFEAT, "extract", "--config", CONFIG, "--random-weights", "1", "--manifest", m, "--output",
           os.path.join(tmp, out + ".h5"), "--threads", "1"] + TINY + list(extra)
    if ranks:
        cmd = ["mpirun", "-n", str(ranks), "--oversubscribe"] + cmd
    return cmd


def run_pty(cmd, env, columns, interrupt=None):
    """Runs cmd with stdin/stdout/stderr on a new pseudo-terminal `columns` wide; (rc, text).
    interrupt(text so far) -> True: SIGINT to the child, once (as Ctrl-C would)."""
    pid, fd = pty.fork()
    if pid == 0:
        try:
            os.execvpe(cmd[0], cmd, env)
        finally:
            os._exit(127)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    data = b""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the child side is closed
            break
        if not chunk:
            break
        data += chunk
        if interrupt is not None and interrupt(data.decode("utf-8", "replace")):
            os.kill(pid, signal.SIGINT)
            interrupt = None
    os.close(fd)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), data.decode("utf-8", "replace")


def render(text):
    """The screen lines a terminal shows for `text` (scrollback included): \\r to column 0, \\n to
    a new line, ESC[K erases to the end of the line, ESC[...m (colours) shows nothing. Any other
    escape sequence is returned in the second list."""
    lines, cur, col, unknown, i = [], [], 0, [], 0
    while i < len(text):
        c = text[i]
        if c == "\x1b":
            m = re.match(r"\x1b\[([0-9;]*)([A-Za-z])", text[i:])
            if m and m.group(2) == "K" and m.group(1) in ("", "0"):
                del cur[col:]
            elif not (m and m.group(2) == "m"):
                unknown.append(text[i:i + 8])
            i += len(m.group(0)) if m else 1
            continue
        if c == "\r":
            col = 0
        elif c == "\n":
            lines.append("".join(cur))
            cur, col = [], 0
        else:
            if col < len(cur):
                cur[col] = c
            else:
                cur.extend(" " * (col - len(cur)) + c)
            col += 1
        i += 1
    if cur:
        lines.append("".join(cur))
    return lines, unknown


def status_draws(text):
    """The texts drawn as status lines: what follows each erase-line up to the next \\r or \\n,
    when it reads as a status."""
    draws = []
    for part in text.split(CLEAR)[1:]:
        s = re.split(r"[\r\n]", part, maxsplit=1)[0]
        if STATUS.match(s):
            draws.append(s)
    return draws


def check_live(what, rc, text, columns, n_total, n_failed, verbose):
    check(rc == (3 if n_failed else 0), f"{what}: exit code {rc}")
    # Raw bytes: a log line begins at the start, after a line break or after the erase-line.
    starts = [m.start() for m in STAMP_RAW.finditer(text)]
    check(len(starts) > 3, f"{what}: log lines are printed ({len(starts)})")
    bad = [text[max(0, s - 40):s + 30] for s in starts
           if not (s == 0 or text[s - 1] == "\n" or text.endswith(CLEAR, 0, s))]
    check(not bad, f"{what}: every log line starts at column 0 after a line break or the clear sequence {bad[:2]}")
    above = sum(text.endswith(CLEAR, 0, s) for s in starts)
    check(above >= 1 or not (verbose or n_failed), f"{what}: log lines arrive while the status is shown ({above}), each after the clear sequence")
    lines, unknown = render(text)
    check(not unknown, f"{what}: only erase-line and colour sequences {unknown[:3]}")
    logged = [l for l in lines if STAMP.search(l)]
    glued = [l for l in logged if not STAMP.match(l) or STATUS.search(l)]
    check(not glued, f"{what}: on the screen no log line shares a line with anything else {glued[:2]}")
    check(all(not l.startswith("[rank") for l in logged), f"{what}: no rank prefix on a single-process terminal")
    draws = status_draws(text)
    counts = [int(STATUS.match(d).group(1)) for d in draws]
    check(len(draws) >= 2 and counts == sorted(counts), f"{what}: the status is redrawn, its count rising {counts}")
    too_wide = [d for d in draws if len(d) > columns - 1]
    check(not too_wide, f"{what}: every status draw fits {columns} columns less one {too_wide[:1]}")
    shown = [l for l in lines if STATUS.match(l)]
    check(len(shown) == 1 and shown[0].startswith(f"{n_total}/{n_total} videos"),
          f"{what}: one status line stays on the screen, at N/N: {shown}")
    if n_failed and shown:
        check(f"{n_failed} failed" in shown[-1] or columns < 80, f"{what}: the last status counts the failure")
        failed_line = [l for l in logged if f"video {stem(BAD)} failed" in l]
        check(len(failed_line) == 1 and "[error]" in failed_line[0],
              f"{what}: the failed video's error line, whole, on its own line")
    per_video = [PER_VIDEO.search(l).group(1) for l in logged if PER_VIDEO.search(l)]
    if verbose:
        check(sorted(per_video) == IDS, f"{what}: -v prints one line per video {sorted(per_video)}")
    else:
        check(not per_video, f"{what}: no per-video line without -v {per_video[:3]}")
    return lines


def mode_pty(tmp):
    env = dict(MPI_ENV, TERM="xterm")
    env.pop("NO_COLOR", None)
    rc, text = run_pty(extract_cmd(tmp, "a", WITH_BAD), env, 100)
    lines = check_live("terminal, 100 columns", rc, text, 100, len(WITH_BAD), 1, verbose=False)
    check("\x1b[32m" in text and "\x1b[31m" in text, "terminal: the level names are coloured")
    check(lines[-1] == "" or not STATUS.match(lines[-1]), "terminal: the output ends below the status line")
    print(f"terminal run: {len(text)} bytes, {text.count(chr(10))} lines, {len(status_draws(text))} status draws")

    rc, text = run_pty(extract_cmd(tmp, "b", WITH_BAD, "-v"), env, 40)
    check_live("terminal -v, 40 columns", rc, text, 40, len(WITH_BAD), 1, verbose=True)

    rc, text = run_pty(extract_cmd(tmp, "c", VIDEOS, "--verbose"), dict(env, NO_COLOR="1"), 100)
    check_live("terminal --verbose, NO_COLOR=1", rc, text, 100, len(VIDEOS), 0, verbose=True)
    check(re.search(r"\x1b\[[0-9;]*m", text) is None, "NO_COLOR=1: no colour sequence")

    # Ctrl-C once a video is done (two 60 s videos first, longest first): the signal handler's
    # message, written past the sink, starts at column 0 too; exit code 75; the status stays.
    videos = [("long/a", "long_60s.mp4"), ("long/b", "long_60s.mp4")] + VIDEOS
    rc, text = run_pty(extract_cmd(tmp, "f", videos), env, 100,
                       interrupt=lambda t: any(int(STATUS.match(d).group(1)) >= 1 for d in status_draws(t)))
    check(rc == 75, f"Ctrl-C on a terminal: exit code {rc} (75: interrupted)")
    starts = [m.start() for m in STAMP_RAW.finditer(text)] + [m.start() for m in re.finditer("vidfeat: SIGINT", text)]
    bad = [text[max(0, s - 40):s + 30] for s in starts
           if not (s == 0 or text[s - 1] == "\n" or text.endswith(CLEAR, 0, s))]
    check(not bad, f"Ctrl-C on a terminal: every line starts at column 0 {bad[:2]}")
    lines, _ = render(text)
    stop = [l for l in lines if "SIGINT: stopping" in l]
    check(len(stop) == 1 and stop[0].startswith("vidfeat: SIGINT: stopping"),
          f"Ctrl-C on a terminal: the stop message on its own line {stop}")
    shown = [l for l in lines if STATUS.match(l)]
    check(len(shown) == 1 and int(STATUS.match(shown[0]).group(1)) < len(videos),
          f"Ctrl-C on a terminal: one status line stays, short of the total {shown}")
    check(not [l for l in lines if STATUS.search(l) and (STAMP.search(l) or "vidfeat:" in l)],
          "Ctrl-C on a terminal: no line holds both the status and a message")

    for what, cmd, e in [("TERM=dumb", extract_cmd(tmp, "d", VIDEOS), dict(env, TERM="dumb")),
                         ("mpirun -n 2 on a terminal", extract_cmd(tmp, "e", VIDEOS, ranks=2), env)]:
        rc, text = run_pty(cmd, e, 100)
        check(rc == 0, f"{what}: exit code {rc}")
        check("\x1b" not in text, f"{what}: no escape sequence at all")
        lines = [l for l in text.replace("\r\n", "\n").split("\n") if l]
        check("\r" not in "\n".join(lines), f"{what}: no carriage return but the terminal's own line ends")
        check(lines and all(re.match(r"\[rank [01]\] ", l) for l in lines),
              f"{what}: plain lines, each with its rank {[l for l in lines if not l.startswith('[rank')][:2]}")
        check(any(f"progress: {len(VIDEOS)}/{len(VIDEOS)} videos (0 failed)" in l for l in lines),
              f"{what}: the final progress line")


def run_pipe(cmd, env=None):
    r = subprocess.run(cmd, env=env or MPI_ENV, capture_output=True)
    return r.returncode, r.stdout.decode("utf-8", "replace"), r.stderr.decode("utf-8", "replace")


def check_plain(what, err, ranks=(0,)):
    check("\x1b" not in err and "\r" not in err, f"{what}: no escape sequence, no carriage return")
    lines = [l for l in err.split("\n") if l]
    unprefixed = [l for l in lines if not re.match(r"\[rank \d+\] ", l)]
    check(lines and not unprefixed, f"{what}: every line starts with its rank {unprefixed[:2]}")
    seen = sorted({int(re.match(r"\[rank (\d+)\]", l).group(1)) for l in lines if l not in unprefixed})
    check(seen == list(ranks), f"{what}: lines of ranks {seen}")
    return lines


def mode_pipe(tmp):
    rc, out, err = run_pipe(extract_cmd(tmp, "a", WITH_BAD), dict(MPI_ENV, VIDFEAT_PROGRESS_INTERVAL="0.2"))
    check(rc == 3, f"pipe: exit code {rc} (one video failed)")
    lines = check_plain("pipe", err)
    progress = [l for l in lines if "] progress: " in l]
    check(progress and f"progress: {len(WITH_BAD)}/{len(WITH_BAD)} videos (1 failed)" in progress[-1],
          f"pipe: the final progress line {progress[-1:]}")
    times = [datetime.strptime(STAMP.search(l).group(1), "%Y-%m-%d %H:%M:%S.%f") for l in progress]
    gaps = [(b - a).total_seconds() for a, b in zip(times, times[1:-1])]  # the final line comes when done
    check(all(g >= 0.2 - 0.001 for g in gaps), f"pipe: progress lines at least 0.2 s apart {gaps}")
    start = [datetime.strptime(STAMP.search(l).group(1), "%Y-%m-%d %H:%M:%S.%f") for l in lines if "to extract" in l]
    span = (times[-1] - start[0]).total_seconds() if start and times else 0.0
    if span >= 1.5:  # rounds come between forward passes (a fraction of a second each here)
        check(len(progress) >= 2, f"pipe: a run of {span:.1f} s prints progress before the end ({len(progress)})")
    check(not [l for l in lines if PER_VIDEO.search(l)], "pipe: no per-video line without -v")
    print(f"pipe run: {len(lines)} lines, {len(progress)} progress lines over {span:.1f} s")

    rc, out, err = run_pipe(extract_cmd(tmp, "b", VIDEOS, "-q"))
    check(rc == 0 and out == "" and err == "", f"pipe -q: nothing printed on success (rc {rc}, {err[:200]!r})")
    rc, out, err = run_pipe(extract_cmd(tmp, "c", WITH_BAD, "--quiet"))
    lines = check_plain("pipe --quiet, a failure", err)
    check(rc == 3 and all("] [error] " in l for l in lines if STAMP.search(l)) and f"video {stem(BAD)} failed" in err,
          f"pipe --quiet: only error lines, the failed video named (rc {rc})")

    rc, out, err = run_pipe(extract_cmd(tmp, "d", VIDEOS, "-v"))
    lines = check_plain("pipe -v", err)
    per_video = sorted(PER_VIDEO.search(l).group(1) for l in lines if PER_VIDEO.search(l))
    check(rc == 0 and per_video == IDS, f"pipe -v: one line per video {per_video}")

    rc, out, err = run_pipe(extract_cmd(tmp, "e", VIDEOS, "-v", ranks=2))
    lines = check_plain("mpirun -n 2 -v", err, ranks=(0, 1))
    per_video = sorted(PER_VIDEO.search(l).group(1) for l in lines if PER_VIDEO.search(l))
    check(rc == 0 and per_video == IDS, f"mpirun -n 2 -v: one line per video {per_video}")
    check(sum("] progress: " in l for l in lines) >= 1 and all(l.startswith("[rank 0]") for l in lines if "] progress: " in l),
          "mpirun -n 2: progress comes from rank 0 only")


tmp = tempfile.mkdtemp(prefix="vidfeat-terminal-")
try:
    {"pty": mode_pty, "pipe": mode_pipe}[MODE](tmp)
finally:
    shutil.rmtree(tmp, ignore_errors=True)
print(f"{len(vftest.failures)} failed")
sys.exit(1 if vftest.failures else 0)
