"""End-to-end tests of `vidfeat extract --shard K/N`, `vidfeat merge` and the slurm/ scripts, over
videos of the generated corpus (tests/support/make_corpus.py) with a tiny SLOW model, checked with
h5py (Debian's python3-h5py).

  test_merge.py MODE VIDFEAT SOURCE_DIR CORPUS_DIR

MODE:
  shards    shard 0/2 + 1/2 merged == one direct run of the same manifest (per video id: features
            bit-identical, /segments, /videos and /failures rows equal); the merged file resumes.
  refusals  merge refuses a part given twice, overlapping shards of different N, a part made with
            other settings, the output being a part, and an existing output without --overwrite;
            a refused merge writes nothing.
  slurm     the slurm/ scripts pass `bash -n`; extract_array.sbatch run with bash as tasks 0 and 1
            of 2, then merge.sbatch, equals extract.sbatch run with bash over mpirun -n 2; exit
            code 3 handling, markers, resume.
  format1   a format 1 file (docs/FORMAT.md) reads in inspect and export as its format 2 original; a
            resume refuses it naming merge, and the merge converts it: == the original, and resumes.
  history   every /failures row of every part survives the merge, in order, with its stage, message
            and rank: a video that failed on two runs keeps both rows, one that failed (missing file)
            and completed on --retry-failed keeps its row; merge reports the failed video.
"""
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile

import h5py
import numpy as np
from numpy.lib.recfunctions import repack_fields

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import vftest  # noqa: E402
from vftest import MPI_ENV as ENV, TINY, check, failures  # noqa: E402

MODE, VIDFEAT, SOURCE, CORPUS = sys.argv[1:5]
VIDEOS = vftest.use_corpus(CORPUS)
CONFIG = os.path.join(SOURCE, "configs/Kinetics/SLOW_8x8_R50.yaml")
SLURM = os.path.join(SOURCE, "slurm")
TINY_SHELL = " ".join("'" + a + "'" for a in TINY)  # for EXTRA_ARGS of the scripts
# Nine videos (with the text file named .mp4 the manifests below have 10 lines): non-integer fps
# + AAC, B-frames, VP8, VP9 without a duration, rotations 90 and 270, a MOV out of presentation
# order, a damaged H.264 (a rejected packet: decodes with errors, completes), a name like an option.
ALL_VIDEOS = ["h264_981_50_aac.mp4", "h264_bframes.mp4", "vp8.webm", "vp9_no_duration.webm",
              "rot90.mov", "rot270.mov", "bframes.mov", "badnal_h264.mp4", "-dash.mp4"]
SMALL_VIDEOS = ["rot90.mov", "vp8.webm", "rot270.mov", "bframes.mov", "-dash.mp4"]




def run(args, env=None):
    """Runs a command; returns (exit code, stdout + stderr)."""
    p = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       env=dict(ENV, **(env or {})))
    return p.returncode, p.stdout


def write_manifest(path, videos, bad_at=None):
    """CSV of corpus videos (id = stem); with bad_at, a text file named .mp4 inserted there."""
    lines = [(os.path.splitext(v)[0], os.path.join(VIDEOS, v)) for v in videos]
    if bad_at is not None:
        bad = os.path.join(os.path.dirname(path), "not_a_video.mp4")
        with open(bad, "w") as f:
            f.write("this is text, not a video\n")
        lines.insert(bad_at, ("text_named_mp4", bad))
    with open(path, "w") as f:
        f.write("video_id,path\n")
        for vid, p in lines:
            f.write(f"{vid},{p}\n")
    return path


def extract(manifest, output, *extra):
    return run([VIDFEAT, "extract", "--config", CONFIG, "--random-weights", "2", "--manifest", manifest,
                "--output", output, "--threads", "2", *TINY, *extra])


def merge(parts, output, *extra):
    return run([VIDFEAT, "merge", *parts, "-o", output, *extra])


def digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


VIDEO_FIELDS = ["path", "status", "fps", "decoded_frames", "duration", "decode_errors", "segment_count",
                "error"]
