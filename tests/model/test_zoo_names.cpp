// Every published model vidfeat knows by name builds from its shipped config and has the
// feature size configs/models.yaml (and `vidfeat models`) announces.
#include <gtest/gtest.h>

#include "vidfeat/config/config.h"
#include "vidfeat/config/model_zoo.h"
#include "vidfeat/model/feature_model.h"

TEST(ZooNames, EveryNamedModelBuildsWithItsAnnouncedFeatureDim) {
  const auto models = vidfeat::zooModels();
  ASSERT_GE(models.size(), 16u);
  for (const auto& m : models) {
    SCOPED_TRACE(m.name);
    auto model = vidfeat::FeatureModel::build(vidfeat::Config::load(m.config));
    EXPECT_EQ(model->featureDim(), m.featureDim);
    EXPECT_FALSE(m.url.empty());
  }
}
