"""Lying headers never stop the job nor blow up its memory: containers claiming 10^9 frames,
16384x16384 or 16384x2 frames, a zero or absurd time base, next to a good video, extracted with
2 ranks. Every entry ends complete (the claim ignored, frames counted by decoding) or failed with
a reason; the good video equals a run of it alone; the peak RSS of the ranks stays within a bound
of the run of the good video alone.

  test_hostile_headers.py VIDFEAT SOURCE_DIR CORPUS_DIR

The files are made here by patching the bytes of h264_bframes.mp4 of the generated corpus (its MP4
boxes) and of its Matroska remux, and by writing YUV4MPEG2 headers.
"""
import os
import struct
import subprocess
import sys
import tempfile

import h5py
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import vftest  # noqa: E402
from vftest import MPI_ENV as ENV, TINY, check, features_equal_alone, finish  # noqa: E402

VIDFEAT, SRC, CORPUS = sys.argv[1:4]
vftest.use_corpus(CORPUS)
CONFIG = os.path.join(SRC, "configs/Kinetics/SLOW_8x8_R50.yaml")
GOOD = vftest.corpus_video("h264_bframes.mp4")  # 320x240 H.264 with B-frames, one stts entry
GOOD_FRAMES = vftest.corpus_row("h264_bframes.mp4")["frames"]  # ffprobe -count_frames (corpus.tsv)

# Bound on the growth of a rank's peak RSS over the good video alone. Each claim, if trusted to
# size memory, costs far more: one 16384x16384 RGB frame is 768 MiB, a 16384x2 video scaled to a
# 64-pixel short side is 96 MiB a frame (a clip holds 4), 10^9 of anything per frame is >= 1 GB.
# Decoding these files for real needs no more than the good video (320x240 or smaller frames),
# so 160 MiB is slack for allocator noise only.
RSS_SLACK_KIB = 160 * 1024


def boxes(data, path, start=0, end=None):
    """(offset, size) of every MP4 box along `path` (a list of 4-byte types) inside data[start:end]."""
    end = len(data) if end is None else end
    found = []
    off = start
    while off + 8 <= end:
        size, kind = struct.unpack(">I4s", data[off:off + 8])
        header = 8
        if size == 1:
            size = struct.unpack(">Q", data[off + 8:off + 16])[0]
            header = 16
        elif size == 0:
            size = end - off
        if size < header:
            break
        if kind == path[0]:
            if len(path) == 1:
                found.append((off, size))
            else:  # stsd has 8 bytes (version, flags, entry count) before its entries
                inner = off + header + (8 if kind == b"stsd" else 0)
                found += boxes(data, path[1:], inner, off + size)
        off += size
    return found


def video_box(data, path):
    """The one box along `path` inside the video track of an MP4."""
    for off, size in boxes(data, [b"moov", b"trak"]):
        hdlr = boxes(data, [b"mdia", b"hdlr"], off + 8, off + size)
        if hdlr and data[hdlr[0][0] + 16:hdlr[0][0] + 20] == b"vide":
            (found,) = boxes(data, path, off + 8, off + size)
            return found
    raise RuntimeError("no video track")