SEGMENT_FIELDS = ["segment", "padded_frames", "first_frame", "last_frame", "start_time", "end_time"]
SKIP_ATTRS = {"created_utc"}


def by_video(path):
    """{video id: (videos fields, segment rows, feature bytes, failures)} and the root attributes;
    checks on the way that the file's own index is consistent."""
    out = {}
    with h5py.File(path, "r") as f:
        vids, segs, feats = vftest.video_table(f), f["segments"][:], f["features"][:]
        fails = f["failures"][:]
        attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items() if k not in SKIP_ATTRS}
    ids = [v.decode() for v in vids["video_id"]]
    check(len(set(ids)) == len(ids), f"{os.path.basename(path)}: every video id once")
    covered = np.zeros(len(segs), dtype=int)
    for row, v in enumerate(vids):
        first, count = int(v["first_row"]), int(v["segment_count"])
        rows = segs[first:first + count]
        covered[first:first + count] += 1
        if count and not (rows["video_row"] == row).all():
            check(False, f"{path}: segments of {ids[row]} point at another /videos row")
        stage = sorted((bytes(x["stage"]), bytes(x["message"])) for x in fails if int(x["video_row"]) == row)
        out[ids[row]] = (tuple(v[k] for k in VIDEO_FIELDS), repack_fields(rows[SEGMENT_FIELDS]).tobytes(),
                         feats[first:first + count].tobytes(), tuple(stage))
    check((covered <= 1).all(), f"{os.path.basename(path)}: no feature row belongs to two videos")
    return out, attrs


def same_content(a, b, what):
    ca, aa = by_video(a)
    cb, ab = by_video(b)
    check(sorted(ca) == sorted(cb), f"{what}: same video ids ({len(ca)} vs {len(cb)})")
    differing = []
    for vid in sorted(set(ca) & set(cb)):
        for i, part in enumerate(("/videos row", "/segments rows", "features", "/failures rows")):
            if ca[vid][i] != cb[vid][i]:
                differing.append(f"{vid}: {part}")
    n_seg = sum(len(v[1]) for v in ca.values()) // 40  # packed /segments rows without video_row
    check(not differing, f"{what}: per video id, /videos, /segments, /failures rows equal and features "
                         f"bit-identical ({len(ca)} videos, {n_seg} segments)" +
                         "".join("\n    differs: " + x for x in differing))
    check(aa == ab, f"{what}: same root attributes (but created_utc)")
    return ca


def mode_shards(d):
    # The text file named .mp4 sits in shard 1 of 2 (line 7 of 10): that shard exits 3.
    manifest = write_manifest(os.path.join(d, "all.csv"), ALL_VIDEOS, bad_at=6)
    direct = os.path.join(d, "direct.h5")
    rc, log = extract(manifest, direct)
    check(rc == 3, f"direct run: exit 3 (a video failed), got {rc}")
    parts = [os.path.join(d, f"part-{k}.h5") for k in range(2)]
    rc0, _ = extract(manifest, parts[0], "--shard", "0/2")
    rc1, log1 = extract(manifest, parts[1], "--shard", "1/2")
    check((rc0, rc1) == (0, 3), f"shards exit 0 and 3 (the failed video is in shard 1), got {rc0}, {rc1}")
    check("shard 1/2: manifest lines 5..10 of 10" in log1, "shard 1/2 takes manifest lines 5..10")
    with h5py.File(parts[0]) as a, h5py.File(parts[1]) as b:
        check(len(a["videos"]) + len(b["videos"]) == 10 and len(a["videos"]) == 5,
              "shards hold 5 + 5 videos")

    merged = os.path.join(d, "merged.h5")
    rc, log = merge(parts, merged)
    check(rc == 0, f"merge exits 0, got {rc}: {log.strip()}")
    check("10 videos" in log and "1 failed" in log, "merge summary counts 10 videos, 1 failed")
    content = same_content(direct, merged, "merged vs direct")
    check(content["text_named_mp4"][0][1] == 2 and content["h264_bframes"][0][1] == 1,
          "text_named_mp4 failed, h264_bframes complete in the merged file")
    frames = {vid: c[0][VIDEO_FIELDS.index("decoded_frames")] for vid, c in content.items()}
    want = {os.path.splitext(v)[0]: vftest.corpus_row(v)["frames"] for v in ALL_VIDEOS}
    check(all(frames[k] == n for k, n in want.items()),
          f"merged file: each video's decoded frames are ffprobe's count (corpus.tsv): {frames} vs {want}")
    with h5py.File(merged) as f:
        check([v.decode() for v in vftest.video_table(f)["video_id"]] ==
              [l.split(",")[0] for l in open(manifest).read().splitlines()[1:]],
              "merged /videos rows are in manifest order when the parts are given in shard order")

    reverse = os.path.join(d, "reverse.h5")
    rc, _ = merge(parts[::-1], reverse)
    check(rc == 0, "merge of the parts in reverse order exits 0")
    same_content(direct, reverse, "reverse-order merge vs direct")

    # The merged file is an ordinary output: extract with the whole manifest resumes it, nothing to do.
    rc, log = extract(manifest, merged)
    check(rc == 3 and "0 to extract, 9 already complete, 0 invalid, 1 failed before" in log,
          f"extract over the merged file resumes it with nothing to do (exit {rc})")
    same_content(direct, merged, "merged after resume vs direct")


