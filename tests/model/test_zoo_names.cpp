// Every published model vidfeat knows by name builds from its shipped config and has the
// feature size configs/models.yaml (and `vidfeat models`) announces; its feature description
// carries the built network's own widths.
#include <gtest/gtest.h>

#include "vidfeat/config/config.h"
#include "vidfeat/model/feature_model.h"
#include "vidfeat/zoo/model_zoo.h"

namespace {

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

}  // namespace

TEST(ZooNames, EveryNamedModelBuildsWithItsAnnouncedFeatureDim) {
  const auto models = vidfeat::zooModels();
  ASSERT_GE(models.size(), 19u);
  for (const auto& m : models) {
    SCOPED_TRACE(m.name);
    auto model = vidfeat::FeatureModel::build(vidfeat::Config::load(m.config));
    EXPECT_EQ(model->featureDim(), m.featureDim);
    EXPECT_FALSE(m.url.empty());
    // The description starts with the dimension the network really has.
    const std::string d = model->featureDescription();
    EXPECT_EQ(d.rfind(std::to_string(m.featureDim) + "-d: ", 0), 0u) << d;
  }
}

// The widths in the description are the built network's: PySlowFast's SlowFast 8x8 R50 head takes
// Slow res5 (32 * WIDTH_PER_GROUP 64) and Fast res5 (that / BETA_INV 8); X3D-S's res5 has
// round(96 * WIDTH_FACTOR 2) = 192 channels, conv_5 int(2.25 * 192) = 432, lin_5 DIM_C5 2048.
TEST(ZooNames, FeatureDescriptionFollowsTheBuiltWidths) {
  using vidfeat::Config;
  using vidfeat::FeatureModel;
  const std::string sf = vidfeat::findZooModel("SLOWFAST_8x8_R50").config;
  auto d = FeatureModel::build(Config::load(sf))->featureDescription();
  EXPECT_TRUE(contains(d, "2304-d: Slow res5 (2048) and Fast res5 (256)")) << d;
  // Half the width: 1024 + 128.
  d = FeatureModel::build(Config::load(sf, {"RESNET.WIDTH_PER_GROUP=32"}))->featureDescription();
  EXPECT_TRUE(contains(d, "1152-d: Slow res5 (1024) and Fast res5 (128)")) << d;

  d = FeatureModel::build(Config::load(vidfeat::findZooModel("X3D_S").config))
          ->featureDescription();
  EXPECT_TRUE(contains(d, "2048-d: res5 (192 channels) -> conv_5 (432)")) << d;
  d = FeatureModel::build(Config::load(vidfeat::findZooModel("X3D_S").config, {"X3D.DIM_C5=1024"}))
          ->featureDescription();
  EXPECT_TRUE(contains(d, "1024-d:")) << d;

  d = FeatureModel::build(
          Config::load(vidfeat::findZooModel("SLOW_8x8_R50").config, {"RESNET.WIDTH_PER_GROUP=16"}))
          ->featureDescription();
  EXPECT_TRUE(contains(d, "512-d: res5 output of the R50 (512 channels)")) << d;

  d = FeatureModel::build(Config::load(vidfeat::findZooModel("TSM_R50").config))
          ->featureDescription();
  EXPECT_TRUE(contains(d, "2048-d: torchvision ResNet-50")) << d;
  EXPECT_TRUE(contains(d, "8 frames (TSM consensus; 1/8 of the channels")) << d;
  d = FeatureModel::build(Config::load(vidfeat::findZooModel("TSN_R50").config))
          ->featureDescription();
  // configs/TSN tests the segment5 checkpoint on DATA.NUM_FRAMES 8, as TSM's README does.
  EXPECT_TRUE(contains(d, "8 frames (TSN consensus)")) << d;

  d = FeatureModel::build(Config::load(vidfeat::findZooModel("MVITv2_S_16x4").config))
          ->featureDescription();
  EXPECT_TRUE(contains(d, "768-d: the cls token after the final norm")) << d;
  d = FeatureModel::build(Config::load(vidfeat::findZooModel("REV_MVIT_B_16x4").config))
          ->featureDescription();
  EXPECT_TRUE(contains(d, "1536-d:")) << d;
  EXPECT_TRUE(contains(d, "(768 + 768)")) << d;
}