def y4m(path, w, h, frames, rate="25:1", frame_bytes=None):
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F{rate} Ip A1:1 C420jpeg\n".encode())
        for i in range(frames):
            f.write(b"FRAME\n" + bytes([(37 * i) % 256]) * (frame_bytes or w * h * 3 // 2))


def rbsp(nal_payload):
    """Removes H.264 emulation prevention bytes (00 00 03 -> 00 00)."""
    out, zeros = bytearray(), 0
    for x in nal_payload:
        if zeros >= 2 and x == 3:
            zeros = 0
            continue
        out.append(x)
        zeros = zeros + 1 if x == 0 else 0
    return bytes(out)


def ebsp(payload):
    """Adds emulation prevention bytes back."""
    out, zeros = bytearray(), 0
    for x in payload:
        if zeros >= 2 and x <= 3:
            out.append(3)
            zeros = 0
        out.append(x)
        zeros = zeros + 1 if x == 0 else 0
    return bytes(out)


def resized_sps(sps, mbs_w, mbs_h):
    """A baseline-profile SPS (RBSP, after the NAL header byte) with its frame size replaced by
    mbs_w x mbs_h macroblocks and its cropping dropped; every other field kept bit for bit."""
    bits = "".join(format(b, "08b") for b in sps)
    pos = 0

    def u(n):
        nonlocal pos
        pos += n
        return bits[pos - n:pos]

    def ue():
        nonlocal pos
        z = bits.index("1", pos) - pos
        return u(2 * z + 1)

    def put_ue(v):
        return "0" * ((v + 1).bit_length() - 1) + format(v + 1, "b")

    out = u(8)  # profile_idc
    assert int(out, 2) == 66, "baseline profile (no chroma / bit depth fields)"
    out += u(16) + ue() + ue()  # constraint flags, level, sps id, log2_max_frame_num_minus4
    poc = ue()
    out += poc
    assert int(poc, 2) - 1 in (0, 2), "pic_order_cnt_type 0 or 2"
    if poc == "1":  # type 0
        out += ue()
    out += ue() + u(1)  # max_num_ref_frames, gaps_in_frame_num_allowed
    ue(), ue()
    out += put_ue(mbs_w - 1) + put_ue(mbs_h - 1)
    out += u(1) + u(1)  # frame_mbs_only (1 for x264 progressive), direct_8x8_inference
    if u(1) == "1":
        for _ in range(4):
            ue()
    out += "0" + bits[pos:]  # no cropping; VUI and trailing bits as they were
    out += "0" * (-len(out) % 8)
    return bytes(int(out[i:i + 8], 2) for i in range(0, len(out), 8))


def sps_grows(path, tmp):
    """H.264 (Annex B) that starts at 160x120 and whose third SPS, at frame 20, says 9216x9216
    (85 Mpixel: within FFmpeg's own limit, 768 MiB as RGB); the slices stay small."""
    src = os.path.join(tmp, "small.h264")
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc=d=2:s=160x120:r=25",
                    "-c:v", "libx264", "-profile:v", "baseline", "-x264-params", "keyint=10:repeat-headers=1",
                    "-pix_fmt", "yuv420p", src], check=True)
    d = open(src, "rb").read()
    os.remove(src)
    starts = [i for i in range(len(d) - 3) if d[i:i + 3] == b"\x00\x00\x01"] + [len(d)]
    out, sps_seen = bytearray(d[:starts[0]]), 0
    for a, b in zip(starts, starts[1:]):
        nal = d[a + 3:b]
        trailing = len(nal) - len(nal.rstrip(b"\x00"))  # the zero of a following 4-byte start code
        nal = nal[:len(nal) - trailing]
        if nal[0] & 0x1F == 7:
            sps_seen += 1
            if sps_seen >= 3:
                nal = nal[:1] + ebsp(resized_sps(rbsp(nal[1:]), 576, 576))
        out += b"\x00\x00\x01" + nal + b"\x00" * trailing
    assert sps_seen >= 3
    open(path, "wb").write(bytes(out))