def mode_refusals(d):
    manifest = write_manifest(os.path.join(d, "small.csv"), SMALL_VIDEOS)
    a, b, c, t = (os.path.join(d, n) for n in ("a-0of2.h5", "b-1of2.h5", "c-0of3.h5", "t-1of2-drop.h5"))
    for out, shard, extra in ((a, "0/2", []), (b, "1/2", []), (c, "0/3", []), (t, "1/2", ["--tail", "drop"])):
        rc, log = extract(manifest, out, "--shard", shard, *extra)
        check(rc == 0, f"extract --shard {shard} {' '.join(extra)} exits 0, got {rc}")
    out = os.path.join(d, "out.h5")

    def refused(parts, words, what, *extra):
        rc, log = merge(parts, out, *extra)
        check(rc != 0 and all(w in log for w in words), f"{what}: refused naming {words} (exit {rc})")
        if rc == 0 or not all(w in log for w in words):
            print(log)
        check(not os.path.exists(out) and not os.path.exists(out + ".merging"), f"{what}: nothing written")

    refused([a, a], ["given twice"], "the same part twice")
    refused([a, b, os.path.join(d, ".", "a-0of2.h5")], ["given twice"], "the same part twice under another name")
    refused([a, c], ["is in both", "a-0of2.h5", "c-0of3.h5"], "shards 0/2 and 0/3 overlap")
    refused([c, b, a], ["is in both"], "three parts, two overlapping")
    refused([a, t], ["made differently", "tail policy"], "a part made with --tail drop")
    refused([os.path.join(d, "missing.h5"), b], ["missing.h5"], "a missing part")

    rc, log = merge([a, b], out)
    check(rc == 0, f"merge 0/2 + 1/2 exits 0, got {rc}")
    check("5 videos" in log and "0 failed" in log and "0 pending" in log, "merge summary: 5 videos")
    with h5py.File(out) as f:
        check(sorted(v.decode() for v in vftest.video_table(f)["video_id"]) ==
              sorted(os.path.splitext(v)[0] for v in SMALL_VIDEOS), "merged file holds the 5 videos")
    before = digest(out)
    rc, log = merge([a, b], out)
    check(rc != 0 and "--overwrite" in log and digest(out) == before,
          f"an existing output is refused without --overwrite, unchanged (exit {rc})")
    before_a = digest(a)
    rc, log = merge([a, b], a, "--overwrite")
    check(rc != 0 and "is the part" in log and digest(a) == before_a,
          f"the output naming a part is refused even with --overwrite, the part unchanged (exit {rc})")
    rc, log = merge([b, a], out, "--overwrite")
    check(rc == 0, f"--overwrite replaces the output (exit {rc})")
    same_content(out, out, "self")  # the index of the replaced file is consistent
    # A direct run agrees with the merge (also for the small set).
    direct = os.path.join(d, "direct.h5")
    check(extract(manifest, direct)[0] == 0, "direct run exits 0")
    same_content(direct, out, "merged (overwritten) vs direct")


