#!/usr/bin/python3
"""Writes the generated test corpus: small videos made with the ffmpeg CLI, plus corpus.tsv.

  make_corpus.py OUT_DIR

corpus.tsv (tab-separated, header line, one row per file):
  name frames width height display_width display_height rotation fps codec pix_fmt start_time kind notes
- frames: ffprobe -count_frames (nb_read_frames) of the first video stream, measured here after the
  file is written; empty when ffprobe finds no decodable video.
- width/height: coded size; display_width/height: after the rotation. rotation: the clockwise
  angle (0/90/180/270) the display matrix asks for, i.e. -(ffprobe's side-data rotation) mod 360,
  as vidfeat's decoder applies it.
- fps: ffprobe r_frame_rate; codec: codec_name; pix_fmt; start_time: format start_time (seconds).
- kind: good (decodes fully), damaged (decodes with errors / partially), bad (no decodable video).
- notes: what the file is for, and the pixel pattern the generator put there where it is a known
  one (colours given as RGB in the coded orientation, before rotation; the codecs are lossy, so
  compare with a tolerance and away from colour edges).

Idempotent: when OUT_DIR/corpus.tsv exists and OUT_DIR/.stamp holds this script's hash, nothing is
done. Otherwise the files are written into a temporary folder beside OUT_DIR, checked, and renamed
into place. Uses only Debian's python3 and the ffmpeg/ffprobe command-line tools.
"""
import concurrent.futures
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time

COLUMNS = ["name", "frames", "width", "height", "display_width", "display_height", "rotation", "fps",
           "codec", "pix_fmt", "start_time", "kind", "notes"]

FF = ["ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-y"]
RED, BLUE, GREEN, GREY = "0xFF0000", "0x0000FF", "0x00FF00", "0x808080"


def src(size, rate, dur):
    """A lavfi testsrc2 input (moving test pattern), made in RGB (testsrc2 rounds odd sizes down in
    subsampled formats)."""
    return ["-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}:duration={dur},format=rgb24"]


def halves(size, rate, dur, left=RED, right=BLUE):
    """Input: the left half one solid colour, the right half another (w must be even)."""
    w, h = (int(v) for v in size.split("x"))
    return ["-f", "lavfi", "-i",
            f"color=c={left}:size={size}:rate={rate}:duration={dur},"
            f"drawbox=x={w // 2}:y=0:w={w // 2}:h={h}:color={right}:t=fill"]


def solid(size, rate, dur, colour, fmt="yuv420p"):
    """Input: one solid colour (fmt: the pixel format it is made in; 4:4:4 for sizes below 2x2)."""
    return ["-f", "lavfi", "-i", f"color=c={colour}:size={size}:rate={rate}:duration={dur},format={fmt}"]


def sine(dur):
    return ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=44100:duration={dur}"]


X264 = ["-c:v", "libx264", "-preset", "veryfast", "-threads", "1"]
HALVES_NOTE = "left half red rgb(255,0,0), right half blue rgb(0,0,255)"

