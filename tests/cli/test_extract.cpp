// End to end: the vidfeat binary over the real videos in ../shared/videos, checked by h5py and
// h5dump.
#include <gtest/gtest.h>

#include <fstream>

#include "test_support.h"

namespace fs = std::filesystem;
using vidfeat::testing::run;
using vidfeat::testing::ScratchDir;
using vidfeat::testing::sharedDir;
using vidfeat::testing::sourceDir;

namespace {

const char* kVideos[] = {"v_GGSY1Qvo990.mp4", "chaplin.mp4", "big_buck_bunny_432_433.webm",
                         "no_duration.webm", "video_90.mov", "video_270.mov", "unordered.mov",
                         "corrupted.mp4", "-video-with-dash-.mp4"};

// A CSV manifest of every shared video (id = file stem), plus extra lines.
std::string writeManifest(const ScratchDir& d, const std::vector<std::string>& extra = {}) {
  auto m = d / "manifest.csv";
  std::ofstream out(m);
  out << "video_id,path\n";
  for (const char* v : kVideos) {
    std::string stem = fs::path(v).stem().string();
    out << stem << "," << (sharedDir() / "videos" / v).string() << "\n";
  }
  for (const auto& e : extra) out << e << "\n";
  return m.string();
}

std::string vidfeatCmd(const std::string& args) { return std::string("'") + VIDFEAT_EXE + "' " + args; }

std::string checker(const std::string& h5, int span, int rate, const std::string& extra = "") {
  return "/usr/bin/python3 '" CHECK_SCRIPT "' '" + h5 + "' '" +
         (sharedDir() / "videos" / "README.md").string() + "' " + std::to_string(span) + " " + std::to_string(rate) + " " + extra;
}

}  // namespace

TEST(EndToEnd, Slow8x8OverTheSharedVideos) {
  ScratchDir d;
  // A text file named .mp4 fails alone when decoding starts; a missing file is a manifest
  // problem: it stops the job unless --skip-invalid records it as failed.
  std::ofstream(d / "not_a_video.mp4") << "this is text, not a video\n";
  auto manifest = writeManifest(d, {"text_named_mp4," + (d / "not_a_video.mp4").string(),
                                    "missing," + (d / "missing.mp4").string()});
  auto out = (d / "features.h5").string();
  auto log = (d / "log.txt").string();
  auto cfg = (sourceDir() / "configs/Kinetics/SLOW_8x8_R50.yaml").string();
  const std::string extract = vidfeatCmd("extract --config '" + cfg + "' --random-weights 1 --manifest '" +
                                         manifest + "' --output '" + out + "' --threads 2 --batch 2");
  EXPECT_EQ(run(extract + " 2> '" + log + "'"), 1);
  EXPECT_EQ(run("grep -q 'missing.mp4: file does not exist' '" + log + "'"), 0);
  EXPECT_FALSE(fs::exists(out)) << "nothing is written when the manifest check fails";

  // Exit code 3: some videos failed; the others are complete.
  ASSERT_EQ(run(extract + " --skip-invalid"), 3);
  EXPECT_EQ(run(checker(out, 64, 8, "--expect-failed text_named_mp4 missing")), 0);
  EXPECT_EQ(run("h5dump -H '" + out + "' | grep -q 'DATASET \"features\"'"), 0);
  EXPECT_EQ(run(vidfeatCmd("inspect '" + out + "' | grep -q 'UNTRAINED'")), 0);
  const std::string digest = "/usr/bin/python3 -c \"import h5py,hashlib; f=h5py.File('" + out +
                             "'); print(hashlib.sha256(f['features'][:].tobytes()).hexdigest())\" > ";
  ASSERT_EQ(run(digest + "'" + (d / "before").string() + "'"), 0);

  // Rerunning the same command resumes: nothing left to do, nothing rewritten.
  EXPECT_EQ(run(extract + " --skip-invalid 2> '" + log + "'"), 3);
  EXPECT_EQ(run("grep -q '0 to extract, 9 already complete, 0 invalid, 2 failed before' '" + log + "'"), 0);
  ASSERT_EQ(run(digest + "'" + (d / "after").string() + "'"), 0);
  EXPECT_EQ(run("cmp -s '" + (d / "before").string() + "' '" + (d / "after").string() + "'"), 0);

  // A different model setting is refused, saying what differs.
  EXPECT_NE(run(extract + " --skip-invalid --tail drop 2> '" + log + "'"), 0);
  EXPECT_EQ(run("grep -q 'tail policy' '" + log + "'"), 0);
}

TEST(EndToEnd, TinyModelDropTailAndFps) {
  ScratchDir d;
  auto manifest = writeManifest(d);
  auto cfg = (sourceDir() / "configs/Kinetics/SLOW_8x8_R50.yaml").string();
  const std::string tiny =
      " --set RESNET.WIDTH_PER_GROUP=4 --set DATA.TRAIN_CROP_SIZE=64 --set DATA.TEST_CROP_SIZE=64"
      " --set 'DATA.TRAIN_JITTER_SCALES=[64, 80]' --set DATA.NUM_FRAMES=4 --set DATA.SAMPLING_RATE=2";
  auto drop = (d / "drop.h5").string();
  ASSERT_EQ(run(vidfeatCmd("extract --config '" + cfg + "' --random-weights 2 --manifest '" + manifest +
                        "' --output '" + drop + "' --tail drop" + tiny)),
            0);
  EXPECT_EQ(run(checker(drop, 8, 2, "--drop")), 0);

  // --fps 5 on chaplin (25 fps, 241 frames): 9.64 s -> 49 slots -> ceil(49 / 8) = 7 segments.
  auto fps = (d / "fps.h5").string();
  auto one = d / "one.csv";
  std::ofstream(one) << "video_id,path\nchaplin," << (sharedDir() / "videos/chaplin.mp4").string() << "\n";
  ASSERT_EQ(run(vidfeatCmd("extract --config '" + cfg + "' --random-weights 2 --manifest '" + one.string() +
                        "' --output '" + fps + "' --fps 5" + tiny)),
            0);
  EXPECT_EQ(run("/usr/bin/python3 -c \"import h5py,sys; f=h5py.File('" + fps +
                "'); s=f['segments'][:]; print(len(s), s['start_time']); "
                "sys.exit(0 if len(s)==7 and abs(s['start_time'][1]-s['start_time'][0]-1.6)<1e-6 else 1)\""),
            0);
}