def failure_rows(path):
    """/failures of a file as (video id, stage, message, rank) in row order."""
    with h5py.File(path, "r") as f:
        ids = [v.decode() for v in vftest.video_table(f)["video_id"]]
        return [(ids[int(x["video_row"])], bytes(x["stage"]).decode(), bytes(x["message"]).decode(), int(x["rank"]))
                for x in f["failures"][:]]


def mode_history(d):
    # Shard 0/2: a good video and the text file named .mp4, which fails to open; run twice (the second
    # time with --retry-failed), so it has two /failures rows. Shard 1/2: a missing file (stage
    # manifest, --skip-invalid) that exists on the retry and completes, keeping its failure row.
    missing = os.path.join(d, "arrives_later.webm")
    manifest = os.path.join(d, "history.csv")
    write_manifest(manifest, ["rot90.mov"], bad_at=1)
    with open(manifest, "a") as f:
        f.write(f"arrives_later,{missing}\nvp8,{os.path.join(VIDEOS, 'vp8.webm')}\n")
    parts = [os.path.join(d, f"part-{k}.h5") for k in range(2)]
    # (--skip-invalid: the manifest's missing file, in the other shard, would stop the run.)
    for extra in ([], ["--retry-failed"]):
        rc, _ = extract(manifest, parts[0], "--shard", "0/2", "--skip-invalid", *extra)
        check(rc == 3, f"shard 0/2 {' '.join(extra)}: exit 3 (the text file fails), got {rc}")
    rc, _ = extract(manifest, parts[1], "--shard", "1/2", "--skip-invalid")
    check(rc == 3, f"shard 1/2 with the file missing: exit 3, got {rc}")
    shutil.copy(os.path.join(VIDEOS, "vp8.webm"), missing)
    rc, _ = extract(manifest, parts[1], "--shard", "1/2", "--retry-failed")
    check(rc == 0, f"shard 1/2 --retry-failed once the file exists: exit 0, got {rc}")

    rows = [failure_rows(p) for p in parts]
    check([(r[0], r[1]) for r in rows[0]] == [("text_named_mp4", "open")] * 2,
          f"part 0 records both failed attempts at the text file (stage open): {rows[0]}")
    check([(r[0], r[1]) for r in rows[1]] == [("arrives_later", "manifest")],
          f"part 1 records the manifest failure of the video that completed later: {rows[1]}")
    merged = os.path.join(d, "merged.h5")
    rc, log = merge(parts, merged)
    check(rc == 0, f"merge exits 0, got {rc}: {log.strip()}")
    got = failure_rows(merged)
    check(got == rows[0] + rows[1],
          f"merged /failures: every row of every part, in order, same stage, message and rank: {got}")
    check("1 video(s) failed (1 open;" in log and "text_named_mp4: " in log,
          f"merge reports the failed video with its stage and reason:\n{log}")
    content, _ = by_video(merged)
    check(content["arrives_later"][0][1] == 1 and content["text_named_mp4"][0][1] == 2,
          "merged: arrives_later complete, text_named_mp4 failed")


