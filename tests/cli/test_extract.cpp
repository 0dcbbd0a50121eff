// End to end: the vidfeat binary over a manifest of videos, the output checked by h5py
// (check_output.py, against the frame counts ffprobe decodes) and h5dump.
// Built twice (tests/cli/CMakeLists.txt):
// - test_cli: EndToEnd.*, over the generated corpus (tests/support/make_corpus.py; counts from its
//   corpus.tsv);
// - test_cli_shared (VIDFEAT_SHARED_SUITE=1): SharedEndToEnd.*, over the real videos of
//   ../shared/videos (counts from its README.md), ctest label `shared`, SKIPPED when absent.
#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <vector>

#include "test_support.h"

namespace fs = std::filesystem;
using vidfeat::testing::run;
using vidfeat::testing::ScratchDir;
using vidfeat::testing::sourceDir;

namespace {

struct Video {
  std::string id;
  fs::path path;
};

// A CSV manifest of `videos`, plus extra lines.
std::string writeManifest(const ScratchDir& d, const std::vector<Video>& videos,
                          const std::vector<std::string>& extra = {}) {
  auto m = d / "manifest.csv";
  std::ofstream out(m);
  out << "video_id,path\n";
  for (const Video& v : videos) out << '"' << v.id << "\",\"" << v.path.string() << "\"\n";
  for (const auto& e : extra) out << e << "\n";
  return m.string();
}

std::string vidfeatCmd(const std::string& args) {
  return std::string("'") + VIDFEAT_EXE + "' " + args;
}

// check_output.py on `h5`; `counts`: corpus.tsv or ../shared/videos/README.md.
std::string checker(const std::string& h5, const fs::path& counts, int span, int rate,
                    const std::string& extra = "") {
  return "/usr/bin/python3 '" CHECK_SCRIPT "' '" + h5 + "' '" + counts.string() + "' " +
         std::to_string(span) + " " + std::to_string(rate) + " " + extra;
}

const char* const kTiny =
    " --set RESNET.WIDTH_PER_GROUP=4 --set DATA.TRAIN_CROP_SIZE=64 --set DATA.TEST_CROP_SIZE=64"
    " --set 'DATA.TRAIN_JITTER_SCALES=[64, 80]' --set DATA.NUM_FRAMES=4 --set DATA.SAMPLING_RATE=2";

std::string slowConfig() { return (sourceDir() / "configs/Kinetics/SLOW_8x8_R50.yaml").string(); }

// SLOW 8x8 (span 64, rate 8) over `videos` plus a text file named .mp4 and a missing file:
// - without --skip-invalid the missing file stops the job before anything is written;
// - with it, exit code 3, every video complete with the frame count `counts` gives, the text
//   file and the missing one (and `failedIds`) recorded as failed;
// - a rerun resumes with nothing to do and rewrites nothing;
// - a different model setting is refused, naming it.
void slowOverVideos(const std::vector<Video>& videos, const std::vector<std::string>& failedIds,
                    const fs::path& counts) {
  ScratchDir d;
  std::ofstream(d / "not_a_video.mp4") << "this is text, not a video\n";
  auto manifest = writeManifest(d, videos,
                                {"text_named_mp4," + (d / "not_a_video.mp4").string(),
                                 "missing," + (d / "missing.mp4").string()});
  auto out = (d / "features.h5").string();
  auto log = (d / "log.txt").string();
  const std::string extract =
      vidfeatCmd("extract --config '" + slowConfig() + "' --random-weights 1 --manifest '" +
                 manifest + "' --output '" + out + "' --threads 2 --batch 2");
  EXPECT_EQ(run(extract + " 2> '" + log + "'"), 1);
  EXPECT_EQ(run("grep -q 'missing.mp4: file does not exist' '" + log + "'"), 0);
  EXPECT_FALSE(fs::exists(out)) << "nothing is written when the manifest check fails";

  // Exit code 3: some videos failed; the others are complete.
  ASSERT_EQ(run(extract + " --skip-invalid"), 3);
  std::string expectFailed = "--expect-failed text_named_mp4 missing";
  for (const auto& id : failedIds) expectFailed += " '" + id + "'";
  EXPECT_EQ(run(checker(out, counts, 64, 8, expectFailed)), 0);
  EXPECT_EQ(run("h5dump -H '" + out + "' | grep -q 'DATASET \"features\"'"), 0);
  EXPECT_EQ(run(vidfeatCmd("inspect '" + out + "' | grep -q 'UNTRAINED'")), 0);
  const std::string digest =
      "/usr/bin/python3 -c \"import h5py,hashlib; f=h5py.File('" + out +
      "'); print(hashlib.sha256(f['features'][:].tobytes()).hexdigest())\" > ";
  ASSERT_EQ(run(digest + "'" + (d / "before").string() + "'"), 0);

  // Rerunning the same command resumes: nothing left to do, nothing rewritten.
  EXPECT_EQ(run(extract + " --skip-invalid 2> '" + log + "'"), 3);
  const size_t complete = videos.size() - failedIds.size(), failed = failedIds.size() + 2;
  const std::string resumed = "0 to extract, " + std::to_string(complete) +
                              " already complete, 0 invalid, " + std::to_string(failed) +
                              " failed before";
  EXPECT_EQ(run("grep -q '" + resumed + "' '" + log + "'"), 0) << resumed;
  ASSERT_EQ(run(digest + "'" + (d / "after").string() + "'"), 0);
  EXPECT_EQ(run("cmp -s '" + (d / "before").string() + "' '" + (d / "after").string() + "'"), 0);

  // A different model setting is refused, saying what differs.
  EXPECT_NE(run(extract + " --skip-invalid --tail drop 2> '" + log + "'"), 0);
  EXPECT_EQ(run("grep -q 'tail policy' '" + log + "'"), 0);
}

// The tiny model with --tail drop over `videos` (span 8, rate 2), then --fps 5 on `fpsVideo`
// (`frames` frames at r_frame_rate fpsNum/fpsDen): its slots are the k with k / 5 < frames / rate
// (include/vidfeat/clip/fps_resampler.h), i.e. ceil(5 frames fpsDen / fpsNum); back-to-back clips
// of span 8 slots make ceil(slots / 8) segments, 8 / 5 = 1.6 s apart.
void tinyDropAndFps(const std::vector<Video>& videos, const fs::path& counts,
                    const fs::path& fpsVideo, int64_t frames, int64_t fpsNum, int64_t fpsDen) {
  ScratchDir d;
  auto manifest = writeManifest(d, videos);
  auto drop = (d / "drop.h5").string();
  ASSERT_EQ(
      run(vidfeatCmd("extract --config '" + slowConfig() + "' --random-weights 2 --manifest '" +
                     manifest + "' --output '" + drop + "' --tail drop" + kTiny)),
      0);
  EXPECT_EQ(run(checker(drop, counts, 8, 2, "--drop")), 0);

  const int64_t slots = (5 * frames * fpsDen + fpsNum - 1) / fpsNum;
  const int64_t segments = (slots + 7) / 8;
  auto fps = (d / "fps.h5").string();
  auto one = d / "one.csv";
  std::ofstream(one) << "video_id,path\nfps_video,\"" << fpsVideo.string() << "\"\n";
  ASSERT_EQ(
      run(vidfeatCmd("extract --config '" + slowConfig() + "' --random-weights 2 --manifest '" +
                     one.string() + "' --output '" + fps + "' --fps 5" + kTiny)),
      0);
  EXPECT_EQ(run("/usr/bin/python3 -c \"import h5py,sys; f=h5py.File('" + fps +
                "'); s=f['segments'][:]; print(len(s), s['start_time']); "
                "sys.exit(0 if len(s)==" +
                std::to_string(segments) +
                " and abs(s['start_time'][1]-s['start_time'][0]-1.6)<1e-6 else 1)\""),
            0)
      << "expected " << segments << " segments (" << slots << " slots)";
}

}  // namespace