# Each entry: name, kind, notes, and how it is made:
#   args: ffmpeg arguments between the common flags and the output path
#   pipe: the output is written through a pipe (no seeking back: no duration in the header)
#   from_: made from another entry's file by `post` (truncate / flip / cut / rotate)
#   raw: bytes written as they are
# expect: properties checked after writing (the generator fails if ffprobe disagrees).
SPECS = [
    dict(name="h264_bframes.mp4", kind="good",
         args=src("320x240", 25, 2) + X264 + ["-bf", "3", "-b_strategy", "0", "-pix_fmt", "yuv420p"],
         expect=dict(reorder=True), notes="H.264 with B-frames (pts out of decode order), testsrc2"),
    dict(name="h264_ntsc_aac.mp4", kind="good",
         args=src("160x120", "30000/1001", 3) + sine(3) + X264 + ["-pix_fmt", "yuv420p", "-c:a", "aac",
                                                                  "-b:a", "64k"],
         notes="H.264 at 30000/1001 fps with an AAC audio stream, testsrc2"),
    dict(name="h264_981_50_aac.mp4", kind="good",
         args=src("320x240", "981/50", 4) + sine(4) + X264 + ["-pix_fmt", "yuv420p", "-c:a", "aac",
                                                              "-b:a", "64k"],
         notes="H.264 at 981/50 fps (19.62, like an ActivityNet video) with AAC audio, testsrc2"),
    dict(name="hevc.mp4", kind="good",
         args=src("128x96", 25, 2) + ["-c:v", "libx265", "-preset", "ultrafast", "-x265-params",
                                      "log-level=error:pools=1:frame-threads=1", "-tag:v", "hvc1",
                                      "-pix_fmt", "yuv420p"],
         notes="HEVC, testsrc2"),
    dict(name="vp8.webm", kind="good",
         args=src("160x120", 24, 2) + sine(2) + ["-c:v", "libvpx", "-b:v", "300k", "-threads", "1",
                                                 "-pix_fmt", "yuv420p", "-c:a", "libvorbis"],
         notes="VP8 + Vorbis in WebM (no frame count in the header), testsrc2"),
    dict(name="vp9.webm", kind="good",
         args=src("160x120", 25, 2) + ["-c:v", "libvpx-vp9", "-b:v", "300k", "-deadline", "realtime",
                                       "-cpu-used", "8", "-threads", "1", "-pix_fmt", "yuv420p"],
         notes="VP9 in WebM, testsrc2"),
    dict(name="vp9_no_duration.webm", kind="good", pipe=True,
         args=src("160x120", "15000/1001", 2) + ["-c:v", "libvpx-vp9", "-b:v", "300k", "-deadline",
                                                 "realtime", "-cpu-used", "8", "-threads", "1",
                                                 "-pix_fmt", "yuv420p", "-f", "webm"],
         expect=dict(no_duration=True),
         notes="VP9 at 15000/1001 fps written through a pipe: the container has no duration"),
    dict(name="vp9_odd_63x47.webm", kind="good", expect=dict(size=(63, 47)),
         args=src("63x47", 25, 1) + ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8",
                                     "-threads", "1", "-pix_fmt", "yuv420p"],
         notes="odd width and height (63x47) in yuv420p, testsrc2"),
    dict(name="av1.mkv", kind="good",
         args=src("64x48", 25, 1) + ["-c:v", "libaom-av1", "-cpu-used", "8", "-threads", "1",
                                     "-b:v", "200k", "-pix_fmt", "yuv420p"],
         notes="AV1 (libaom), testsrc2"),
    dict(name="mpeg4.avi", kind="good",
         args=halves("128x96", 25, 2) + ["-c:v", "mpeg4", "-q:v", "2", "-threads", "1"],
         notes="MPEG-4 part 2 in AVI; " + HALVES_NOTE),
    dict(name="mjpeg.avi", kind="good",
         args=halves("128x96", 25, 2) + ["-c:v", "mjpeg", "-q:v", "2", "-pix_fmt", "yuvj420p",
                                         "-threads", "1"],
         notes="MJPEG in AVI (full-range yuvj420p); " + HALVES_NOTE),
    dict(name="h264_yuv444p.mp4", kind="good",
         args=halves("96x64", 25, 2) + X264 + ["-pix_fmt", "yuv444p"],
         notes="H.264 High 4:4:4; " + HALVES_NOTE),
    dict(name="h264_10bit.mp4", kind="good",
         args=halves("96x64", 25, 2) + X264 + ["-pix_fmt", "yuv420p10le"],
         notes="H.264 High 10 (yuv420p10le); " + HALVES_NOTE),
    dict(name="hevc_10bit.mkv", kind="good",
         args=solid("64x48", 25, 1, GREY) + ["-c:v", "libx265", "-preset", "ultrafast", "-x265-params",
                                             "log-level=error:pools=1:frame-threads=1",
                                             "-pix_fmt", "yuv420p10le"],
         notes="HEVC Main 10 (yuv420p10le); solid grey rgb(128,128,128)"),
    dict(name="tiny_1x1.mp4", kind="good",
         args=solid("1x1", 1, 5, GREEN, "yuv444p") + X264 + ["-pix_fmt", "yuv444p"],
         notes="1x1 pixel, 1 fps, yuv444p; solid green rgb(0,255,0)"),
    dict(name="tiny_2x2.mp4", kind="good",
         args=solid("2x2", 25, 1, RED) + X264 + ["-pix_fmt", "yuv420p"],
         notes="2x2 pixels; solid red rgb(255,0,0)"),
    dict(name="rot90.mov", kind="good", from_="rot_src.mov", post=("rotate", 90),
         expect=dict(rotation=90), notes="display matrix: rotate 90 clockwise; " + HALVES_NOTE),
    dict(name="rot180.mp4", kind="good", from_="rot_src.mov", post=("rotate", 180),
         expect=dict(rotation=180), notes="display matrix: rotate 180; " + HALVES_NOTE),
    dict(name="rot270.mov", kind="good", from_="rot_src.mov", post=("rotate", 270),
         expect=dict(rotation=270), notes="display matrix: rotate 270 clockwise; " + HALVES_NOTE),
    dict(name="vfr.mp4", kind="good",
         args=["-filter_complex", "testsrc2=size=96x64:rate=10:duration=1[a];"
               "testsrc2=size=96x64:rate=30:duration=1[b];[a][b]concat=n=2:v=1[v]",
               "-map", "[v]"] + X264 + ["-pix_fmt", "yuv420p", "-fps_mode", "passthrough"],
         notes="variable frame rate: 1 s at 10 fps then 1 s at 30 fps, testsrc2"),
    dict(name="start_offset.mkv", kind="good",
         args=src("96x64", 25, 2) + X264 + ["-pix_fmt", "yuv420p", "-output_ts_offset", "2.5"],
         expect=dict(start_time=2.5), notes="non-zero start time (2.5 s), testsrc2"),
    dict(name="mpegts.ts", kind="good",
         args=src("96x64", 25, 2) + X264 + ["-pix_fmt", "yuv420p", "-bf", "2"],
         notes="MPEG-TS (starts at 1.4 s: the muxer's delay), H.264 with B-frames, testsrc2"),
    dict(name="audio_first.mp4", kind="good",
         args=src("96x64", 25, 2) + sine(2) + ["-map", "1:a", "-map", "0:v"] + X264 +
         ["-pix_fmt", "yuv420p", "-c:a", "aac"],
         expect=dict(audio_first=True),
         notes="the audio stream (AAC) comes before the video stream, testsrc2"),
    dict(name="anim.gif", kind="good",
         args=src("64x48", 10, 2), notes="animated GIF, testsrc2"),
    dict(name="bframes.mov", kind="good",
         args=src("64x64", 32, 0.25) + X264 + ["-bf", "3", "-b_strategy", "0", "-pix_fmt", "yuv420p"],
         expect=dict(reorder=True), notes="short MOV with B-frames: packets out of presentation order"),
    dict(name="long_60s.mp4", kind="good",
         args=src("64x48", 25, 60) + X264 + ["-pix_fmt", "yuv420p", "-g", "250"],
         notes="long video: 60 s at 25 fps, testsrc2"),
    dict(name="with space.mp4", kind="good",
         args=halves("96x64", 25, 1) + X264 + ["-pix_fmt", "yuv420p"],
         notes="a space in the file name; " + HALVES_NOTE),
    dict(name="-dash.mp4", kind="good",
         args=src("64x48", 25, 1) + X264 + ["-pix_fmt", "yuv420p"],
         notes="a file name that looks like a command-line option, testsrc2"),
    dict(name="vidéo_ü.mp4", kind="good",
         args=src("64x48", 25, 1) + X264 + ["-pix_fmt", "yuv420p"],
         notes="a non-ASCII (UTF-8) file name, testsrc2"),
    dict(name="truncated.mp4", kind="damaged", from_="damage_src.mp4", post=("truncate", 0.6),
         notes="the first 60 % of a faststart H.264 mp4 (moov first): the end of the stream is missing"),
    dict(name="badnal_h264.mp4", kind="damaged", from_="damage_src.mp4", post=("badnal", 0.5),
         expect=dict(errors=True, fewer_frames=True),
         notes="H.264 mp4 whose packet in the middle (not a keyframe) has its NAL length set to "
               "0xFFFFFFFF: the decoder rejects that packet (an error FFmpeg returns), later "
               "frames miss a reference"),
    dict(name="bitflip_h264.mkv", kind="damaged", from_="damage_src.mkv", post=("flip",),
         expect=dict(errors=True),
         notes="H.264 in Matroska, bytes flipped in the middle of the stream (FFmpeg conceals the "
               "damage with warnings; every frame still decodes)"),
    dict(name="bitflip_vp9.webm", kind="damaged", from_="damage_src.webm", post=("flip",),
         expect=dict(differs=True),
         notes="VP9 in WebM, bytes flipped in the middle of the stream (FFmpeg's VP9 decoder reports "
               "no error: the decoded pixels differ from the undamaged stream's)"),
    dict(name="cut_gop.ts", kind="damaged", from_="damage_src.ts", post=("cut",),
         expect=dict(errors=True, fewer_frames=True),
         notes="MPEG-TS H.264 with a run of whole TS packets removed from the middle (a cut GOP: "
               "fewer frames, decoder warnings)"),
    dict(name="empty.mp4", kind="bad", raw=b"", notes="zero-length file"),
    dict(name="text.mp4", kind="bad", raw=b"this is a text file, not a video\n" * 4,
         notes="a text file named .mp4"),
]

