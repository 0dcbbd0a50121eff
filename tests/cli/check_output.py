"""Checks a vidfeat output file with h5py (Debian's python3-h5py), independently of vidfeat's C++.

  check_output.py FILE COUNTS SPAN RATE [--expect-failed ID ...] [--drop]

COUNTS gives each video's true decoded frame count (what ffprobe -count_frames decodes), by file
name: either the generated corpus's corpus.tsv (its `frames` column, measured by
tests/support/make_corpus.py) or ../shared/videos/README.md (its table's `frames` column). A video
of the output file is looked up by the file name of its stored path.
SPAN = NUM_FRAMES * SAMPLING_RATE, RATE = SAMPLING_RATE. With back-to-back clips a video of n frames
has ceil(n / SPAN) segments (the last one padded); with --drop only the clips whose last sample
(start + SPAN - RATE) exists.
"""
import math
import os
import re
import sys

import h5py
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import vftest  # noqa: E402


def readme_counts(path):
    counts = {}
    for line in open(path, encoding="utf-8"):
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 6 and re.match(r"^\d+", cells[5]) and "." in cells[0]:
            counts[cells[0]] = int(re.match(r"^(\d+)", cells[5]).group(1))
    assert len(counts) >= 9, counts
    return counts


def corpus_counts(path):
    with open(path, encoding="utf-8") as f:
        header = f.readline().rstrip("\n").split("\t")
        name, frames = header.index("name"), header.index("frames")
        counts = {}
        for line in f:
            cells = line.rstrip("\n").split("\t")
            if len(cells) > frames and cells[frames]:
                counts[cells[name]] = int(cells[frames])
    assert counts, path
    return counts


def text(value):
    return value.decode() if isinstance(value, bytes) else str(value)


def main():
    args = sys.argv[1:]
    path, counts_file, span, rate = args[0], args[1], int(args[2]), int(args[3])
    failed_ids = set()
    drop = "--drop" in args
    if "--expect-failed" in args:
        failed_ids = set(a for a in args[args.index("--expect-failed") + 1:] if not a.startswith("--"))
    counts = corpus_counts(counts_file) if counts_file.endswith(".tsv") else readme_counts(counts_file)
    problems = []
    with h5py.File(path, "r") as f:
        feats = f["features"]
        segs = f["segments"][:]
        vids = vftest.video_table(f)
        dim = int(f.attrs["feature_dim"])
        assert feats.shape == (len(segs), dim), (feats.shape, len(segs), dim)
        # docs/FORMAT.md: "random (UNTRAINED), seed N"; the feature described by the built model,
        # starting with its width.
        assert re.fullmatch(r"random \(UNTRAINED\), seed \d+", text(f.attrs["weights"])), f.attrs["weights"]
        assert text(f.attrs["feature_name"]).startswith(f"{dim}-d: "), (f.attrs["feature_name"], dim)
        data = feats[:]
        assert np.isfinite(data).all(), "non-finite features"
        seen_rows = np.zeros(len(segs), dtype=int)
        for v in vids:
            vid = v["video_id"].decode()
            status = int(v["status"])
            if vid in failed_ids:
                if status != 2 or not v["error"]:
                    problems.append(f"{vid}: expected failed with a reason, got status {status}")
                continue
            if status != 1:
                problems.append(f"{vid}: status {status}, error {v['error']!r}")
                continue
            file_name = os.path.basename(text(v["path"]))
            if file_name not in counts:
                problems.append(f"{vid}: {file_name} has no frame count in {counts_file}")
                continue
            n = counts[file_name]
            if int(v["decoded_frames"]) != n:
                problems.append(f"{vid}: decoded {v['decoded_frames']} frames, {os.path.basename(counts_file)} says {n}")
            last = span - rate
            full = 0 if n <= last else (n - 1 - last) // span + 1
            want = full if drop else math.ceil(n / span)
            first, count = int(v["first_row"]), int(v["segment_count"])
            if count != want:
                problems.append(f"{vid}: {count} segments, expected {want} for {n} frames")
            rows = segs[first:first + count]
            seen_rows[first:first + count] += 1
            if count and not (rows["video_row"] == np.where(vids["video_id"] == v["video_id"])[0][0]).all():
                problems.append(f"{vid}: segment rows point at another video")
            if count and list(rows["segment"]) != list(range(count)):
                problems.append(f"{vid}: segment indices {list(rows['segment'])}")
            if count and not (np.diff(rows["start_time"]) > 0).all():
                problems.append(f"{vid}: start times not increasing")
            if count and not (rows["end_time"] > rows["start_time"]).all():
                problems.append(f"{vid}: a segment ends before it starts")
            if count and not drop and int(rows["last_frame"][-1]) != n - 1:
                problems.append(f"{vid}: last segment ends at frame {rows['last_frame'][-1]}, not {n - 1}")
        if (seen_rows > 1).any() or (seen_rows == 0).any():
            problems.append("feature rows are not covered exactly once by the videos' row ranges")
    for p in problems:
        print("PROBLEM:", p)
    print(f"checked {len(vids)} videos, {len(segs)} segments, dim {dim}")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