def mode_format1(d):
    # Format 1 files (strings and messages in /videos) still read: inspect, export, merge; a
    # resume refuses one and names the conversion (merge), whose result resumes.
    manifest = write_manifest(os.path.join(d, "all.csv"), SMALL_VIDEOS, bad_at=2)
    new = os.path.join(d, "new.h5")
    rc, _ = extract(manifest, new)
    check(rc == 3, f"the format 2 run exits 3 (the text file fails), got {rc}")
    old = os.path.join(d, "old.h5")
    vftest.to_format1(new, old)
    with h5py.File(old, "r") as f:
        names = list(f["videos"].dtype.names)
        version = f.attrs["format_version"]
        check("manifest" not in f and names[:3] == ["video_id", "path", "status"] and names[-1] == "error" and
              (version.decode() if isinstance(version, bytes) else version) == "1",
              f"the rewritten file has format 1's layout ({names}, version {version!r})")
    inspected = [run([VIDFEAT, "inspect", p, "--videos"]) for p in (new, old)]
    check(inspected[1][0] == 0, f"inspect reads format 1 (exit {inspected[1][0]}): {inspected[1][1][-400:]}")
    lines = [[x for x in text.splitlines() if "text_named_mp4" in x or "rot90" in x] for _, text in inspected]
    check(lines[0] == lines[1] and any("text_named_mp4" in x and "not" in x.lower() for x in lines[1]),
          f"inspect --videos lists the same videos and the failure's reason in both formats: {lines}")
    exports = [os.path.join(d, f"npy_{i}") for i in range(2)]
    for p, out in zip((new, old), exports):
        rc, log = run([VIDFEAT, "export", p, "--npy", out])
        check(rc == 0, f"export of {os.path.basename(p)}: exit 0 ({log[-300:]})")
    same = sorted(os.listdir(exports[0])) == sorted(os.listdir(exports[1])) and all(
        digest(os.path.join(exports[0], n)) == digest(os.path.join(exports[1], n)) for n in os.listdir(exports[0]))
    check(same and len(os.listdir(exports[0])) == len(SMALL_VIDEOS),
          f"export writes the same .npy files from both formats ({sorted(os.listdir(exports[1]))})")
    before = digest(old)
    rc, log = extract(manifest, old)
    check(rc != 0 and "format_version 1" in log and "vidfeat merge" in log,
          f"a resume of the format 1 file is refused, naming the conversion (exit {rc}): {log[-600:]}")
    check(digest(old) == before, "the refused format 1 file is unchanged")
    converted = os.path.join(d, "converted.h5")
    rc, log = merge([old], converted)
    check(rc == 0, f"merge converts the format 1 file: exit 0 ({log[-300:]})")
    same_content(new, converted, "format 1 converted by merge == the format 2 run")
    rc, log = extract(manifest, converted)
    check(rc == 3 and "resuming" in log, f"the converted file resumes (exit 3: the text file failed): {log[-400:]}")
    same_content(new, converted, "after the resume, still == the format 2 run")


