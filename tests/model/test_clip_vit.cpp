// CLIP's image tower (MODEL.MODEL_NAME CLIP, src/model/networks/clip_vit.h) against open_clip's own
// model on the committed fixtures (tools/fixtures/make_clip_fixtures.py: every parameter random),
// from both checkpoint forms users have: OpenAI's release format (a TorchScript archive of the
// whole model in fp16) and open_clip's state dict; the text tower left out of the strict load;
// the frame mean; config errors naming their key.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "fixture_parity.h"
#include "vidfeat/common/error.h"
#include "vidfeat/config/config.h"
#include "vidfeat/model/feature_model.h"

namespace vidfeat {
namespace {

using testing::fixtureDir;

const std::vector<std::string> kFixtures = {"CLIP_ViT_B32_jit_fp16",
                                            "CLIP_ViT_B16_state_dict_gelu_token"};

Config fixtureConfig(const std::string& name, std::vector<std::string> extra = {}) {
  Config out;
  bool found = false;
  testing::forEachFixture(
      {name},
      [&](const std::string&, const YAML::Node& f, const Config&) {
        auto overrides = f["overrides"].as<std::vector<std::string>>();
        overrides.insert(overrides.end(), extra.begin(), extra.end());
        out = Config::load((testing::sourceDir() / f["config"].as<std::string>()).string(),
                           overrides);
        found = true;
      },
      "clip_fixtures.json");
  EXPECT_TRUE(found);
  return out;
}

TEST(ClipParity, FixturesMatchOpenClip) {
  testing::expectFixtureParity(kFixtures, "CLIP", "clip_fixtures.json");
}

TEST(Clip, TorchScriptArchiveLoadsTheImageTowerAndLeavesTheTextTowerOut) {
  auto m = FeatureModel::build(fixtureConfig("CLIP_ViT_B32_jit_fp16"));
  const auto report =
      m->loadCheckpoint((fixtureDir() / "CLIP_ViT_B32_jit_fp16.pt").string(), "pytorch");
  // Every key of the image tower (44 in the fixture: 3 blocks), nothing else.
  EXPECT_EQ(report.tensorsLoaded, int64_t(m->stateShapes().size()));
  EXPECT_EQ(report.tensorsLoaded, 44);
  bool noted = false;
  for (const auto& n : report.notes) noted |= n.find("left out") != std::string::npos;
  EXPECT_TRUE(noted) << "no note says the text tower was left out";
}

TEST(Clip, ACheckpointOfAnotherDepthIsRefusedNamingTheKeys) {
  // The fixture has 2 blocks; a 3-block model must miss block 2, not load around it.
  auto m =
      FeatureModel::build(fixtureConfig("CLIP_ViT_B16_state_dict_gelu_token", {"CLIP.LAYERS=3"}));
  try {
    m->loadCheckpoint((fixtureDir() / "CLIP_ViT_B16_state_dict_gelu_token.pt").string(), "pytorch");
    FAIL() << "loaded a 2-block checkpoint into a 3-block model";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("missing keys"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("visual.transformer.resblocks.2."), std::string::npos)
        << e.what();
  }
}

TEST(Clip, AClipOfSeveralFramesGivesTheMeanOfItsFrames) {
  auto two = FeatureModel::build(fixtureConfig("CLIP_ViT_B32_jit_fp16"));  // NUM_FRAMES 2
  auto one = FeatureModel::build(fixtureConfig("CLIP_ViT_B32_jit_fp16", {"DATA.NUM_FRAMES=1"}));
  two->randomizeWeights(3);
  one->randomizeWeights(3);
  const ClipShape s = two->inputShape();
  ASSERT_EQ(s.frames, 2);
  std::mt19937 rng(1);
  std::normal_distribution<float> n;
  std::vector<float> clip(size_t(s.numel()));
  for (auto& v : clip) v = n(rng);
  // The same frames one at a time: frame t of a [C, T, H, W] clip.
  const size_t plane = size_t(s.height * s.width);
  std::vector<float> sum(size_t(one->featureDim()), 0.0f);
  for (int t = 0; t < 2; ++t) {
    std::vector<float> frame(size_t(3) * plane);
    for (int c = 0; c < 3; ++c)
      std::copy_n(clip.begin() + std::ptrdiff_t((size_t(c) * 2 + size_t(t)) * plane), plane,
                  frame.begin() + std::ptrdiff_t(size_t(c) * plane));
    std::vector<float> f(size_t(one->featureDim()));
    one->extract(frame.data(), 1, f.data());
    for (size_t i = 0; i < f.size(); ++i) sum[i] += f[i] / 2;
  }
  std::vector<float> both(size_t(two->featureDim()));
  two->extract(clip.data(), 1, both.data());
  double err = 0, ref = 0;
  for (size_t i = 0; i < both.size(); ++i) {
    err += double(both[i] - sum[i]) * double(both[i] - sum[i]);
    ref += double(sum[i]) * double(sum[i]);
  }
  EXPECT_GT(ref, 0.0);
  EXPECT_LE(std::sqrt(err / ref), 1e-6);
}

TEST(Clip, HasNoHeadOutputs) {
  auto m = FeatureModel::build(fixtureConfig("CLIP_ViT_B32_jit_fp16"));
  m->randomizeWeights(1);
  EXPECT_EQ(m->numClasses(), 0);
  std::vector<float> clip(size_t(m->inputShape().numel()), 0.5f), f(size_t(m->featureDim())),
      logits(16);
  EXPECT_THROW(m->extract(clip.data(), 1, f.data(), logits.data()), Error);
}

TEST(Clip, ConfigErrorsNameTheirKey) {
  auto expectError = [](std::vector<std::string> overrides, const std::string& key) {
    try {
      FeatureModel::build(fixtureConfig("CLIP_ViT_B32_jit_fp16", overrides));
      ADD_FAILURE() << "built with " << overrides.front();
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(key), std::string::npos) << e.what();
    }
  };
  expectError({"CLIP.ACT=relu"}, "CLIP.ACT");
  expectError({"CLIP.FEATURE=pooled"}, "CLIP.FEATURE");
  expectError({"CLIP.HEADS=5"}, "CLIP.HEADS");
  expectError({"CLIP.LAYERS=0"}, "CLIP.LAYERS");
  expectError({"MODEL.ARCH=slow"}, "MODEL.ARCH");
}

TEST(Clip, FeatureDescriptionSaysWhatTheRowIs) {
  auto m = FeatureModel::build(fixtureConfig("CLIP_ViT_B32_jit_fp16"));
  EXPECT_EQ(m->featureDescription().rfind("32-d: CLIP ViT (patch 8", 0), 0u)
      << m->featureDescription();
  auto t = FeatureModel::build(fixtureConfig("CLIP_ViT_B16_state_dict_gelu_token"));
  EXPECT_NE(t->featureDescription().find("before visual.proj"), std::string::npos);
  EXPECT_EQ(t->featureDim(), 96);  // the width, not EMBED_DIM 48
}

}  // namespace
}  // namespace vidfeat
