"""Every `vidfeat` command parses its options through one helper (src/cli/options.h): checked from
outside, command by command, with the messages a user sees.

  test_options.py VIDFEAT SOURCE_DIR CORPUS_DIR

- `vidfeat CMD --help` exits 0 and prints the command's caption and its options (--help among them);
- an unknown option exits 1 with "vidfeat CMD: ..." naming the option and pointing at --help;
- a missing required option is named;
- under `mpirun -n 2`, an unknown option of extract ends both ranks with exit 1 and ONE message
  (every rank fails alike: no MPI_Abort);
- extract's values are checked once, before anything is written: --batch 0, --crops 2, --queue -1,
  --fps -1, --decode-priority low and --wave-mb 0 are refused naming the option, and no output file
  appears;
- the wave triggers: one wave for three videos by default (--wave 256), one per video with a tiny
  --wave-mb.
"""
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import vftest  # noqa: E402
from vftest import MPI_ENV as ENV, TINY, check, failures  # noqa: E402

VIDFEAT, SRC, CORPUS = sys.argv[1:4]
vftest.use_corpus(CORPUS)
CONFIG = os.path.join(SRC, "configs/Kinetics/SLOW_8x8_R50.yaml")

# command -> (words of its caption, an option --help must list)
COMMANDS = {
    "extract": ("vidfeat extract: decode each video", "--manifest"),
    "inspect": ("vidfeat inspect FILE", "--videos"),
    "verify": ("vidfeat verify:", "--tolerance"),
    "merge": ("vidfeat merge PART...", "--overwrite"),
    "models": ("vidfeat models:", "--help"),
    "locate": ("vidfeat locate FILE", "--start"),
    "export": ("vidfeat export FILE", "--npy"),
}


def run(args, env=None):
    p = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env or ENV)
    return p.returncode, p.stdout


def main():
    for cmd, (caption, option) in COMMANDS.items():
        rc, out = run([VIDFEAT, cmd, "--help"])
        check(rc == 0 and caption in out and option in out and "--help" in out,
              f"vidfeat {cmd} --help: exit 0, caption and {option} listed (exit {rc})")
        rc, out = run([VIDFEAT, cmd, "--no-such-option"])
        check(rc == 1 and f"vidfeat {cmd}: " in out and "--no-such-option" in out
              and f"vidfeat {cmd} --help lists the options" in out,
              f"vidfeat {cmd} --no-such-option: exit 1 naming the command and the option (exit {rc}): "
              + out.strip()[-300:])

    rc, out = run([VIDFEAT, "inspect"])
    check(rc == 1 and "vidfeat inspect: " in out and "'--file' is required" in out,
          f"vidfeat inspect without a file names the missing --file (exit {rc}): {out.strip()[-300:]}")
    rc, out = run([VIDFEAT, "merge", "a.h5", "b.h5"])
    check(rc == 1 and "vidfeat merge: " in out and "'--output' is required" in out,
          f"vidfeat merge without -o names the missing --output (exit {rc}): {out.strip()[-300:]}")

    rc, out = run(["mpirun", "-n", "2", VIDFEAT, "extract", "--no-such-option"])
    check(rc == 1 and out.count("unrecognised option '--no-such-option'") == 1 and "MPI_Abort" not in out,
          f"mpirun -n 2 extract --no-such-option: exit 1, one message, no MPI_Abort (exit {rc}): "
          + out.strip()[-500:])

    with tempfile.TemporaryDirectory(prefix="vidfeat-options-") as d:
        manifest = os.path.join(d, "m.txt")
        with open(manifest, "w") as f:
            f.write(vftest.corpus_video("rot90.mov") + "\n")
        output = os.path.join(d, "out.h5")
        for args, message in ((["--batch", "0"], "--batch must be at least 1"),
                              (["--crops", "2"], "--crops must be 1 or 3"),
                              (["--queue", "-1"], "--queue must be >= 0"),
                              (["--fps", "-1"], "--fps must be positive"),
                              (["--decode-priority", "low"], "--decode-priority must be normal or idle, got 'low'"),
                              (["--wave-mb", "0"], "--wave-mb must be > 0")):
            rc, out = run([VIDFEAT, "extract", "--config", CONFIG, "--random-weights", "1", "--manifest", manifest,
                           "--output", output, *TINY, *args])
            check(rc == 1 and message in out and not os.path.exists(output),
                  f"extract {' '.join(args)}: refused with '{message}', no output written (exit {rc}): "
                  + out.strip()[-300:])
        # The wave triggers: count alone (the default 256 videos: one wave at the end for three
        # videos), and features' megabytes (--wave-mb: a wave as soon as one video's few KB pass
        # the tiny cap), each wave a "wrote N rows of /features" line at -vv.
        with open(manifest, "w") as f:
            f.write("".join(vftest.corpus_video(v) + "\n" for v in ("rot90.mov", "rot270.mov", "vp8.webm")))
        waves = {}
        for name, args in (("default", []), ("wave-mb", ["--wave-mb", "0.000001"])):
            rc, out = run([VIDFEAT, "extract", "-vv", "--config", CONFIG, "--random-weights", "1", "--manifest",
                           manifest, "--output", output, "--overwrite", "--threads", "1", *TINY, *args])
            waves[name] = out.count("rows of /features at row")
            check(rc == 0, f"extract {' '.join(args)}: exit 0 (got {rc})")
        check(waves["default"] == 1 and waves["wave-mb"] == 3,
              f"one wave by default for 3 videos, one per video with a tiny --wave-mb: {waves}")
    print(f"{len(failures)} failure(s)" + "".join("\n  " + f for f in failures))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
