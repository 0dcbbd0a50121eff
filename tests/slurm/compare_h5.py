"""compare_h5.py DIRECT MERGED: per video id, the two vidfeat outputs hold the same /videos row
(but the row's position), the same /segments rows and bit-identical features, the same /failures
rows, and the same root attributes (but created_utc). Exit 0 when they do."""
import os
import sys

import h5py
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import vftest  # noqa: E402
from numpy.lib.recfunctions import repack_fields

VIDEO_FIELDS = ["path", "status", "fps", "decoded_frames", "duration", "decode_errors", "segment_count", "error"]
SEGMENT_FIELDS = ["segment", "padded_frames", "first_frame", "last_frame", "start_time", "end_time"]


def by_video(path):
    with h5py.File(path, "r") as f:
        vids, segs, feats, fails = vftest.video_table(f), f["segments"][:], f["features"][:], f["failures"][:]
        attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items() if k != "created_utc"}
    out = {}
    for row, v in enumerate(vids):
        first, count = int(v["first_row"]), int(v["segment_count"])
        rows = segs[first:first + count]
        assert (rows["video_row"] == row).all(), f"{path}: segments of row {row} point elsewhere"
        failures = sorted((bytes(x["stage"]), bytes(x["message"])) for x in fails if int(x["video_row"]) == row)
        out[v["video_id"].decode()] = (tuple(v[k] for k in VIDEO_FIELDS), repack_fields(rows[SEGMENT_FIELDS]).tobytes(),
                                       feats[first:first + count].tobytes(), tuple(failures), count)
    assert len(out) == len(vids), f"{path}: a video id twice"
    return out, attrs


def main():
    (a, aa), (b, ab) = by_video(sys.argv[1]), by_video(sys.argv[2])
    bad = []
    if sorted(a) != sorted(b):
        bad.append(f"video ids differ: {sorted(a)} vs {sorted(b)}")
    for vid in sorted(set(a) & set(b)):
        for i, what in enumerate(("/videos row", "/segments rows", "features", "/failures rows")):
            if a[vid][i] != b[vid][i]:
                bad.append(f"{vid}: {what} differ")
    if aa != ab:
        bad.append(f"root attributes differ: {aa} vs {ab}")
    segments = sum(v[4] for v in a.values())
    for line in bad:
        print("differs: " + line)
    print(f"{len(a)} videos, {segments} segments: " + ("DIFFERENT" if bad else
          "same ids, /videos, /segments, /failures rows; features bit-identical"))
    sys.exit(1 if bad or not a or not segments else 0)


if __name__ == "__main__":
    main()