def mode_slurm(d):
    scripts = ["extract.sbatch", "extract_array.sbatch", "merge.sbatch", "submit_array.sh"]
    for s in scripts:
        rc, log = run(["bash", "-n", os.path.join(SLURM, s)])
        check(rc == 0, f"bash -n slurm/{s}" + ("" if rc == 0 else ": " + log))
    if shutil.which("shellcheck"):
        rc, log = run(["shellcheck", "-S", "warning", *(os.path.join(SLURM, s) for s in scripts)])
        check(rc == 0, "shellcheck -S warning slurm/*" + ("" if rc == 0 else ":\n" + log))

    # The failed video lands in slice 0 of 2.
    manifest = write_manifest(os.path.join(d, "small.csv"), SMALL_VIDEOS, bad_at=1)
    parts_dir = os.path.join(d, "parts")
    common = dict(VIDFEAT=VIDFEAT, CONFIG=CONFIG, RANDOM_WEIGHTS="2", MANIFEST=manifest, PARTS_DIR=parts_dir,
                  THREADS="1", BATCH="2", EXTRA_ARGS=TINY_SHELL, OUTPUT=os.path.join(d, "merged.h5"))
    for k in ("SLURM_JOB_ID", "SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT", "SLURM_ARRAY_TASK_MIN", "LAUNCH"):
        ENV.pop(k, None)
    array = os.path.join(SLURM, "extract_array.sbatch")

    rc, log = run(["bash", array], common)
    check(rc != 0 and "not an array task" in log, f"extract_array.sbatch outside an array says so (exit {rc})")
    rc, log = run(["bash", array], dict(common, SLURM_ARRAY_TASK_ID="5", SLURM_ARRAY_TASK_MIN="3",
                                        SLURM_ARRAY_TASK_COUNT="2"))
    check(rc == 2 and "contiguous" in log, f"a task id outside the array's range is refused (exit {rc})")

    for k in range(2):
        rc, log = run(["bash", array], dict(common, SLURM_ARRAY_TASK_ID=str(k), SLURM_ARRAY_TASK_COUNT="2"))
        check(rc == 0, f"array task {k} of 2 exits 0 (failed videos do not fail the task), got {rc}")
        if rc:
            print(log)
    marker0, marker1 = (os.path.join(parts_dir, f"part-{k}.failed-videos") for k in range(2))
    check(os.path.exists(marker0) and not os.path.exists(marker1), "a marker for the slice with a failed video only")
    check(sorted(os.listdir(parts_dir)) == ["part-0.failed-videos", "part-0.h5", "part-1.h5"],
          f"parts folder: {sorted(os.listdir(parts_dir))}")

    # With FAILED_VIDEOS_OK=0 the rerun (a resume: nothing to do) fails the task with 3.
    rc, log = run(["bash", array], dict(common, SLURM_ARRAY_TASK_ID="0", SLURM_ARRAY_TASK_COUNT="2",
                                        FAILED_VIDEOS_OK="0"))
    check(rc == 3 and "0 to extract" in log, f"FAILED_VIDEOS_OK=0: exit 3, and the rerun resumed (exit {rc})")

    merge_script = os.path.join(SLURM, "merge.sbatch")
    rc, log = run(["bash", merge_script], dict(common, SHARDS="3"))
    check(rc != 0 and "missing" in log and "part-2.h5" in log and not os.path.exists(common["OUTPUT"]),
          f"merge.sbatch with SHARDS=3 and 2 parts: refused, names part-2.h5 (exit {rc})")
    rc, log = run(["bash", merge_script], dict(common, SHARDS="2"))
    check(rc == 3 and "failed" in log and os.path.exists(common["OUTPUT"]),
          f"merge.sbatch merges and exits 3 for the failed video (exit {rc})")
    rc, log = run(["bash", merge_script], common)  # glob of part-*.h5; output exists
    check(rc != 0 and "--overwrite" in log, f"merge.sbatch again: refuses the existing output (exit {rc})")
    rc, log = run(["bash", merge_script], dict(common, OVERWRITE="1"))
    check(rc == 3, f"merge.sbatch OVERWRITE=1 (globbing the parts): merged again, exit 3 (exit {rc})")

    # extract.sbatch run with bash, 2 ranks through mpirun: exit 3 propagated, and a rerun resumes.
    direct = os.path.join(d, "direct.h5")
    one = dict(common, OUTPUT=direct, LAUNCH="mpirun -n 2 --oversubscribe")
    rc, log = run(["bash", os.path.join(SLURM, "extract.sbatch")], one)
    check(rc == 3 and "some videos FAILED" in log, f"extract.sbatch over mpirun -n 2: exit 3 (exit {rc})")
    if rc != 3:
        print(log)
    same_content(direct, common["OUTPUT"], "array parts merged by merge.sbatch vs extract.sbatch (2 ranks)")
    rc, log = run(["bash", os.path.join(SLURM, "extract.sbatch")], one)
    check(rc == 3 and "0 to extract, 5 already complete" in log, f"extract.sbatch rerun resumes (exit {rc})")
    os.remove(os.path.join(os.path.dirname(manifest), "not_a_video.mp4"))
    rc, log = run(["bash", os.path.join(SLURM, "extract.sbatch")],
                  dict(one, EXTRA_ARGS=TINY_SHELL + " --skip-invalid --retry-failed"))
    check(rc == 3 and "file does not exist" in log,
          f"EXTRA_ARGS reach vidfeat (--skip-invalid --retry-failed; exit {rc})")


def main():
    d = tempfile.mkdtemp(prefix="vidfeat-merge-")
    try:
        {"shards": mode_shards, "refusals": mode_refusals, "slurm": mode_slurm, "history": mode_history,
         "format1": mode_format1}[MODE](d)
    finally:
        shutil.rmtree(d, ignore_errors=True)
    print(f"{len(failures)} failure(s)" + "".join("\n  " + f for f in failures))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
