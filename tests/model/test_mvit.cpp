// MViT-B 32x3, MViTv2-S 16x4 and rev-MViT-B 16x4: every state-dict key and shape, the key and
// parameter counts of PySlowFast's own full-size models (tests/fixtures/mvit_state_shapes.json,
// tools/fixtures/mvit_state_shapes.py), parity with PySlowFast on the reduced fixtures
// (tools/fixtures/make_fixtures.py), and the configurations PySlowFast rejects.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <cstdio>
#include <map>

#include "fixture_parity.h"
#include "networks/mvit.h"
#include "networks/video_net.h"
#include "test_support.h"
#include "vidfeat/common/error.h"
#include "vidfeat/config/config.h"
#include "vidfeat/model/feature_model.h"

using namespace vidfeat;

namespace {

Config zooConfig(const std::string& rel, const std::vector<std::string>& overrides = {}) {
  return Config::load((vidfeat::testing::sourceDir() / "configs" / rel).string(), overrides);
}

using vidfeat::testing::fixtureDir;

void expectErrorNaming(const std::string& rel, const std::vector<std::string>& overrides,
                       const std::string& key) {
  try {
    FeatureModel::build(zooConfig(rel, overrides));
    ADD_FAILURE() << "expected an error naming " << key;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(key), std::string::npos) << e.what();
  }
}

}  // namespace

TEST(MViT, FullSizeModelsHavePySlowFastsKeysShapesAndParameterCounts) {
  const YAML::Node root = YAML::LoadFile((fixtureDir() / "mvit_state_shapes.json").string());
  const std::map<std::string, int64_t> featureDims = {
      {"MVIT_B_32x3_CONV", 768}, {"MVITv2_S_16x4", 768}, {"REV_MVIT_B_16x4_CONV", 2 * 768}};
  ASSERT_EQ(root.size(), featureDims.size());
  for (const auto& kv : root) {
    const auto name = kv.first.as<std::string>();
    SCOPED_TRACE(name);
    const auto& ref = kv.second;
    // configs/ holds vidfeat's copies (the rev one with CLS_EMBED_ON False).
    auto cfg =
        Config::load((vidfeat::testing::sourceDir() / ref["config"].as<std::string>()).string());
    auto net = model::buildVideoNet(cfg);
    std::map<std::string, std::vector<int64_t>> ours;
    for (const auto& p : net->named_parameters()) ours[p.key()] = p.value().sizes().vec();
    for (const auto& b : net->named_buffers()) ours[b.key()] = b.value().sizes().vec();
    EXPECT_EQ(int64_t(ours.size()), ref["state_keys"].as<int64_t>());
    int64_t params = 0;
    for (const auto& p : net->parameters()) params += p.numel();
    EXPECT_EQ(params, ref["parameters"].as<int64_t>());
    for (const auto& s : ref["shapes"]) {
      const auto key = s.first.as<std::string>();
      auto it = ours.find(key);
      if (it == ours.end()) {
        ADD_FAILURE() << "missing " << key;
        continue;
      }
      EXPECT_EQ(it->second, s.second.as<std::vector<int64_t>>()) << key;
    }
    EXPECT_EQ(net->featureDim(), featureDims.at(name));
    EXPECT_EQ(net->numClasses(), 400);
  }
}

TEST(MViT, ReversibleModelWithClsTokenIsAnErrorNamingTheKey) {
  // PySlowFast's own REV_MVIT_B_16x4_CONV.yaml says CLS_EMBED_ON True; its model asserts it off.
  expectErrorNaming("Kinetics/REV_MVIT_B_16x4_CONV.yaml", {"MVIT.CLS_EMBED_ON=True"},
                    "MVIT.CLS_EMBED_ON");
}

TEST(MViT, ConfigurationsPySlowFastRejectsNameTheKey) {
  const std::string b = "Kinetics/MVIT_B_32x3_CONV.yaml";
  expectErrorNaming(b, {"DATA.TEST_CROP_SIZE=256"}, "DATA.TEST_CROP_SIZE");
  expectErrorNaming(b, {"MVIT.NORM=batchnorm"}, "MVIT.NORM");
  expectErrorNaming(b, {"MVIT.MODE=conv_unshared"}, "MVIT.MODE");
  expectErrorNaming(b, {"MVIT.POOL_FIRST=True"}, "MVIT.POOL_FIRST");
  expectErrorNaming(b, {"MVIT.DIM_MUL=[[30, 2.0]]"}, "MVIT.DIM_MUL");
  expectErrorNaming(b, {"MVIT.POOL_Q_STRIDE=[[30, 1, 2, 2]]"}, "MVIT.POOL_Q_STRIDE");
  expectErrorNaming(b, {"MODEL.HEAD_ACT=relu"}, "MODEL.HEAD_ACT");
  expectErrorNaming("Kinetics/REV_MVIT_B_16x4_CONV.yaml", {"MVIT.REV.RES_PATH=max"},
                    "MVIT.REV.RES_PATH");
  expectErrorNaming("Kinetics/REV_MVIT_B_16x4_CONV.yaml", {"MVIT.REV.PRE_Q_FUSION=mul"},
                    "MVIT.REV.PRE_Q_FUSION");
}

TEST(MViT, AnotherInputGridIsAnErrorAsInPySlowFast) {
  // PySlowFast asserts the patch grid equals the configured one before it could resize its
  // positional embeddings; a 64 px model given 96 px frames fails the same way.
  auto cfg = zooConfig("Kinetics/MVIT_B_32x3_CONV.yaml",
                       {"MVIT.EMBED_DIM=8", "MVIT.DEPTH=2", "MVIT.DIM_MUL=[]", "MVIT.HEAD_MUL=[]",
                        "MVIT.POOL_Q_STRIDE=[]", "DATA.NUM_FRAMES=4", "DATA.TRAIN_CROP_SIZE=64",
                        "DATA.TEST_CROP_SIZE=64"});
  auto net = model::buildVideoNet(cfg);
  net->eval();
  torch::NoGradGuard noGrad;
  EXPECT_EQ(net->forwardFeatures({torch::randn({1, 3, 4, 64, 64})}, true).features.sizes(),
            (std::vector<int64_t>{1, 8}));
  try {
    net->forwardFeatures({torch::randn({1, 3, 4, 96, 96})}, false);
    ADD_FAILURE() << "expected an error for a 96 px clip";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("DATA.TRAIN_CROP_SIZE"), std::string::npos) << e.what();
  }
}

TEST(MViT, RoundWidthIsPySlowFastsOnFloat32Multipliers) {
  EXPECT_EQ(model::roundWidthF32(96, 2.0f, 1, 2), 192);
  EXPECT_EQ(model::roundWidthF32(1, 2.0f), 2);
  EXPECT_EQ(model::roundWidthF32(96, 8.0f, 1, 1), 768);
  EXPECT_EQ(model::roundWidthF32(7, 0.0f), 7);
  EXPECT_EQ(model::roundWidthF32(96, 1.0f, 1, 5), 95);  // 96 + 2.5 -> 98 // 5 * 5
}

TEST(MViT, FixtureFeaturesEqualPySlowFasts) {
  // The last two: fusion MLPs of the reversible model; max pooling, separate q/k/v, a single
  // positional embedding and mean pooling without a cls token.
  vidfeat::testing::expectFixtureParity(
      {"MVIT_B_32x3_CONV", "MVITv2_S_16x4", "REV_MVIT_B_16x4_CONV",
       "REV_MVIT_B_16x4_CONV_concat_linear", "MVIT_B_32x3_CONV_max_sepqkv_meanpool"},
      "mvit");
}