# Intermediate files (not in the table): sources of the rotated and damaged files.
SOURCES = {
    "rot_src.mov": halves("96x64", 25, 1) + X264 + ["-pix_fmt", "yuv420p"],
    "damage_src.mp4": src("320x240", 25, 2) + X264 + ["-pix_fmt", "yuv420p", "-g", "25",
                                                       "-movflags", "+faststart"],
    "damage_src.mkv": src("320x240", 25, 4) + X264 + ["-pix_fmt", "yuv420p", "-g", "50"],
    "damage_src.webm": src("320x240", 25, 4) + ["-c:v", "libvpx-vp9", "-b:v", "800k", "-deadline",
                                                "realtime", "-cpu-used", "8", "-threads", "1",
                                                "-g", "50", "-pix_fmt", "yuv420p"],
    "damage_src.ts": src("320x240", 25, 4) + X264 + ["-pix_fmt", "yuv420p", "-g", "50"],
}


def run(cmd, **kw):
    r = subprocess.run(cmd, stdout=kw.pop("stdout", subprocess.PIPE), stderr=subprocess.PIPE, **kw)
    if r.returncode != 0:
        raise RuntimeError(f"{cmd!r} failed ({r.returncode}): {r.stderr.decode(errors='replace')}")
    return r


def encode(args, path, pipe=False):
    if pipe:
        with open(path, "wb") as out:
            run(FF + args + ["pipe:1"], stdout=out)
    else:
        run(FF + args + [path])


