// The probe and the decoder's open on crafted files (issue 15): each file is made here (ffmpeg's
// CLI for the video, a few bytes of text for the playlists).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "vidfeat/common/error.h"
#include "vidfeat/decode/video_decoder.h"
#include "vidfeat/decode/video_probe.h"

namespace fs = std::filesystem;
using namespace vidfeat;

namespace {

fs::path tempDir() {
  static fs::path dir = [] {
    fs::path d = fs::temp_directory_path() / ("vidfeat-hardening-" + std::to_string(::getpid()));
    fs::create_directories(d);
    return d;
  }();
  return dir;
}

fs::path writeText(const std::string& name, const std::string& text) {
  fs::path p = tempDir() / name;
  std::ofstream(p, std::ios::binary) << text;
  return p;
}

double secondsSince(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

// A 9 KB MKV whose timestamps jump by 1e9 s after 3 frames: its header says 1e9 s, which at
// 30 fps was an estimate of 3e10 frames, so the start-up cost probe put it first on every resume.
TEST(ProbeBounds, HeaderDurationIsBoundedByTheFileSize) {
  const fs::path mkv = tempDir() / "jump.mkv";
  const std::string cmd =
      "ffmpeg -nostdin -v error -y -f lavfi -i testsrc=size=64x64:rate=30:d=0.2 "
      "-vf \"setpts='if(gte(N,3),PTS+1e9/TB,PTS)'\" -fps_mode passthrough -c:v mjpeg -q:v 10 '" +
      mkv.string() + "'";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  const ProbeResult r = probeVideo(mkv.string());
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_LT(r.fileBytes, 20000);
  EXPECT_GE(r.estimatedFrames, 1);
  EXPECT_LE(r.estimatedFrames, r.fileBytes / kMinBytesPerFrame);
  // An honest 10 s video of the same kind estimates more work than the lying one (which said
  // 3e10 frames before the bound).
  const fs::path honest = tempDir() / "honest.mkv";
  const std::string cmd2 =
      "ffmpeg -nostdin -v error -y -f lavfi -i testsrc=size=64x64:rate=30:d=10 -c:v mjpeg -q:v 10 "
      "'" +
      honest.string() + "'";
  ASSERT_EQ(std::system(cmd2.c_str()), 0) << cmd2;
  const ProbeResult h = probeVideo(honest.string());
  ASSERT_TRUE(h.ok) << h.error;
  EXPECT_NEAR(double(h.estimatedFrames), 300.0, 2.0);  // 10 s x 30 fps, as generated
  EXPECT_GT(h.cost(), r.cost());
}

// "ffconcat version 1.0 / file self.mp4": a playlist listing itself. FFmpeg picks the concat
// demuxer by content; it recursed until a segfault (small stacks) or "Too many open files".
TEST(ProbeBounds, SelfReferencingConcatIsRefusedAtProbeAndOpen) {
  const fs::path self = writeText("self.mp4", "ffconcat version 1.0\nfile self.mp4\n");
  ASSERT_LT(fs::file_size(self), 64u);
  const auto t0 = std::chrono::steady_clock::now();
  const ProbeResult r = probeVideo(self.string());
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.error.find("'concat'"), std::string::npos) << r.error;
  EXPECT_NE(r.error.find("not a video container"), std::string::npos) << r.error;
  try {
    VideoDecoder dec(self.string());
    ADD_FAILURE() << "the decoder opened a concat playlist";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("'concat'"), std::string::npos) << e.what();
    EXPECT_EQ(e.path(), self.string());
  }
  EXPECT_LT(secondsSince(t0), 1.0);
}

TEST(ProbeBounds, PlaylistsAreRefused) {
  const fs::path hls =
      writeText("playlist.mp4",
                "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\nplaylist.mp4\n#EXT-X-ENDLIST\n");
  ProbeResult r = probeVideo(hls.string());
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.error.find("'hls'"), std::string::npos) << r.error;
  const fs::path dash =
      writeText("manifest.mp4",
                "<?xml version=\"1.0\"?>\n<MPD xmlns=\"urn:mpeg:dash:schema:mpd:2011\" "
                "type=\"static\" mediaPresentationDuration=\"PT1S\"><Period><AdaptationSet>"
                "<Representation id=\"1\" bandwidth=\"1\"><BaseURL>manifest.mp4</BaseURL>"
                "</Representation></AdaptationSet></Period></MPD>\n");
  // (Debian's FFmpeg has no DASH demuxer: the file is then not a video of any format; refused.)
  r = probeVideo(dash.string());
  EXPECT_FALSE(r.ok) << "a DASH manifest opened";
  // A real container still opens.
  const fs::path ok = tempDir() / "ok.mp4";
  const std::string cmd =
      "ffmpeg -nostdin -v error -y -f lavfi -i testsrc=size=64x64:rate=30:d=0.2 -c:v mpeg4 '" +
      ok.string() + "'";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  r = probeVideo(ok.string());
  EXPECT_TRUE(r.ok) << r.error;
}

// FFmpeg's log goes through spdlog, its repeats cut: a file that makes FFmpeg complain for every
// packet cannot write megabytes. A truncated-everywhere MPEG-TS: 2000 packets of garbage after a
// valid start.
TEST(ProbeBounds, FFmpegLogIsRateLimited) {
  const fs::path ts = tempDir() / "garbage.ts";
  const std::string cmd =
      "ffmpeg -nostdin -v error -y -f lavfi -i testsrc=size=64x64:rate=30:d=2 -c:v mpeg2video '" +
      ts.string() + "'";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  {  // every 50th byte of the payload flipped: the decoder logs an error for most packets
    std::fstream f(ts, std::ios::in | std::ios::out | std::ios::binary);
    const auto size = int64_t(fs::file_size(ts));
    for (int64_t at = 4000; at < size; at += 50) {
      f.seekg(at);
      char c;
      f.get(c);
      f.seekp(at);
      f.put(char(c ^ 0x5a));
    }
  }
  // Everything written to stderr (FFmpeg's default callback writes there) and to spdlog.
  std::ostringstream captured;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(captured);
  auto previous = spdlog::default_logger();
  spdlog::set_default_logger(std::make_shared<spdlog::logger>("capture", sink));
  const fs::path errFile = tempDir() / "stderr.txt";
  std::fflush(stderr);
  const int savedErr = ::dup(2);
  const int errFd = ::open(errFile.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  ::dup2(errFd, 2);
  int64_t frames = 0;
  try {
    VideoDecoder dec(ts.string());
    DecodedFrame f;
    while (dec.next(f)) ++frames;
  } catch (const Error&) {
  }
  std::fflush(stderr);
  ::dup2(savedErr, 2);
  ::close(savedErr);
  ::close(errFd);
  spdlog::set_default_logger(previous);
  const std::string log = captured.str();
  const auto stderrBytes = fs::file_size(errFile);
  std::istringstream lines(log);
  int64_t n = 0, ffmpegLines = 0;
  for (std::string line; std::getline(lines, line); ++n)
    ffmpegLines += line.find("ffmpeg: ") != std::string::npos;
  std::printf(
      "decoded %lld frames; %lld log lines (%lld from FFmpeg), %zu bytes; %zu bytes on stderr\n",
      (long long)frames, (long long)n, (long long)ffmpegLines, log.size(), size_t(stderrBytes));
  EXPECT_GT(ffmpegLines, 0) << "the damage was not logged at all: the test does not test";
  EXPECT_LT(log.size(), 16u * 1024);
  EXPECT_LT(stderrBytes, 4u * 1024) << "FFmpeg wrote to stderr past vidfeat's log";
}