#if !VIDFEAT_SHARED_SUITE

using vidfeat::testing::corpus;
using vidfeat::testing::corpusDir;
using vidfeat::testing::corpusEntry;

// Every file of the generated corpus but the long one (good, damaged and bad: the bad ones must
// be recorded as failed), ids = file names.
TEST(EndToEnd, Slow8x8OverTheCorpus) {
  std::vector<Video> videos;
  std::vector<std::string> failed;
  for (const auto& e : corpus()) {
    if (e.frames > 300)
      continue;  // long_60s.mp4: 24 SLOW clips; its count is checked in test_decode
    videos.push_back({e.name, e.path()});
    if (e.kind == "bad") failed.push_back(e.name);
  }
  ASSERT_GE(videos.size(), 20u);
  ASSERT_GE(failed.size(), 2u);
  slowOverVideos(videos, failed, corpusDir() / "corpus.tsv");
}

TEST(EndToEnd, TinyModelDropTailAndFps) {
  std::vector<Video> videos;
  for (const auto& e : corpus()) {
    if (e.kind == "good") videos.push_back({e.name, e.path()});
  }
  // 981/50 fps, so the slot arithmetic is not a whole-number ratio.
  const auto& e = corpusEntry("h264_981_50_aac.mp4");
  ASSERT_EQ(e.fps, "981/50");
  tinyDropAndFps(videos, corpusDir() / "corpus.tsv", e.path(), e.frames, 981, 50);
}

#else

using vidfeat::testing::sharedVideo;

const char* kSharedVideos[] = {"v_GGSY1Qvo990.mp4", "chaplin.mp4",   "big_buck_bunny_432_433.webm",
                               "no_duration.webm",  "video_90.mov",  "video_270.mov",
                               "unordered.mov",     "corrupted.mp4", "-video-with-dash-.mp4"};

std::vector<Video> sharedVideos() {
  std::vector<Video> videos;
  for (const char* v : kSharedVideos)
    videos.push_back({fs::path(v).stem().string(), sharedVideo(v)});
  return videos;
}

TEST(SharedEndToEnd, Slow8x8OverTheSharedVideos) {
  VIDFEAT_SKIP_WITHOUT_SHARED_VIDEOS();
  slowOverVideos(sharedVideos(), {}, sharedVideo("README.md"));
}

TEST(SharedEndToEnd, TinyModelDropTailAndFps) {
  VIDFEAT_SKIP_WITHOUT_SHARED_VIDEOS();
  // chaplin.mp4: 25 fps, frames from the README (241: 49 slots, 7 segments).
  std::ifstream readme(sharedVideo("README.md"));
  std::string line;
  int64_t frames = -1;
  while (std::getline(readme, line)) {
    if (line.rfind("| chaplin.mp4 |", 0) != 0) continue;
    size_t cell = 0, pos = 0;
    for (int i = 0; i < 5 && pos != std::string::npos; ++i) cell = pos = line.find('|', pos + 1);
    frames = std::stoll(line.substr(cell + 1));
  }
  ASSERT_GT(frames, 0) << "no chaplin.mp4 row in the README";
  tinyDropAndFps(sharedVideos(), sharedVideo("README.md"), sharedVideo("chaplin.mp4"), frames, 25,
                 1);
}

#endif