def make_inputs(tmp):
    """{id: (path, expectation)}: 'complete', 'failed', or 'either'."""
    base = open(GOOD, "rb").read()
    made = {}

    def patched(name, edits, expect, data=base):
        d = bytearray(data)
        for off, fmt, value in edits:
            struct.pack_into(fmt, d, off, value)
        p = os.path.join(tmp, name)
        open(p, "wb").write(bytes(d))
        made[name] = (p, expect)

    # 10^9 frames: the time-to-sample table says 10^9 samples (ffprobe's nb_frames), the media
    # and movie durations are at their 32-bit maximum. The sample table is real: GOOD_FRAMES.
    stts, _ = video_box(base, [b"mdia", b"minf", b"stbl", b"stts"])
    mdhd, _ = video_box(base, [b"mdia", b"mdhd"])
    ((mvhd, _),) = boxes(base, [b"moov", b"mvhd"])
    patched("frames1e9.mp4", [(stts + 16, ">I", 10**9), (mdhd + 24, ">I", 0xFFFFFFFF),
                              (mvhd + 24, ">I", 0xFFFFFFFF)], "complete")
    # 10^9 entries in the sample size table, which holds GOOD_FRAMES: the demuxer must not trust it.
    stsz, _ = video_box(base, [b"mdia", b"minf", b"stbl", b"stsz"])
    patched("stsz1e9.mp4", [(stsz + 16, ">I", 10**9)], "failed")
    # 16384x16384 in the track header and the sample description (the SPS says 320x240).
    tkhd, tkhd_size = video_box(base, [b"tkhd"])
    avc1, _ = video_box(base, [b"mdia", b"minf", b"stbl", b"stsd", b"avc1"])
    patched("size16384.mp4", [(tkhd + tkhd_size - 8, ">I", 16384 << 16), (tkhd + tkhd_size - 4, ">I", 16384 << 16),
                              (avc1 + 32, ">H", 16384), (avc1 + 34, ">H", 16384)], "complete")
    # Time base: media timescale 0 and 2^31-1.
    patched("timescale0.mp4", [(mdhd + 20, ">I", 0)], "either")
    patched("timescale_max.mp4", [(mdhd + 20, ">I", 2**31 - 1)], "either")

    # Matroska: a Duration of 4*10^10 ms (10^9 frames at 25 fps), a TimecodeScale of 1 ns and
    # of 2^24-1 ns.
    mkv = os.path.join(tmp, "remux.mkv")
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", GOOD, "-an", "-c", "copy", mkv], check=True)
    m = open(mkv, "rb").read()
    os.remove(mkv)
    dur = m.find(b"\x44\x89\x88")  # Duration, an 8-byte float
    tcs = m.find(b"\x2a\xd7\xb1\x83")  # TimecodeScale, 3 bytes
    assert dur > 0 and tcs > 0, "the remux has a Duration and a 3-byte TimecodeScale"
    patched("frames1e9.mkv", [(dur + 3, ">d", 4e10)], "complete", m)
    patched("timecodescale1.mkv", [(tcs + 4, ">H", 0), (tcs + 6, ">B", 1)], "either", m)
    patched("timecodescale_max.mkv", [(tcs + 4, ">H", 0xFFFF), (tcs + 6, ">B", 0xFF)], "either", m)

    # YUV4MPEG2: a 16384x16384 header (beyond FFmpeg's own picture size limit) and a 16000x16000
    # one (within it) over 100 kB of data; real 16384x2 frames (a 8192:1 aspect ratio); frame
    # rates (the stream time base) 0:0 and 2147483647:1 over real 64x48 frames.
    for name, w, h, frames, rate, nbytes, expect in (
            ("size16384.y4m", 16384, 16384, 1, "25:1", 100000, "failed"),
            ("size16000.y4m", 16000, 16000, 1, "25:1", 100000, "failed"),
            ("wide16384x2.y4m", 16384, 2, 20, "25:1", None, "failed"),
            ("rate0.y4m", 64, 48, 20, "0:0", None, "either"),
            ("rate_max.y4m", 64, 48, 20, "2147483647:1", None, "either")):
        p = os.path.join(tmp, name)
        y4m(p, w, h, frames, rate, nbytes)
        made[name] = (p, expect)
    # A size change mid-stream: FFmpeg must not be let allocate 9216x9216 pictures.
    p = os.path.join(tmp, "sps_grows.h264")
    sps_grows(p, tmp)
    made["sps_grows.h264"] = (p, "either")
    return made


def extract(manifest, out):
    """Runs the job on 2 ranks; returns (CompletedProcess-like, peak RSS of its processes in KiB)."""
    cmd = ["mpirun", "-n", "2", "--oversubscribe", VIDFEAT, "extract", "--config", CONFIG, "--random-weights", "5",
           "--threads", "1", "--skip-invalid", "--video-timeout", "120", "--manifest", manifest, "--output", out] + TINY
    log = out + ".log"
    with open(log, "w") as f:
        p = subprocess.Popen(cmd, env=ENV, stdout=f, stderr=subprocess.STDOUT)
        # wait4's rusage covers mpirun and the ranks it waited for: ru_maxrss is the largest peak.
        _, status, usage = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
    p.output = open(log).read()
    return p, usage.ru_maxrss


