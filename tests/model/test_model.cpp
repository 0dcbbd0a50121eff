#include <gtest/gtest.h>

#include <algorithm>
#include <map>

#include "networks/resnet.h"
#include "networks/video_net.h"
#include "test_support.h"
#include "vidfeat/common/error.h"
#include "vidfeat/config/config.h"
#include "vidfeat/model/feature_model.h"

using namespace vidfeat;
using Shapes = std::map<std::string, std::vector<int64_t>>;

namespace {

Config zooConfig(const std::string& name, const std::vector<std::string>& overrides = {}) {
  return Config::load((vidfeat::testing::sourceDir() / "configs" / "Kinetics" / name).string(),
                      overrides);
}

Shapes shapesOf(const FeatureModel& m) {
  Shapes s;
  for (auto& [k, v] : m.stateShapes()) s[k] = v;
  return s;
}

// Small enough to run forwards in a unit test, with every layer still present.
const std::vector<std::string> kTiny = {"RESNET.WIDTH_PER_GROUP=4", "DATA.NUM_FRAMES=4",
                                        "DATA.TRAIN_CROP_SIZE=64", "DATA.TEST_CROP_SIZE=64",
                                        "DATA.TRAIN_JITTER_SCALES=[64, 80]"};

}  // namespace

TEST(ModelResNet, Slow8x8StateDictKeysAndShapesArePySlowFasts) {
  auto m = FeatureModel::build(zooConfig("SLOW_8x8_R50.yaml"));
  auto s = shapesOf(*m);
  EXPECT_EQ(m->featureDim(), 2048);
  EXPECT_EQ(m->numClasses(), 400);
  EXPECT_EQ(s.at("s1.pathway0_stem.conv.weight"), (std::vector<int64_t>{64, 3, 1, 7, 7}));
  EXPECT_EQ(s.at("s1.pathway0_stem.bn.running_var"), (std::vector<int64_t>{64}));
  EXPECT_EQ(s.at("s2.pathway0_res0.branch1.weight"), (std::vector<int64_t>{256, 64, 1, 1, 1}));
  EXPECT_EQ(s.at("s2.pathway0_res0.branch2.a.weight"), (std::vector<int64_t>{64, 64, 1, 1, 1}));
  EXPECT_EQ(s.at("s4.pathway0_res0.branch2.a.weight"), (std::vector<int64_t>{256, 512, 3, 1, 1}));
  EXPECT_EQ(s.at("s5.pathway0_res2.branch2.c_bn.weight"), (std::vector<int64_t>{2048}));
  EXPECT_EQ(s.at("head.projection.weight"), (std::vector<int64_t>{400, 2048}));
  EXPECT_EQ(s.count("s2.pathway0_res1.branch1.weight"), 0u);  // identity shortcut
  // conv/bn weights + 4 BN tensors per BN + head: count against ResNet-50's known 53 convs.
  int convs = 0, bns = 0;
  for (auto& [k, v] : s) {
    if (v.size() == 5) ++convs;
    if (k.size() > 12 && k.compare(k.size() - 12, 12, "running_mean") == 0) ++bns;
  }
  EXPECT_EQ(convs, 53);
  EXPECT_EQ(bns, 53);
}

TEST(ModelResNet, I3DTemporalKernelsAlternate) {
  auto s = shapesOf(*FeatureModel::build(zooConfig("I3D_8x8_R50.yaml")));
  EXPECT_EQ(s.at("s1.pathway0_stem.conv.weight")[2], 5);
  EXPECT_EQ(s.at("s3.pathway0_res0.branch2.a.weight")[2], 3);
  EXPECT_EQ(s.at("s3.pathway0_res1.branch2.a.weight")[2], 1);
  EXPECT_EQ(s.at("s3.pathway0_res2.branch2.a.weight")[2], 3);
  EXPECT_EQ(s.at("s5.pathway0_res0.branch2.a.weight")[2], 1);
  EXPECT_EQ(s.at("s5.pathway0_res1.branch2.a.weight")[2], 3);
}

