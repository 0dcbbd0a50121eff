#!/usr/bin/python3
"""vidfeat's decode side against the FFmpeg CLI, on the same files and threads (issue 18).

  /usr/bin/python3 tools/bench/decode.py [--build build] [--threads N] [--seconds 10] [--repeat 3]
      [--videos a.mp4,b.webm] [--work /tmp/vidfeat-decode-bench] [--out BENCHMARKS.md] [--no-write]

Per video (by default four made here once and kept in --work, from testsrc2 with temporal noise so
the streams carry real residuals: 1080p and 360p H.264, 720p VP8 and VP9, 30 fps, --seconds long):

  ffmpeg decode        ffmpeg -threads N -i V -f null -                     (decode only)
  ffmpeg decode+scale  ffmpeg -threads N -i V -vf scale=-2:256,format=rgb24 -f null -
                       (the short side to 256 and RGB24, as vidfeat hands frames to clips)
  vidfeat rate 1 / 8   vidfeat bench decode --threads N with configs/Kinetics/SLOW_8x8_R50.yaml
                       (8 frames, crop 256), DATA.SAMPLING_RATE 1 and 8: decode, clip assembly,
                       crop and normalisation to floats, no model (src/pipeline/decode_rate.h)

Each figure is decoded frames over the real time of the work, median of --repeat runs: FFmpeg's
own `-benchmark` rtime (its process start and probing left out) and vidfeat's time from opening
the video to its last clip (its process start, LibTorch's loading, left out likewise). Goals: vidfeat
at rate 1 >= 0.9x FFmpeg's decode+scale; at rate 8 above it (frames no clip uses are decoded but
never converted; the `converted` column counts the frames that were).

The table goes to stdout and, unless --no-write, into --out between the markers below (the rest of
the file, bench.py's, is kept; bench.py keeps this section when it rewrites the file).
"""
import argparse
import datetime
import json
import os
import re
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
BEGIN = "<!-- tools/bench/decode.py: begin -->"
END = "<!-- tools/bench/decode.py: end -->"
CONFIG = os.path.join(REPO, "configs/Kinetics/SLOW_8x8_R50.yaml")

# name, size, encoder arguments
SOURCES = [
    ("h264_1080p.mp4", "1920x1080", ["-c:v", "libx264", "-preset", "veryfast", "-crf", "23",
                                     "-pix_fmt", "yuv420p"]),
    ("h264_360p.mp4", "640x360", ["-c:v", "libx264", "-preset", "veryfast", "-crf", "23",
                                  "-pix_fmt", "yuv420p"]),
    ("vp8_720p.webm", "1280x720", ["-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8",
                                   "-b:v", "3M", "-pix_fmt", "yuv420p"]),
    ("vp9_720p.webm", "1280x720", ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8",
                                   "-row-mt", "1", "-b:v", "2M", "-pix_fmt", "yuv420p"]),
]


def make_videos(work, seconds):
    os.makedirs(work, exist_ok=True)
    out = []
    for name, size, enc in SOURCES:
        path = os.path.join(work, f"{seconds}s_{name}")
        if not os.path.exists(path):
            print(f"decode bench: making {path}", file=sys.stderr, flush=True)
            subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                            f"testsrc2=size={size}:rate=30,noise=alls=12:allf=t",
                            "-t", str(seconds)] + enc + [path + ".tmp" + os.path.splitext(path)[1]],
                           check=True)
            os.replace(path + ".tmp" + os.path.splitext(path)[1], path)
        out.append(path)
    return out


def ffmpeg_rate(video, threads, filters):
    """(frames, seconds): FFmpeg's -benchmark rtime and the frames it output."""
    cmd = ["ffmpeg", "-nostdin", "-hide_banner", "-benchmark", "-threads", str(threads), "-i", video]
    if filters:
        cmd += ["-vf", filters]
    cmd += ["-f", "null", "-"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: exit {r.returncode}: {r.stderr[-400:]}")
    rtime = re.findall(r"rtime=([0-9.]+)s", r.stderr)
    frames = re.findall(r"frame=\s*([0-9]+)", r.stderr)
    if not rtime or not frames:
        raise RuntimeError(f"{' '.join(cmd)}: no frame count or rtime in its output")
    return int(frames[-1]), float(rtime[-1])


def vidfeat_rate(vidfeat, video, threads, rate, work):
    js = os.path.join(work, "last.json")
    cmd = [vidfeat, "bench", "decode", video, "--config", CONFIG, "--set",
           f"DATA.SAMPLING_RATE={rate}", "--threads", str(threads), "--json", js]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: exit {r.returncode}: {r.stderr[-400:]}")
    with open(js) as f:
        v = json.load(f)["videos"][0]
    return v["decoded_frames"], v["seconds"], v["frames_converted"], v["clips"]


def median_rate(fn, repeat):
    runs = [fn() for _ in range(repeat)]
    runs.sort(key=lambda x: x[1])
    return runs[len(runs) // 2]


def probe(video):
    r = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                        "stream=codec_name,width,height", "-of", "csv=p=0", video],
                       capture_output=True, text=True)
    parts = r.stdout.strip().split(",")
    return f"{parts[0]} {parts[1]}x{parts[2]}" if len(parts) >= 3 else "?"


def mark(ok):
    return "✅" if ok else "❌"