tmp = tempfile.mkdtemp(prefix="vidfeat-headers-")
try:
    inputs = make_inputs(tmp)
    alone_m = os.path.join(tmp, "alone.csv")
    open(alone_m, "w").write("video_id,path\ngood,%s\n" % GOOD)
    alone = os.path.join(tmp, "alone.h5")
    r, rss_alone = extract(alone_m, alone)
    check(r.returncode == 0, f"the good video alone extracts {r.output[-1500:] if r.returncode else ''}")
    print(f"peak RSS, good video alone: {rss_alone / 1024:.0f} MiB")

    manifest = os.path.join(tmp, "m.csv")
    with open(manifest, "w") as f:
        f.write("video_id,path\ngood,%s\n" % GOOD + "".join(f"{k},{p}\n" for k, (p, _) in inputs.items()))
    out = os.path.join(tmp, "o.h5")
    r, rss = extract(manifest, out)
    check(r.returncode in (0, 3), f"the run finishes (exit {r.returncode}) {r.output[-3000:] if r.returncode not in (0, 3) else ''}")
    print(f"peak RSS, with the lying headers: {rss / 1024:.0f} MiB")
    check(rss <= rss_alone + RSS_SLACK_KIB,
          f"peak RSS {rss / 1024:.0f} MiB is within {RSS_SLACK_KIB // 1024} MiB of the good video alone ({rss_alone / 1024:.0f} MiB)")
    with h5py.File(out) as f:
        vids = {v["video_id"].decode(): v for v in vftest.video_table(f)}
        check(len(vids) == len(inputs) + 1, f"every entry has a row ({len(vids)} of {len(inputs) + 1})")
        for k, (_, expect) in inputs.items():
            v = vids[k]
            status = {0: "pending", 1: "complete", 2: "failed"}[int(v["status"])]
            err = v["error"].decode()
            print(f"  {k}: {status}, {int(v['decoded_frames'])} frames, {int(v['decode_errors'])} decode errors, "
                  f"{int(v['segment_count'])} segments, fps {float(v['fps']):.4g} {err[:150]}")
            check(status != "pending", f"{k} is not left pending")
            check(status != "failed" or err, f"{k}: a failure has a reason")
            check(expect == "either" or status == expect, f"{k} is {expect} (is {status}: {err[:120]})")
            if status == "complete":
                rows = f["segments"][v["first_row"]:v["first_row"] + v["segment_count"]]
                check(v["segment_count"] > 0 and np.all(np.isfinite(rows["start_time"]))
                      and np.all(np.diff(rows["start_time"]) >= 0), f"{k}: finite, ordered segment times")
        # The claims are ignored: the frame count is what decoding yields, and a false frame size
        # in the container does not change the frames (the SPS has the true one).
        for k in ("frames1e9.mp4", "frames1e9.mkv", "size16384.mp4"):
            check(int(vids[k]["decoded_frames"]) == GOOD_FRAMES,
                  f"{k}: {GOOD_FRAMES} frames decoded, not the header's claim ({int(vids[k]['decoded_frames'])})")
        g = vids["good"]
        good = f["features"][g["first_row"]:g["first_row"] + g["segment_count"]]
        s = vids["size16384.mp4"]
        lying = f["features"][s["first_row"]:s["first_row"] + s["segment_count"]]
        check(np.array_equal(lying, good), "size16384.mp4 gives the good video's features")
        # (size16384.y4m is refused by FFmpeg itself, with its own words.)
        for k, size in (("size16000.y4m", "16000x16000"), ("wide16384x2.y4m", "16384x2")):
            check(f"frame size {size}" in vids[k]["error"].decode(),
                  f"{k}: the reason names the size: {vids[k]['error'].decode()[:150]}")
    features_equal_alone(alone, good)
finally:
    finish(tmp)
