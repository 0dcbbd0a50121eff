// VideoExtractor on its own (no MPI, no store): the decode worker + bounded queue + batches give
// the same features whichever way clips are batched and wherever they are normalised. Videos of
// the generated corpus (tests/support/make_corpus.py; frame counts from its corpus.tsv).
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <map>

#include "test_support.h"
#include "vidfeat/config/config.h"
#include "vidfeat/model/feature_model.h"
#include "vidfeat/pipeline/video_extractor.h"

namespace vidfeat {
namespace {

using vidfeat::testing::corpusEntry;

// A corpus file as a manifest entry.
VideoEntry fromCorpus(const std::string& id, const std::string& name) {
  return VideoEntry{id, vidfeat::testing::corpusVideo(name).string()};
}

Config tinyConfig() {
  return Config::load(
      std::string(VIDFEAT_SOURCE_DIR) + "/configs/Kinetics/SLOW_8x8_R50.yaml",
      {"RESNET.WIDTH_PER_GROUP=4", "DATA.TRAIN_CROP_SIZE=64", "DATA.TEST_CROP_SIZE=64",
       "DATA.TRAIN_JITTER_SCALES=[64, 80]", "DATA.NUM_FRAMES=4", "DATA.SAMPLING_RATE=2"});
}

ExtractOptions optionsFor(const Config& cfg, int batch, ExtractOptions::Normalise where,
                          int queue = 0) {
  ExtractOptions o;
  o.buckets.numFrames = cfg.get<int>("DATA.NUM_FRAMES");
  o.buckets.samplingRate = cfg.get<int>("DATA.SAMPLING_RATE");
  o.preprocess = PreprocessSpec::fromConfig(cfg);
  o.batch = batch;
  o.queueClips = queue;
  o.normaliseOnDevice = where;
  return o;
}

double relativeError(const std::vector<float>& a, const std::vector<float>& b) {
  double d = 0, n = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    d += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
    n += double(b[i]) * b[i];
  }
  return std::sqrt(d / std::max(n, 1e-30));
}

class Extractor : public ::testing::Test {
 protected:
  void SetUp() override {
    cfg_ = tinyConfig();
    model_ = FeatureModel::build(cfg_, "cpu");
    model_->randomizeWeights(7);
  }
  Config cfg_;
  std::unique_ptr<FeatureModel> model_;
};

TEST_F(Extractor, BytesNormalisedByTheModelGiveTheWorkersFeatures) {
  const VideoEntry v = fromCorpus("bframes", "h264_bframes.mp4");
  VideoExtractor floats(*model_, optionsFor(cfg_, 2, ExtractOptions::Normalise::Worker));
  VideoExtractor bytes(*model_, optionsFor(cfg_, 2, ExtractOptions::Normalise::Model));
  VideoResult a = floats.run(v, 0), b = bytes.run(v, 0);
  ASSERT_EQ(a.status, VideoStatus::Complete) << a.error;
  ASSERT_EQ(b.status, VideoStatus::Complete) << b.error;
  // Back-to-back clips of NUM_FRAMES * SAMPLING_RATE = 8 frames, the last one padded: ceil(n / 8)
  // segments of the n frames ffprobe counted.
  const int64_t frames = corpusEntry("h264_bframes.mp4").frames;
  ASSERT_EQ(int64_t(a.segments.size()), (frames + 7) / 8);
  ASSERT_GT(a.segments.size(), 5u);
  ASSERT_EQ(a.features.size(), b.features.size());
  EXPECT_EQ(a.features, b.features);  // same floats into the same model
}

TEST_F(Extractor, BatchesAcrossVideosKeepEachVideosClipsInOrder) {
  const std::vector<VideoEntry> videos = {
      fromCorpus("bframes", "h264_bframes.mp4"), fromCorpus("missing", "no-such-file.mp4"),
      fromCorpus("vp8", "vp8.webm"), fromCorpus("rot", "rot90.mov")};
  // Reference: one video at a time, batch 1.
  std::map<std::string, VideoResult> ref;
  {
    VideoExtractor one(*model_, optionsFor(cfg_, 1, ExtractOptions::Normalise::Worker));
    for (size_t i = 0; i < videos.size(); ++i)
      ref[videos[i].videoId] = one.run(videos[i], int64_t(i));
  }
  ASSERT_EQ(ref["missing"].status, VideoStatus::Failed);
  // All submitted at once, batches of 3 clips mixing videos, a queue of one clip.
  VideoExtractor many(*model_, optionsFor(cfg_, 3, ExtractOptions::Normalise::Worker, 1));
  for (size_t i = 0; i < videos.size(); ++i) many.submit(videos[i], int64_t(i));
  std::map<int64_t, VideoResult> got;
  const auto until = std::chrono::steady_clock::now() + std::chrono::minutes(5);
  while (!many.idle() && std::chrono::steady_clock::now() < until) {
    for (auto& r : many.step(std::chrono::milliseconds(50))) got[r.videoRow] = std::move(r);
  }
  ASSERT_TRUE(many.idle());
  ASSERT_EQ(got.size(), videos.size());
  EXPECT_EQ(many.clipsProcessed(),
            int64_t(ref["bframes"].segments.size() + ref["vp8"].segments.size() +
                    ref["rot"].segments.size()));
  for (size_t i = 0; i < videos.size(); ++i) {
    const VideoResult& r = got.at(int64_t(i));
    const VideoResult& e = ref.at(videos[i].videoId);
    EXPECT_EQ(r.status, e.status) << videos[i].videoId;
    EXPECT_EQ(r.failureStage, e.failureStage) << videos[i].videoId;
    ASSERT_EQ(r.segments.size(), e.segments.size()) << videos[i].videoId;
    for (size_t k = 0; k < r.segments.size(); ++k) {
      EXPECT_EQ(r.segments[k].index, e.segments[k].index);
      EXPECT_EQ(r.segments[k].startTime, e.segments[k].startTime);
    }
    ASSERT_EQ(r.features.size(), e.features.size()) << videos[i].videoId;
    if (!r.features.empty()) {
      EXPECT_LE(relativeError(r.features, e.features), 1e-5) << videos[i].videoId;
    }
  }
}

// A video is handed back as soon as its last clip went through the model, not after a clip of the
// next video (the results were once held for one more forward).
TEST_F(Extractor, HandsBackAVideoBeforeTheNextVideosClips) {
  const VideoEntry first = fromCorpus("first", "h264_bframes.mp4");
  const VideoEntry second = fromCorpus("second", "h264_bframes.mp4");
  VideoExtractor x(*model_, optionsFor(cfg_, 1, ExtractOptions::Normalise::Worker, 4));
  x.submit(first, 0);
  x.submit(second, 1);
  int64_t clipsWhenFirstReturned = -1;
  size_t firstClips = 0;
  const auto until = std::chrono::steady_clock::now() + std::chrono::minutes(5);
  while (!x.idle() && std::chrono::steady_clock::now() < until) {
    for (auto& r : x.step(std::chrono::milliseconds(50))) {
      if (r.videoRow == 0) {
        clipsWhenFirstReturned = x.clipsProcessed();
        firstClips = r.segments.size();
      }
    }
  }
  ASSERT_TRUE(x.idle());
  ASSERT_GT(firstClips, 1u);
  EXPECT_EQ(clipsWhenFirstReturned, int64_t(firstClips));  // none of the second video's yet
  EXPECT_EQ(x.clipsProcessed(), int64_t(2 * firstClips));
}

}  // namespace
}  // namespace vidfeat