def post_process(spec, src_path, path):
    op = spec["post"]
    data = bytearray(open(src_path, "rb").read())
    if op[0] == "rotate":
        # The ffmpeg 5.1 CLI turns a stream's `rotate` tag into the display matrix on a stream copy;
        # the tag is the counter-clockwise angle ffprobe prints (checked against `expect`).
        run(FF + ["-i", src_path, "-map", "0", "-c", "copy", "-metadata:s:v:0",
                  f"rotate={(360 - op[1]) % 360}", path])
        return
    if op[0] == "badnal":
        r = run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "packet=pos,flags",
                 "-of", "csv=p=0", src_path])
        packets = [line.split(",") for line in r.stdout.decode().split()]
        k = int(len(packets) * op[1])
        while packets[k][1].startswith("K"):
            k += 1
        pos = int(packets[k][0])
        data[pos:pos + 4] = b"\xff\xff\xff\xff"
    elif op[0] == "truncate":
        data = data[:int(len(data) * op[1])]
    elif op[0] == "flip":
        # XOR one byte in every 61 over 3 % of the file around its middle: hits frame payloads
        # while most container headers (Matroska resyncs on its cluster IDs) stay readable.
        mid, span = len(data) // 2, max(64, len(data) * 3 // 100)
        for i in range(mid - span // 2, mid + span // 2, 61):
            data[i] ^= 0x5A
    elif op[0] == "cut":
        # Removes whole 188-byte TS packets (the demuxer stays in sync; the decoder loses data).
        packets = len(data) // 188
        start, count = packets * 2 // 5, packets // 8
        data = data[:start * 188] + data[(start + count) * 188:]
    with open(path, "wb") as f:
        f.write(data)


def probe(path):
    """ffprobe's view of a file: the row's measured columns (empty strings when no video)."""
    r = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-show_entries",
                        "stream=index,codec_type,codec_name,width,height,r_frame_rate,pix_fmt,"
                        "nb_read_frames:stream_side_data=rotation:format=start_time,duration",
                        "-of", "json", path], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    row = dict.fromkeys(COLUMNS[1:11], "")
    info = {"streams": [], "format": {}}
    if r.returncode == 0:
        info = json.loads(r.stdout.decode())
    videos = [s for s in info.get("streams", []) if s.get("codec_type") == "video"]
    fmt = info.get("format", {})
    if not videos or not str(videos[0].get("nb_read_frames", "0")).isdigit() or \
            int(videos[0].get("nb_read_frames", "0")) == 0:
        return row, info, r.stderr.decode(errors="replace")
    v = videos[0]
    ccw = 0
    for sd in v.get("side_data_list", []):
        if "rotation" in sd:
            ccw = int(round(float(sd["rotation"])))
    rotation = (-ccw) % 360
    w, h = int(v["width"]), int(v["height"])
    dw, dh = (h, w) if rotation in (90, 270) else (w, h)
    row.update(frames=str(int(v["nb_read_frames"])), width=str(w), height=str(h),
               display_width=str(dw), display_height=str(dh), rotation=str(rotation),
               fps=v.get("r_frame_rate", ""), codec=v.get("codec_name", ""),
               pix_fmt=v.get("pix_fmt", ""), start_time=fmt.get("start_time", ""))
    return row, info, r.stderr.decode(errors="replace")


