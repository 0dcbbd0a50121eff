// The extra suite over the real videos of ../shared/videos (ctest label `shared`): files gathered
// from other projects' test data, as users' datasets contain them. Frame counts, sizes and frame
// rates are read from ../shared/videos/README.md (ffprobe -count_frames / r_frame_rate). Every test
// reports SKIPPED with "../shared/videos absent" when the folder is not there; the main suite
// (test_decode over the generated corpus) covers the same cases without it.
#include <gtest/gtest.h>

#include <cctype>
#include <cstdlib>
#include <fstream>
#include <map>
#include <regex>
#include <string>
#include <vector>

#include "cuda_probe.h"
#include "decode_helpers.h"
#include "pillow.h"
#include "test_support.h"
#include "vidfeat/decode/video_decoder.h"

namespace vidfeat {
namespace {

using decodetest::convertFrame;
using decodetest::decodeAll;
using decodetest::Decoded;
using testing::sharedVideo;
namespace fs = std::filesystem;

// A row of the README's table: | file | source | container / codec | size | fps | frames | why |
struct ReadmeRow {
  int width = 0, height = 0;
  std::string fps;
  int64_t frames = -1;
};

const std::map<std::string, ReadmeRow>& readme() {
  static const std::map<std::string, ReadmeRow> rows = [] {
    std::map<std::string, ReadmeRow> out;
    std::ifstream in(sharedVideo("README.md"));
    std::string line;
    const std::regex size(R"((\d+)x(\d+))"), count(R"(^(\d+))"), fps(R"(^([0-9/]+))");
    while (std::getline(in, line)) {
      std::vector<std::string> cells;
      size_t start = line.find('|');
      while (start != std::string::npos) {
        size_t end = line.find('|', start + 1);
        if (end == std::string::npos) break;
        std::string c = line.substr(start + 1, end - start - 1);
        c.erase(0, c.find_first_not_of(' '));
        c.erase(c.find_last_not_of(' ') + 1);
        cells.push_back(c);
        start = end;
      }
      std::smatch m;
      if (cells.size() < 6 || cells[0].find('.') == std::string::npos) continue;
      if (!std::regex_search(cells[5], m, count)) continue;
      ReadmeRow r;
      r.frames = std::stoll(m[1]);
      if (std::regex_search(cells[3], m, size)) {
        r.width = std::stoi(m[1]);
        r.height = std::stoi(m[2]);
      }
      if (std::regex_search(cells[4], m, fps)) r.fps = m[1];
      out[cells[0]] = r;
    }
    return out;
  }();
  return rows;
}

const ReadmeRow& row(const std::string& name) {
  auto it = readme().find(name);
  if (it == readme().end())
    throw std::runtime_error(name + " is not in ../shared/videos/README.md's table");
  return it->second;
}

double fpsValue(const std::string& fps) {
  const size_t slash = fps.find('/');
  return std::atof(fps.substr(0, slash).c_str()) /
         (slash == std::string::npos ? 1.0 : std::atof(fps.substr(slash + 1).c_str()));
}

class SharedVideos : public ::testing::Test {
 protected:
  void SetUp() override { VIDFEAT_SKIP_WITHOUT_SHARED_VIDEOS(); }
};

class SharedVideoFrames : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override { VIDFEAT_SKIP_WITHOUT_SHARED_VIDEOS(); }
};

// The decoded frame count is the README's (ffprobe -count_frames); times strictly increase.
TEST_P(SharedVideoFrames, CountsFramesByDecodingInIncreasingPtsOrder) {
  const std::string name = GetParam();
  const int64_t frames = row(name).frames;
  Decoded d = decodeAll(sharedVideo(name));
  EXPECT_EQ(d.stats.framesDecoded, frames);
  EXPECT_EQ(static_cast<int64_t>(d.pts.size()), frames);
  EXPECT_EQ(d.stats.decodeErrors, 0);
  EXPECT_EQ(d.stats.framesLate, 0);
  for (size_t i = 1; i < d.pts.size(); ++i) EXPECT_LT(d.pts[i - 1], d.pts[i]) << "frame " << i;
  VideoDecoder decoder(sharedVideo(name).string());
  EXPECT_EQ(decoder.info().codedWidth, row(name).width);
  EXPECT_EQ(decoder.info().codedHeight, row(name).height);
}

// CLIP's scale (ResizeFilter::PilBicubic) on real frames equals Pillow's on the same frame decoded
// at display size (rotated files upright first; the 1x1 file scaled up): every fifth frame, up to
// 6 per file, 0 bytes differ.
TEST_P(SharedVideoFrames, PilBicubicEqualsPillowOnRealFrames) {
  const std::string name = GetParam();
  VideoDecoder full(sharedVideo(name).string()), scaled(sharedVideo(name).string());
  const int dw = full.info().displayWidth, dh = full.info().displayHeight;
  const int w = dw > dh ? int(int64_t(224) * dw / dh) : 224;
  const int h = dw > dh ? 224 : int(int64_t(224) * dh / dw);
  scaled.setOutputSize(w, h, ResizeFilter::PilBicubic);
  std::vector<decodetest::Image> upright;
  std::vector<std::vector<uint8_t>> ours;
  DecodedFrame f, g;
  for (int64_t i = 0; full.next(f) && scaled.next(g) && upright.size() < 6; ++i) {
    if (i % 5) continue;
    upright.push_back({full.outputWidth(), full.outputHeight(), convertFrame(full)});
    ours.push_back(convertFrame(scaled));
  }
  ASSERT_FALSE(upright.empty());
  const auto ref = decodetest::pillowResize(upright, w, h, "shared_" + name);
  for (size_t i = 0; i < ref.size(); ++i)
    EXPECT_EQ(decodetest::differing(ours[i], ref[i].rgb), 0u) << "frame " << 5 * i;
}

INSTANTIATE_TEST_SUITE_P(Shared, SharedVideoFrames,
                         ::testing::Values("v_GGSY1Qvo990.mp4", "chaplin.mp4",
                                           "big_buck_bunny_432_433.webm", "no_duration.webm",
                                           "video_90.mov", "video_270.mov", "unordered.mov",
                                           "-video-with-dash-.mp4"),
                         [](const ::testing::TestParamInfo<const char*>& param_info) {
                           std::string name;
                           for (const char* c = param_info.param; *c != '\0' && *c != '.'; ++c) {
                             if (std::isalnum(static_cast<unsigned char>(*c))) name += *c;
                           }
                           return name;
                         });

TEST_F(SharedVideos, HeaderHints) {
  VideoDecoder chaplin(sharedVideo("chaplin.mp4").string());
  EXPECT_EQ(chaplin.info().codec, "h264");
  EXPECT_EQ(chaplin.info().codedWidth, 640);
  EXPECT_EQ(chaplin.info().codedHeight, 360);
  EXPECT_EQ(chaplin.info().rotation, 0);
  EXPECT_EQ(chaplin.outputWidth(), 640);
  EXPECT_EQ(chaplin.outputHeight(), 360);
  EXPECT_DOUBLE_EQ(chaplin.info().avgFps, fpsValue(row("chaplin.mp4").fps));
  EXPECT_NEAR(chaplin.info().durationHint,
              row("chaplin.mp4").frames / fpsValue(row("chaplin.mp4").fps), 1e-6);
  EXPECT_EQ(chaplin.info().frameCountHint, row("chaplin.mp4").frames);

  VideoDecoder activity(sharedVideo("v_GGSY1Qvo990.mp4").string());
  EXPECT_NEAR(activity.info().avgFps, fpsValue(row("v_GGSY1Qvo990.mp4").fps), 1e-9);

  // WebM: no frame count in the header; no_duration.webm has no duration at all.
  VideoDecoder bunny(sharedVideo("big_buck_bunny_432_433.webm").string());
  EXPECT_EQ(bunny.info().codec, "vp8");
  EXPECT_EQ(bunny.info().frameCountHint, -1);
  VideoDecoder noDuration(sharedVideo("no_duration.webm").string());
  EXPECT_EQ(noDuration.info().codec, "vp9");
  EXPECT_EQ(noDuration.info().durationHint, -1.0);
  EXPECT_EQ(noDuration.info().frameCountHint, -1);
}

TEST_F(SharedVideos, ThreadCountDoesNotChangeOutput) {
  Decoded single = decodeAll(sharedVideo("chaplin.mp4"), DecodeOptions{1});
  Decoded multi = decodeAll(sharedVideo("chaplin.mp4"), DecodeOptions{4});
  EXPECT_EQ(single.pts, multi.pts);
}

TEST_F(SharedVideos, UnorderedPacketsComeOutInPresentationOrder) {
  // Packets are stored with pts 0, 1536, 512, 1024 (time base 1/16384); frames must come out at
  // 0, 1/32, 2/32, 3/32 s.
  Decoded d = decodeAll(sharedVideo("unordered.mov"));
  ASSERT_EQ(static_cast<int64_t>(d.pts.size()), row("unordered.mov").frames);
  for (size_t i = 0; i < d.pts.size(); ++i)
    EXPECT_DOUBLE_EQ(d.pts[i], i / fpsValue(row("unordered.mov").fps));
}

TEST_F(SharedVideos, CorruptedFileDecodesWithoutCrashing) {
  // The README's count: what ffprobe -count_frames decodes (the header says one more; one broken
  // packet is rejected by the decoder and skipped). The corrupt-flag count varies with frame
  // threading (it depends on which thread conceals the damage first), so it is printed only.
  const int64_t frames = row("corrupted.mp4").frames;
  for (int threads : {0, 1}) {
    Decoded d = decodeAll(sharedVideo("corrupted.mp4"), DecodeOptions{threads});
    std::printf(
        "corrupted.mp4, threads %d: %lld frames, %lld decode errors, %lld corrupt-flagged frames\n",
        threads, static_cast<long long>(d.stats.framesDecoded),
        static_cast<long long>(d.stats.decodeErrors),
        static_cast<long long>(d.stats.framesCorrupt));
    EXPECT_EQ(d.stats.framesDecoded, frames) << "threads " << threads;
    EXPECT_GE(d.stats.decodeErrors, 1) << "threads " << threads;
  }
}

TEST_F(SharedVideos, RelativeNamesThatLookLikeOptionsOrProtocols) {
  testing::ScratchDir dir;
  fs::copy_file(sharedVideo("-video-with-dash-.mp4"), dir / "-video-with-dash-.mp4");
  fs::copy_file(sharedVideo("unordered.mov"), dir / "clip:1.mov");
  fs::path cwd = fs::current_path();
  fs::current_path(dir.path());
  Decoded dash = decodeAll("-video-with-dash-.mp4");
  Decoded colon = decodeAll("clip:1.mov");
  fs::current_path(cwd);
  EXPECT_EQ(dash.stats.framesDecoded, row("-video-with-dash-.mp4").frames);
  EXPECT_EQ(colon.stats.framesDecoded, row("unordered.mov").frames);
}

TEST_F(SharedVideos, DisplayMatrixOfRealVideos) {
  // README: 568x320 coded, rotation metadata -90 / 90, displayed 320x568.
  for (const char* name : {"video_90.mov", "video_270.mov"}) {
    SCOPED_TRACE(name);
    VideoDecoder v(sharedVideo(name).string());
    EXPECT_EQ(v.info().rotation, std::string(name) == "video_90.mov" ? 90 : 270);
    EXPECT_EQ(v.info().codedWidth, row(name).width);
    EXPECT_EQ(v.info().codedHeight, row(name).height);
    EXPECT_EQ(v.info().displayWidth, row(name).height);
    EXPECT_EQ(v.info().displayHeight, row(name).width);
    EXPECT_EQ(v.outputWidth(), row(name).height);
    EXPECT_EQ(v.outputHeight(), row(name).width);
  }
}

TEST_F(SharedVideos, RotationMatchesFfmpegAutorotate) {
  decodetest::expectSameAsCli(sharedVideo("video_90.mov"));
  decodetest::expectSameAsCli(sharedVideo("video_270.mov"));
}

TEST_F(SharedVideos, ResizedOutputIsInDisplayOrientation) {
  VideoDecoder decoder(sharedVideo("video_90.mov").string());
  decoder.setOutputSize(160, 284);
  DecodedFrame frame;
  ASSERT_TRUE(decoder.next(frame));
  std::vector<uint8_t> small = convertFrame(decoder);
  EXPECT_EQ(small.size(), 160u * 284 * 3);
}

TEST_F(SharedVideos, ResizeMatchesTorchBilinearDownscale) {
  decodetest::expectResizeMatchesTorch(sharedVideo("chaplin.mp4"), 455, 256);
}

TEST_F(SharedVideos, ResizeMatchesTorchBilinearUpscale) {
  decodetest::expectResizeMatchesTorch(sharedVideo("v_GGSY1Qvo990.mp4"), 341, 256);
}

TEST_F(SharedVideos, ResizeMatchesTorchBilinearNonUniform) {
  decodetest::expectResizeMatchesTorch(sharedVideo("chaplin.mp4"), 224, 224);
}

// --decode-device cuda on the real videos: NVDEC's frames are the CPU's, pixel for pixel, and the
// H.264 ones come from the device. SKIPPED (saying why) without NVDEC.
TEST_F(SharedVideos, CudaGivesTheCpuFrames) {
  const std::string unavailable = decodetest::nvdecUnavailableReason();
  if (!unavailable.empty()) GTEST_SKIP() << "needs NVDEC: " << unavailable;
  struct Case {
    const char* video;
    int w, h;
    bool nvdec;
  };
  for (const Case& c : {Case{"chaplin.mp4", 455, 256, true}, Case{"video_90.mov", 0, 0, true},
                        Case{"big_buck_bunny_432_433.webm", 0, 0, false},
                        Case{"v_GGSY1Qvo990.mp4", 341, 256, true}}) {
    SCOPED_TRACE(c.video);
    const std::string path = sharedVideo(c.video).string();
    const decodetest::Frames cpu = decodetest::decodeOn(path, "cpu", 7, c.w, c.h);
    const decodetest::Frames cuda = decodetest::decodeOn(path, "cuda", 7, c.w, c.h);
    EXPECT_EQ(static_cast<int64_t>(cpu.pts.size()), row(c.video).frames);
    EXPECT_EQ(cuda.pts, cpu.pts);
    ASSERT_EQ(cuda.rgb.size(), cpu.rgb.size());
    for (size_t i = 0; i < cpu.rgb.size(); ++i)
      EXPECT_TRUE(cuda.rgb[i] == cpu.rgb[i]) << "frame " << i * 7;
    if (c.nvdec) {
      EXPECT_EQ(cuda.stats.framesOnDevice, static_cast<int64_t>(cpu.pts.size()));
    }
    std::printf("[decode-device] %-28s %zu frames, %lld decoded by NVDEC\n", c.video,
                cpu.pts.size(), static_cast<long long>(cuda.stats.framesOnDevice));
  }
}

}  // namespace
}  // namespace vidfeat
