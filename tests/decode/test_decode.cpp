// Tests of the FFmpeg decode stage against the generated corpus (tests/support/make_corpus.py:
// every codec, pixel format, size, rotation and damage it makes, each file's frame count and sizes
// as ffprobe reported them in corpus.tsv, and the pixel patterns its notes describe) and against
// synthetic videos made here with the ffmpeg CLI (whose content, order and timestamps are known).
// The real videos of ../shared/videos are the extra suite test_decode_shared.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "decode_helpers.h"
#include "test_support.h"
#include "vidfeat/common/error.h"
#include "vidfeat/decode/video_decoder.h"

namespace vidfeat {
namespace {

using decodetest::convertFrame;
using decodetest::decodeAll;
using decodetest::Decoded;
using testing::corpus;
using testing::CorpusEntry;
using testing::corpusEntry;
using testing::makeVideo;
using testing::ScratchDir;
namespace fs = std::filesystem;

std::vector<const CorpusEntry*> rowsOfKind(const std::string& kind) {
  std::vector<const CorpusEntry*> rows;
  for (const CorpusEntry& e : corpus())
    if (e.kind == kind) rows.push_back(&e);
  return rows;
}

// ---- every file of the corpus against what ffprobe reported for it ----

TEST(DecodeCorpus, CoversTheCasesItIsFor) {
  // The table the other tests iterate over has every kind of file in it (a generator that
  // silently dropped rows would otherwise make them pass on nothing).
  std::set<std::string> codecs;
  std::set<int> rotations;
  bool tenBit = false, yuv444 = false, tiny = false, odd = false, offset = false;
  for (const CorpusEntry& e : corpus()) {
    codecs.insert(e.codec);
    rotations.insert(e.rotation);
    tenBit |= e.pixFmt.find("10") != std::string::npos;
    yuv444 |= e.pixFmt.find("444") != std::string::npos;
    tiny |= e.kind == "good" && e.width == 1 && e.height == 1;
    odd |= e.kind == "good" && e.width % 2 == 1 && e.height % 2 == 1;
    offset |= e.kind == "good" && e.startTime > 1.0;
  }
  for (const char* c : {"h264", "hevc", "vp8", "vp9", "mpeg4", "mjpeg", "gif"})
    EXPECT_TRUE(codecs.count(c)) << c;
  EXPECT_EQ(rotations, (std::set<int>{0, 90, 180, 270}));
  EXPECT_TRUE(tenBit && yuv444 && tiny && odd && offset);
  EXPECT_GE(rowsOfKind("damaged").size(), 3u);
  EXPECT_GE(rowsOfKind("bad").size(), 2u);
}

// Frame count (ffprobe -count_frames), codec, coded and display size, rotation, start time and
// the frame spacing (r_frame_rate) of every good file; frames in strictly increasing time.
TEST(DecodeCorpus, GoodFilesDecodeToWhatFfprobeReports) {
  const auto rows = rowsOfKind("good");
  ASSERT_FALSE(rows.empty());
  for (const CorpusEntry* e : rows) {
    SCOPED_TRACE(e->name);
    VideoDecoder decoder(e->path().string());
    EXPECT_EQ(decoder.info().codec, e->codec);
    EXPECT_EQ(decoder.info().codedWidth, e->width);
    EXPECT_EQ(decoder.info().codedHeight, e->height);
    EXPECT_EQ(decoder.info().rotation, e->rotation);
    EXPECT_EQ(decoder.info().displayWidth, e->displayWidth);
    EXPECT_EQ(decoder.info().displayHeight, e->displayHeight);
    EXPECT_EQ(decoder.outputWidth(), e->displayWidth);
    EXPECT_EQ(decoder.outputHeight(), e->displayHeight);
    std::vector<double> pts;
    DecodedFrame frame;
    while (decoder.next(frame)) {
      EXPECT_EQ(frame.index, static_cast<int64_t>(pts.size()));
      pts.push_back(frame.pts);
    }
    const DecodeStats& s = decoder.stats();
    EXPECT_EQ(s.framesDecoded, e->frames);
    EXPECT_EQ(static_cast<int64_t>(pts.size()), e->frames);
    EXPECT_EQ(s.decodeErrors, 0);
    EXPECT_EQ(s.framesCorrupt, 0);
    EXPECT_EQ(s.framesLate, 0);
    for (size_t i = 1; i < pts.size(); ++i) EXPECT_LT(pts[i - 1], pts[i]) << "frame " << i;
    if (pts.empty()) continue;
    // The first frame is at the container's start time unless another stream (audio) starts
    // first; times are kept as stored, not shifted to 0.
    if (!e->notesSay("audio") && !e->notesSay("AAC") && !e->notesSay("Vorbis")) {
      EXPECT_NEAR(pts[0], e->startTime, 1e-3);
    } else {
      EXPECT_GE(pts[0], e->startTime - 1e-3);
    }
    // Constant frame rate: frame i is i / r_frame_rate after the first (1 ms: Matroska's
    // timestamp resolution).
    if (!e->notesSay("variable frame rate")) {
      const double fps = e->fpsValue();
      ASSERT_GT(fps, 0.0);
      for (size_t i = 1; i < pts.size(); ++i) {
        EXPECT_NEAR(pts[i] - pts[0], i / fps, 1e-3) << "frame " << i;
      }
    }
  }
}

// Damaged files (truncated, bytes flipped, TS packets cut out) decode without throwing to the
// frame count ffprobe decodes from them; a packet the generator made for the decoder to reject
// is counted in decodeErrors. (Otherwise the damage need not show in DecodeStats: FFmpeg conceals
// flipped H.264/VP9 bytes and cut TS packets without an error return or a corrupt flag on the
// frame, so decodeErrors and framesCorrupt stay 0 for those.)
TEST(DecodeCorpus, DamagedFilesDecodeToWhatFfprobeDecodes) {
  const auto rows = rowsOfKind("damaged");
  ASSERT_FALSE(rows.empty());
  for (const CorpusEntry* e : rows) {
    SCOPED_TRACE(e->name);
    Decoded d;
    ASSERT_NO_THROW(d = decodeAll(e->path()));
    std::printf("%s: %lld frames (ffprobe %lld), %lld decode errors, %lld corrupt-flagged\n",
                e->name.c_str(), static_cast<long long>(d.stats.framesDecoded),
                static_cast<long long>(e->frames), static_cast<long long>(d.stats.decodeErrors),
                static_cast<long long>(d.stats.framesCorrupt));
    EXPECT_GT(d.stats.framesDecoded, 0);
    EXPECT_EQ(d.stats.framesDecoded, e->frames);
    // Where the generator made a packet the decoder rejects (notes), the decoder counts it.
    if (e->notesSay("an error FFmpeg returns")) {
      EXPECT_GE(d.stats.decodeErrors, 1);
    }
  }
}

void expectInputError(const fs::path& path, const std::string& reasonPart) {
  try {
    VideoDecoder decoder(path.string());
    ADD_FAILURE() << "no InputError for " << path;
  } catch (const InputError& e) {
    std::string what = e.what();
    EXPECT_NE(what.find(path.string()), std::string::npos) << what;
    EXPECT_NE(what.find(reasonPart), std::string::npos) << what;
    EXPECT_EQ(e.path(), path.string());
  }
}

// Files with no decodable video (ffprobe decodes no frame: zero-length, text) are refused at open
// with an InputError naming the file and FFmpeg's reason.
TEST(DecodeCorpus, BadFilesAreInputErrorsNamingTheFile) {
  const auto rows = rowsOfKind("bad");
  ASSERT_FALSE(rows.empty());
  for (const CorpusEntry* e : rows) {
    SCOPED_TRACE(e->name);
    EXPECT_EQ(e->frames, -1);
    expectInputError(e->path(), "Invalid data");
  }
}

// ---- pixels the generator put there (corpus.tsv notes) ----

using Rgb = std::array<double, 3>;

// "rgb(R,G,B)" after `label` in the notes.
bool noteColour(const std::string& notes, const std::string& label, Rgb& out) {
  std::smatch m;
  const std::regex re(label + R"([^;]*?rgb\((\d+),(\d+),(\d+)\))");
  if (!std::regex_search(notes, m, re)) return false;
  out = {std::stod(m[1]), std::stod(m[2]), std::stod(m[3])};
  return true;
}

// Mean RGB of the rectangle [x0, x1) x [y0, y1) of a packed RGB24 image `w` wide.
Rgb meanOf(const std::vector<uint8_t>& rgb, int w, int x0, int y0, int x1, int y1) {
  Rgb sum{0, 0, 0};
  for (int y = y0; y < y1; ++y)
    for (int x = x0; x < x1; ++x)
      for (int c = 0; c < 3; ++c) sum[c] += rgb[(size_t(y) * w + x) * 3 + c];
  const double n = double(x1 - x0) * (y1 - y0);
  return {sum[0] / n, sum[1] / n, sum[2] / n};
}

// Lossy codecs: within 16 levels per channel of the colour put there, averaged over a region
// away from the edges (red and blue differ by 255 in two channels, so a swapped or misplaced
// half fails by far).
void expectColour(const Rgb& got, const Rgb& want, const std::string& where) {
  for (int c = 0; c < 3; ++c) EXPECT_NEAR(got[c], want[c], 16.0) << where << " channel " << c;
}

// Files whose coded frames are a left and a right half of two colours: after the rotation the
// display matrix asks for (clockwise), the left half is at the left (0), top (90), right (180)
// or bottom (270), in every frame, at display size and resized (3/4 of it, as the pipeline's
// short-side scaling does: the resize works in display orientation).
TEST(DecodeCorpusPixels, HalvesLandWhereTheRotationPutsThem) {
  int checked = 0;
  std::set<int> rotations;
  for (const CorpusEntry& e : corpus()) {
    Rgb left, right;
    if (e.kind != "good" || !noteColour(e.notes, "left half", left) ||
        !noteColour(e.notes, "right half", right))
      continue;
    for (bool resize : {false, true}) {
      SCOPED_TRACE(e.name + (resize ? " resized" : " display size"));
      VideoDecoder decoder(e.path().string());
      ASSERT_EQ(decoder.outputWidth(), e.displayWidth);
      ASSERT_EQ(decoder.outputHeight(), e.displayHeight);
      if (resize) decoder.setOutputSize(e.displayWidth * 3 / 4, e.displayHeight * 3 / 4);
      const int w = decoder.outputWidth(), h = decoder.outputHeight();
      DecodedFrame frame;
      int64_t frames = 0;
      while (decoder.next(frame)) {
        const std::vector<uint8_t> rgb = convertFrame(decoder);
        ASSERT_EQ(rgb.size(), size_t(w) * h * 3);
        // The two halves of the display image along the axis the coded x axis ends up on, each
        // without the quarter next to the edge between them and the image border.
        Rgb first, second;  // first: left (0) / top (90) / right (180) / bottom (270) half
        if (e.rotation == 0 || e.rotation == 180) {
          Rgb l = meanOf(rgb, w, w / 8, h / 8, w * 3 / 8, h * 7 / 8);
          Rgb r = meanOf(rgb, w, w * 5 / 8, h / 8, w * 7 / 8, h * 7 / 8);
          first = e.rotation == 0 ? l : r;
          second = e.rotation == 0 ? r : l;
        } else {
          Rgb t = meanOf(rgb, w, w / 8, h / 8, w * 7 / 8, h * 3 / 8);
          Rgb b = meanOf(rgb, w, w / 8, h * 5 / 8, w * 7 / 8, h * 7 / 8);
          first = e.rotation == 90 ? t : b;
          second = e.rotation == 90 ? b : t;
        }
        expectColour(first, left, "frame " + std::to_string(frame.index) + " coded-left half");
        expectColour(second, right, "frame " + std::to_string(frame.index) + " coded-right half");
        ++frames;
      }
      EXPECT_EQ(frames, e.frames);
    }
    rotations.insert(e.rotation);
    ++checked;
  }
  // The corpus has halves files in each of the four orientations.
  EXPECT_EQ(rotations, (std::set<int>{0, 90, 180, 270}));
  EXPECT_GE(checked, 4);
}

// Files of one solid colour (tiny sizes, 10-bit): every pixel of every frame is that colour.
TEST(DecodeCorpusPixels, SolidColourFiles) {
  int checked = 0;
  for (const CorpusEntry& e : corpus()) {
    Rgb want;
    if (e.kind != "good" || !noteColour(e.notes, "solid", want)) continue;
    SCOPED_TRACE(e.name);
    VideoDecoder decoder(e.path().string());
    DecodedFrame frame;
    int64_t frames = 0;
    while (decoder.next(frame)) {
      const std::vector<uint8_t> rgb = convertFrame(decoder);
      ASSERT_EQ(rgb.size(), size_t(e.displayWidth) * e.displayHeight * 3);
      for (size_t p = 0; p < rgb.size() / 3; ++p) {
        for (int c = 0; c < 3; ++c) {
          ASSERT_NEAR(rgb[p * 3 + c], want[c], 16.0)
              << "frame " << frame.index << " pixel " << p << " channel " << c;
        }
      }
      ++frames;
    }
    EXPECT_EQ(frames, e.frames);
    ++checked;
  }
  EXPECT_GE(checked, 2);
}

// The rotated output is what FFmpeg's own autorotate (the ffmpeg CLI, players) shows.
TEST(DecodeCorpusPixels, RotationMatchesFfmpegAutorotate) {
  int checked = 0;
  for (const CorpusEntry& e : corpus()) {
    if (e.kind != "good" || e.rotation == 0) continue;
    SCOPED_TRACE(e.name);
    decodetest::expectSameAsCli(e.path());
    ++checked;
  }
  EXPECT_GE(checked, 3);
}

// ---- timestamps of particular corpus files ----

TEST(DecodeCorpusTimestamps, VariableFrameRate) {
  // vfr.mp4: 1 s at 10 fps then 1 s at 30 fps (make_corpus.py): gaps of 1/10 s, then of 1/30 s.
  const CorpusEntry& e = corpusEntry("vfr.mp4");
  ASSERT_TRUE(e.notesSay("10 fps then 1 s at 30 fps")) << e.notes;
  Decoded d = decodeAll(e.path());
  ASSERT_EQ(static_cast<int64_t>(d.pts.size()), e.frames);
  size_t slow = 0;
  while (slow + 1 < d.pts.size() && std::abs(d.pts[slow + 1] - d.pts[slow] - 0.1) < 1e-3) ++slow;
  EXPECT_EQ(slow, 10u);  // frames 0..9 are 0.1 s apart, frame 10 starts the 30 fps part
  for (size_t i = slow + 1; i < d.pts.size(); ++i) {
    EXPECT_NEAR(d.pts[i] - d.pts[i - 1], 1 / 30.0, 1e-3) << "frame " << i;
  }
  EXPECT_NEAR(d.pts[slow] - d.pts[0], 1.0, 1e-3);
}

TEST(DecodeCorpusTimestamps, StartOffsetIsKept) {
  // start_offset.mkv was written with -output_ts_offset; corpus.tsv has ffprobe's start_time.
  const CorpusEntry& e = corpusEntry("start_offset.mkv");
  ASSERT_GT(e.startTime, 1.0);
  VideoDecoder decoder(e.path().string());
  EXPECT_NEAR(decoder.info().startTime, e.startTime, 1e-3);
  Decoded d = decodeAll(e.path());
  ASSERT_FALSE(d.pts.empty());
  EXPECT_NEAR(d.pts.front(), e.startTime, 1e-3);
}

TEST(DecodeCorpusTimestamps, ThreadCountDoesNotChangeOutput) {
  for (const CorpusEntry* e : rowsOfKind("good")) {
    if (e->codec != "h264" && e->codec != "hevc" && e->codec != "vp9") continue;
    SCOPED_TRACE(e->name);
    Decoded single = decodeAll(e->path(), DecodeOptions{1});
    Decoded multi = decodeAll(e->path(), DecodeOptions{4});
    EXPECT_EQ(single.pts, multi.pts);
    EXPECT_EQ(single.stats.framesDecoded, e->frames);
  }
}

TEST(DecodeCorpusInfo, HeaderHints) {
  // MP4 has a frame count in its header; WebM has none; a WebM written through a pipe has no
  // duration either (make_corpus.py checks both with ffprobe).
  for (const CorpusEntry& e : corpus()) {
    if (e.kind != "good") continue;
    SCOPED_TRACE(e.name);
    VideoDecoder d(e.path().string());
    if (e.name.size() > 4 && e.name.substr(e.name.size() - 4) == ".mp4" &&
        !e.notesSay("variable")) {
      EXPECT_EQ(d.info().frameCountHint, e.frames);
      EXPECT_NEAR(d.info().avgFps, e.fpsValue(), 1e-6);
      EXPECT_NEAR(d.info().durationHint, e.frames / e.fpsValue(), 0.1);
    }
    if (e.notesSay("no frame count in the header") || e.notesSay("no duration")) {
      EXPECT_EQ(d.info().frameCountHint, -1);
    }
    if (e.notesSay("no duration")) {
      EXPECT_EQ(d.info().durationHint, -1.0);
    }
  }
}

// ---- resize accuracy against PySlowFast's torch bilinear ----

TEST(DecodeResize, MatchesTorchBilinearDownscale) {
  decodetest::expectResizeMatchesTorch(corpusEntry("h264_bframes.mp4").path(), 171, 128);
}

TEST(DecodeResize, MatchesTorchBilinearUpscale) {
  decodetest::expectResizeMatchesTorch(corpusEntry("h264_981_50_aac.mp4").path(), 341, 256);
}

TEST(DecodeResize, MatchesTorchBilinearNonUniform) {
  decodetest::expectResizeMatchesTorch(corpusEntry("h264_bframes.mp4").path(), 224, 224);
}

TEST(DecodeResize, MatchesTorchBilinearRotated) {
  decodetest::expectResizeMatchesTorch(corpusEntry("rot90.mov").path(), 128, 171);
}

// ---- errors and file names ----

TEST(DecodeErrors, MissingFile) {
  ScratchDir dir;
  expectInputError(dir / "missing.mp4", "No such file or directory");
}

TEST(DecodeErrors, TextFileNamedMp4) {
  ScratchDir dir;
  std::ofstream(dir / "notes.mp4") << "these are not the frames you are looking for\n";
  expectInputError(dir / "notes.mp4", "Invalid data");
}

TEST(DecodeErrors, AudioOnlyFile) {
  ScratchDir dir;
  fs::path audio = dir / "tone.m4a";
  makeVideo(audio, "sine=d=1", "-c:a aac");
  expectInputError(audio, "no video stream");
}

TEST(DecodeErrors, ConvertWithoutFrame) {
  const CorpusEntry& e = corpusEntry("bframes.mov");
  VideoDecoder decoder(e.path().string());
  std::vector<uint8_t> rgb(size_t(e.displayWidth) * e.displayHeight * 3);
  EXPECT_THROW(decoder.convert(rgb.data()), std::logic_error);
}

// Relative names that look like options ("-dash.mp4") or protocols ("clip:1.mov"), with spaces
// or non-ASCII letters, opened from the current directory: each decodes to ffprobe's count.
TEST(DecodeErrors, RelativeNamesThatLookLikeOptionsOrProtocols) {
  ScratchDir dir;
  struct Copy {
    std::string from, as;
  };
  const std::vector<Copy> copies = {{"-dash.mp4", "-dash.mp4"},
                                    {"bframes.mov", "clip:1.mov"},
                                    {"with space.mp4", "with space.mp4"},
                                    {"vidéo_ü.mp4", "vidéo_ü.mp4"},
                                    {"bframes.mov", "file:odd.mov"}};
  for (const Copy& c : copies) fs::copy_file(corpusEntry(c.from).path(), dir / c.as);
  const fs::path cwd = fs::current_path();
  fs::current_path(dir.path());
  std::vector<int64_t> counts;
  for (const Copy& c : copies) counts.push_back(decodeAll(c.as).stats.framesDecoded);
  fs::current_path(cwd);
  for (size_t i = 0; i < copies.size(); ++i) {
    EXPECT_EQ(counts[i], corpusEntry(copies[i].from).frames) << copies[i].as;
  }
}

// ---- synthetic videos: order, timestamps ----

TEST(DecodeOrder, FramesComeOutInOrderWithExactTimes) {
  // Each frame's luma is 16 + 8 * its index (lossless H.264 with B-frames, so the decoder has to
  // reorder).
  ScratchDir dir;
  fs::path video = dir / "index.mp4";
  makeVideo(video, "nullsrc=s=64x48:r=25:d=1,geq=lum=16+N*8:cb=128:cr=128",
            "-c:v libx264 -qp 0 -bf 3 -pix_fmt yuv420p");
  VideoDecoder decoder(video.string());
  const double start = decoder.info().startTime;
  DecodedFrame frame;
  int64_t count = 0;
  while (decoder.next(frame)) {
    EXPECT_EQ(frame.index, count);
    EXPECT_NEAR(frame.pts, start + count / 25.0, 1e-9);
    std::vector<uint8_t> rgb = convertFrame(decoder);
    double mean = 0;
    for (uint8_t v : rgb) mean += v;
    mean /= rgb.size();
    // Limited-range BT.601: RGB = (Y - 16) * 255 / 219.
    EXPECT_NEAR(mean, count * 8 * 255.0 / 219.0, 1.0) << "frame " << count;
    ++count;
  }
  EXPECT_EQ(count, 25);
  EXPECT_EQ(decoder.stats().framesConverted, 25);
}

TEST(DecodeTimestamps, VariableFrameRate) {
  // Frame n is shown at n(n+1)/2 ticks of 1/25 s: gaps of 1, 2, 3, ... frames.
  ScratchDir dir;
  fs::path video = dir / "vfr.mkv";
  makeVideo(video, "testsrc=s=64x48:r=25:d=0.8,setpts=N*(N+1)/2",
            "-fps_mode passthrough -c:v libx264 -pix_fmt yuv420p");
  Decoded d = decodeAll(video);
  ASSERT_EQ(d.pts.size(), 20u);
  for (size_t n = 0; n < d.pts.size(); ++n) {
    EXPECT_NEAR(d.pts[n], n * (n + 1) / 2 / 25.0, 1e-9) << "frame " << n;
  }
}

TEST(DecodeTimestamps, StartOffsetIsKept) {
  ScratchDir dir;
  fs::path video = dir / "offset.mkv";
  makeVideo(video, "testsrc=s=64x48:r=25:d=0.4",
            "-output_ts_offset 10 -c:v libx264 -pix_fmt yuv420p");
  VideoDecoder decoder(video.string());
  EXPECT_NEAR(decoder.info().startTime, 10.0, 1e-9);
  DecodedFrame frame;
  int64_t count = 0;
  while (decoder.next(frame)) {
    EXPECT_NEAR(frame.pts, 10.0 + count / 25.0, 1e-9);
    ++count;
  }
  EXPECT_EQ(count, 10);
}

// ---- rotation of a stream-copied tag ----

TEST(DecodeRotation, AsymmetricPatternLandsWhereTheRotationSays) {
  // A white block in the top-left quadrant of a black 64x48 frame, then a rotation tag added
  // while stream copying (ffmpeg 5.1 turns it into a display matrix; the sign it uses differs
  // between FFmpeg versions, so the expected corner follows info().rotation, and the CLI check
  // pins the direction).
  ScratchDir dir;
  fs::path plain = dir / "plain.mp4";
  fs::path rotated = dir / "rotated.mp4";
  makeVideo(plain, "color=black:s=64x48:r=25:d=0.2,drawbox=x=0:y=0:w=32:h=24:color=white:t=fill",
            "-c:v libx264 -qp 0 -pix_fmt yuv420p");
  std::string cmd = "ffmpeg -nostdin -loglevel error -y -i '" + plain.string() +
                    "' -c copy -metadata:s:v:0 rotate=90 '" + rotated.string() + "'";
  ASSERT_EQ(testing::run(cmd), 0) << cmd;

  VideoDecoder decoder(rotated.string());
  const int rotation = decoder.info().rotation;
  ASSERT_TRUE(rotation == 90 || rotation == 270) << rotation;
  ASSERT_EQ(decoder.outputWidth(), 48);
  ASSERT_EQ(decoder.outputHeight(), 64);
  DecodedFrame frame;
  ASSERT_TRUE(decoder.next(frame));
  std::vector<uint8_t> rgb = convertFrame(decoder);
  auto quadrantMean = [&](int qx, int qy) {
    double sum = 0;
    for (int y = qy * 32; y < qy * 32 + 32; ++y)
      for (int x = qx * 24; x < qx * 24 + 24; ++x) sum += rgb[(y * 48 + x) * 3];
    return sum / (32 * 24);
  };
  // Clockwise 90: the top-left block goes to the top right; clockwise 270: to the bottom left.
  const int whiteX = rotation == 90 ? 1 : 0;
  const int whiteY = rotation == 90 ? 0 : 1;
  for (int qy = 0; qy < 2; ++qy) {
    for (int qx = 0; qx < 2; ++qx) {
      double mean = quadrantMean(qx, qy);
      if (qx == whiteX && qy == whiteY) {
        EXPECT_GT(mean, 250) << qx << "," << qy;
      } else {
        EXPECT_LT(mean, 5) << qx << "," << qy;
      }
    }
  }
  decodetest::expectSameAsCli(rotated);
}

}  // namespace
}  // namespace vidfeat