TEST(ModelResNet, TinyForwardShapesAndDeterminism) {
  for (const char* cfgName : {"SLOW_8x8_R50.yaml", "C2D_8x8_R50.yaml", "I3D_8x8_R50.yaml"}) {
    auto cfg = zooConfig(cfgName, kTiny);
    auto a = FeatureModel::build(cfg);
    auto b = FeatureModel::build(cfg);
    a->randomizeWeights(5);
    b->randomizeWeights(5);
    ClipShape shape = a->inputShape();
    EXPECT_EQ(shape.frames, 4);
    EXPECT_EQ(shape.height, 64);
    std::vector<float> clips(2 * shape.numel());
    for (size_t i = 0; i < clips.size(); ++i) clips[i] = float((i * 7919) % 1000) / 500.0f - 1.0f;
    std::vector<float> fa(2 * a->featureDim()), fb(fa.size()), logits(2 * a->numClasses());
    a->extract(clips.data(), 2, fa.data(), logits.data());
    b->extract(clips.data(), 2, fb.data());
    EXPECT_EQ(a->featureDim(), 128) << cfgName;
    EXPECT_EQ(fa, fb) << cfgName;
    double norm = 0;
    for (float v : fa) {
      ASSERT_TRUE(std::isfinite(v));
      norm += v * v;
    }
    EXPECT_GT(norm, 0.0);
    // The two clips differ, so must their features.
    EXPECT_NE(std::vector<float>(fa.begin(), fa.begin() + 128),
              std::vector<float>(fa.begin() + 128, fa.end()));
    // softmax head output: rows sum to 1
    double sum = 0;
    for (int k = 0; k < a->numClasses(); ++k) sum += logits[k];
    EXPECT_NEAR(sum, 1.0, 1e-4) << cfgName;
    // A different seed gives different weights.
    b->randomizeWeights(6);
    b->extract(clips.data(), 2, fb.data());
    EXPECT_NE(fa, fb);
  }
}

TEST(ModelResNet, UnsupportedValuesNameTheKey) {
  auto expectKey = [](const std::vector<std::string>& o, const std::string& key) {
    try {
      FeatureModel::build(zooConfig("SLOW_8x8_R50.yaml", o));
      FAIL() << "expected an error about " << key;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(key), std::string::npos) << e.what();
    }
  };
  expectKey({"MODEL.ARCH=resnext"}, "MODEL.ARCH");
  expectKey({"RESNET.DEPTH=34"}, "RESNET.DEPTH");
  expectKey({"BN.NORM_TYPE=sub_batchnorm"}, "BN.NORM_TYPE");
  expectKey({"DATA.INPUT_CHANNEL_NUM=[3, 3]"}, "DATA.INPUT_CHANNEL_NUM");
  expectKey({"MODEL.MODEL_NAME=Foo"}, "MODEL.MODEL_NAME");
  expectKey({"RESNET.TRANS_FUNC=x_transform"}, "RESNET.TRANS_FUNC");
  EXPECT_THROW(FeatureModel::build(zooConfig("SLOW_8x8_R50.yaml"), "cuda"), Error);
}

// The error for an unknown MODEL.MODEL_NAME lists the builder table itself: every family vidfeat
// builds, TSN (TSN and TSM) included, and every name it lists builds something.
TEST(ModelResNet, UnknownModelNameListsEveryBuiltFamily) {
  const auto names = model::supportedModelNames();
  for (const char* family : {"ResNet", "ResNet_nopool", "SlowFast", "X3D", "TSN", "MViT"}) {
    EXPECT_NE(std::find(names.begin(), names.end(), family), names.end()) << family;
  }
  try {
    FeatureModel::build(zooConfig("SLOW_8x8_R50.yaml", {"MODEL.MODEL_NAME=Foo"}));
    FAIL() << "MODEL_NAME Foo built";
  } catch (const Error& e) {
    for (const auto& n : names)
      EXPECT_NE(std::string(e.what()).find(n), std::string::npos) << n << ": " << e.what();
  }
}