def decode_errors(path):
    """The errors and warnings ffmpeg reports decoding the file's first video stream to nowhere."""
    r = subprocess.run(FF[:3] + ["-v", "warning", "-i", path, "-map", "0:v:0", "-f", "null", "-"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return r.stderr.decode(errors="replace").strip()


def decoded_md5(path):
    return run(FF + ["-i", path, "-map", "0:v:0", "-f", "md5", "-"]).stdout.decode().strip()


def pts_out_of_decode_order(path):
    r = run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "packet=pts",
             "-of", "csv=p=0", path])
    pts = [int(x) for x in r.stdout.decode().split() if x.strip().lstrip("-").isdigit()]
    return any(b < a for a, b in zip(pts, pts[1:]))


def check(spec, row, info, probe_log, path, source):
    """Raises when the written file is not what its spec says it is."""
    name, kind, exp = spec["name"], spec["kind"], spec.get("expect", {})
    problems = []
    if kind in ("good", "damaged") and not row["frames"]:
        problems.append("ffprobe decodes no video frame")
    if kind == "bad" and row["frames"]:
        problems.append("a 'bad' file decodes")
    if kind == "good":
        err = probe_log.strip()  # ffprobe -v error decoded every frame
        if err:
            problems.append("a 'good' file decodes with errors: " + err[:300])
    if exp.get("fewer_frames") and int(row["frames"] or 0) >= int(probe(source)[0]["frames"]):
        problems.append("a 'damaged' file decodes as many frames as its source")
    if exp.get("differs") and decoded_md5(path) == decoded_md5(source):
        problems.append("a 'damaged' file decodes to the undamaged stream's pixels")
    if exp.get("errors") and not decode_errors(path):
        problems.append("a 'damaged' file decodes without any error")
    if "size" in exp and (row["width"], row["height"]) != tuple(str(v) for v in exp["size"]):
        problems.append(f"size {row['width']}x{row['height']}, wanted {exp['size']}")
    if "rotation" in exp and row["rotation"] != str(exp["rotation"]):
        problems.append(f"rotation {row['rotation']}, wanted {exp['rotation']}")
    if "start_time" in exp and abs(float(row["start_time"] or 0) - exp["start_time"]) > 0.05:
        problems.append(f"start_time {row['start_time']}, wanted {exp['start_time']}")
    if exp.get("no_duration") and info.get("format", {}).get("duration") not in (None, "N/A"):
        problems.append("the container has a duration")
    if exp.get("audio_first") and info["streams"][0].get("codec_type") != "audio":
        problems.append("the first stream is not audio")
    if exp.get("reorder") and not pts_out_of_decode_order(path):
        problems.append("packets are in presentation order")
    if problems:
        raise RuntimeError(f"{name}: " + "; ".join(problems))