def render(rows, meta):
    L = [BEGIN, "", "## Decoding alone (tools/bench/decode.py, issue 18)", "",
         f"{meta['date']}, commit {meta['commit']}, {meta['cpu']}, {meta['threads']} codec thread(s) on "
         f"both sides, median of {meta['repeat']} runs; frames/s = decoded frames / real time of the "
         "work (FFmpeg's `-benchmark` rtime; vidfeat's open-to-last-clip time). vidfeat: "
         "`vidfeat bench decode` with SLOW_8x8_R50's clips (8 frames, short side and crop 256, "
         "normalised floats), no model. Goals: rate 1 ≥ 0.9× FFmpeg decode+scale; rate 8 above it.", "",
         "| video | frames | ffmpeg decode | ffmpeg decode+scale | vidfeat rate 1 | ×d+s | vidfeat rate 8 | ×d+s | ×decode | converted at 8 |",
         "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            L.append(f"| {r['name']} | – | – | – | – | – | – | – | – | {r['error'][:120]} |")
            continue
        ds = r["ffmpeg_scale_fps"]
        g1 = r["rate1_fps"] / ds >= 0.9
        g8 = r["rate8_fps"] > ds
        L.append(f"| {r['name']} ({r['stream']}) | {r['frames']} | {r['ffmpeg_decode_fps']:.0f} | {ds:.0f} | "
                 f"{r['rate1_fps']:.0f} | {r['rate1_fps'] / ds:.2f} {mark(g1)} | {r['rate8_fps']:.0f} | "
                 f"{r['rate8_fps'] / ds:.2f} {mark(g8)} | {r['rate8_fps'] / r['ffmpeg_decode_fps']:.2f} | "
                 f"{r['rate8_converted']} of {r['frames']} |")
    L += ["", f"Command: `{meta['argv']}`", "", END, ""]
    return "\n".join(L)


def run_meta(tool):
    """When, on what and how a bench ran: date, commit, CPU model and the command line."""
    commit = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip() or "?"
    cpu = "?"
    try:
        cpu = re.search(r"model name\s*:\s*(.*)", open("/proc/cpuinfo").read()).group(1)
    except (OSError, AttributeError):
        pass
    return {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "commit": commit, "cpu": cpu, "argv": " ".join(["/usr/bin/python3", "tools/bench/" + tool] + sys.argv[1:])}


def write_section(path, section, begin=BEGIN, end=END):
    """Puts `section` (which starts with `begin` and ends with `end`) into the file at `path` in
    place of the text between those markers, or at its end; the rest of the file is kept."""
    text = open(path, encoding="utf-8").read() if os.path.exists(path) else ""
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        tail = rest.split(end, 1)[1].lstrip("\n")
        text = head + section + ("\n" + tail if tail else "")
    else:
        text = text.rstrip("\n") + ("\n\n" if text else "") + section
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(REPO, "build"))
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--videos", default="", help="comma-separated files instead of the generated ones")
    ap.add_argument("--work", default="/tmp/vidfeat-decode-bench")
    ap.add_argument("--out", default=os.path.join(REPO, "BENCHMARKS.md"))
    ap.add_argument("--no-write", action="store_true")
    a = ap.parse_args()
    vidfeat = os.path.join(os.path.abspath(a.build), "vidfeat")
    if not os.access(vidfeat, os.X_OK):
        sys.exit(f"decode bench: no {vidfeat} (build first, or give --build)")
    videos = [v for v in a.videos.split(",") if v] or make_videos(a.work, a.seconds)
    os.makedirs(a.work, exist_ok=True)
    rows = []
    for v in videos:
        row = {"name": os.path.basename(v)}
        try:
            row["stream"] = probe(v)
            f0, s0 = median_rate(lambda: ffmpeg_rate(v, a.threads, ""), a.repeat)
            f1, s1 = median_rate(lambda: ffmpeg_rate(v, a.threads, "scale=-2:256,format=rgb24"), a.repeat)
            n1, t1, c1, _ = median_rate(lambda: vidfeat_rate(vidfeat, v, a.threads, 1, a.work), a.repeat)
            n8, t8, c8, _ = median_rate(lambda: vidfeat_rate(vidfeat, v, a.threads, 8, a.work), a.repeat)
            row.update(frames=n1, ffmpeg_frames=f0, ffmpeg_decode_fps=f0 / s0, ffmpeg_scale_fps=f1 / s1,
                       rate1_fps=n1 / t1, rate8_fps=n8 / t8, rate1_converted=c1, rate8_converted=c8)
            if f0 != n1:
                print(f"decode bench: {v}: ffmpeg output {f0} frames, vidfeat decoded {n1}", file=sys.stderr)
        except Exception as e:  # one video's failure never hides the others
            row["error"] = str(e)
        rows.append(row)
        print(f"decode bench: {json.dumps(row)}", file=sys.stderr, flush=True)
    meta = dict(run_meta("decode.py"), threads=a.threads, repeat=a.repeat)
    with open(os.path.join(a.work, "decode.json"), "w") as f:
        json.dump({"meta": meta, "rows": rows}, f, indent=1)
    section = render(rows, meta)
    print(section)
    if not a.no_write:
        write_section(a.out, section)
    return 1 if any("error" in r for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