def make(out):
    work = out + f".tmp-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(os.path.join(work, "src"))
    jobs = 2 if (os.cpu_count() or 1) <= 2 else 4
    with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
        list(pool.map(lambda kv: encode(kv[1], os.path.join(work, "src", kv[0])), SOURCES.items()))

        def one(spec):
            t0 = time.time()
            path = os.path.join(work, spec["name"])
            if "raw" in spec:
                with open(path, "wb") as f:
                    f.write(spec["raw"])
            elif "from_" in spec:
                post_process(spec, os.path.join(work, "src", spec["from_"]), path)
            else:
                encode(spec["args"], path, spec.get("pipe", False))
            row, info, log = probe(path)
            check(spec, row, info, log, path,
                  os.path.join(work, "src", spec["from_"]) if "from_" in spec else None)
            row.update(name=spec["name"], kind=spec["kind"], notes=spec["notes"])
            if os.environ.get("CORPUS_TIMES"):
                print(f"{time.time() - t0:6.2f} s {spec['name']}", flush=True)
            return row
        rows = list(pool.map(one, SPECS))
    shutil.rmtree(os.path.join(work, "src"))
    with open(os.path.join(work, "corpus.tsv"), "w", encoding="utf-8") as f:
        f.write("\t".join(COLUMNS) + "\n")
        for row in rows:
            f.write("\t".join(str(row[c]) for c in COLUMNS) + "\n")
    return work


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: make_corpus.py OUT_DIR")
    out = os.path.abspath(sys.argv[1])
    stamp = hashlib.sha256(open(os.path.abspath(__file__), "rb").read()).hexdigest()
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two ctest runs at once make it once
        try:
            if open(os.path.join(out, ".stamp")).read().strip() == stamp and \
                    os.path.exists(os.path.join(out, "corpus.tsv")):
                print(f"{out}: up to date")
                return
        except OSError:
            pass
        try:
            work = make(out)
        except BaseException:
            shutil.rmtree(out + f".tmp-{os.getpid()}", ignore_errors=True)
            raise
        with open(os.path.join(work, ".stamp"), "w") as f:
            f.write(stamp + "\n")
        old = out + f".old-{os.getpid()}"
        if os.path.exists(out):
            os.rename(out, old)
        os.rename(work, out)
        shutil.rmtree(old, ignore_errors=True)
    with open(os.path.join(out, "corpus.tsv"), encoding="utf-8") as f:
        n = sum(1 for _ in f) - 1
    print(f"{out}: {n} files")


if __name__ == "__main__":
    main()
