// Every model `vidfeat models` names, built from its shipped config, has exactly the state-dict
// keys and shapes of the reference's own model for that config: PySlowFast's build_model (the
// c2d_nopool PySlowFast of before commit 99a655b for C2D NOPOOL), the TSM repository's TSN class
// for TSN/TSM. The reference shapes are tests/fixtures/zoo_state_shapes.json, written by
// tools/reference/zoo_state_shapes.py from those models (no weights involved); a model added to
// configs/models.yaml without a reference entry fails here.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "test_support.h"
#include "vidfeat/config/config.h"
#include "vidfeat/model/feature_model.h"
#include "vidfeat/zoo/model_zoo.h"

namespace {

using Shapes = std::map<std::string, std::vector<int64_t>>;

std::string joined(const std::vector<std::string>& v) {
  std::string out;
  for (size_t i = 0; i < v.size() && i < 8; ++i) out += (i ? ", " : "") + v[i];
  if (v.size() > 8) out += ", ... (" + std::to_string(v.size()) + " in all)";
  return out;
}

}  // namespace

TEST(ZooShapes, EveryNamedModelHasTheReferenceKeysAndShapes) {
  namespace fs = std::filesystem;
  const auto path = vidfeat::testing::sourceDir() / "tests" / "fixtures" / "zoo_state_shapes.json";
  const YAML::Node root = YAML::LoadFile(path.string());
  const auto models = vidfeat::zooModels();
  ASSERT_GE(models.size(), 19u);
  for (const auto& m : models) {
    SCOPED_TRACE(m.name);
    const YAML::Node entry = root["models"][m.name];
    ASSERT_TRUE(entry) << "no reference shapes for " << m.name
                       << ": run tools/reference/zoo_state_shapes.py --only " << m.name;
    // The reference was built from the config this model uses.
    EXPECT_EQ(fs::path(vidfeat::configDir()) / entry["config"].as<std::string>(),
              fs::path(m.config));
    Shapes ref;
    for (const auto& kv : root["shape_sets"][entry["shapes"].as<std::string>()]) {
      ref[kv.first.as<std::string>()] = kv.second.as<std::vector<int64_t>>();
    }
    ASSERT_FALSE(ref.empty());

    auto model = vidfeat::FeatureModel::build(vidfeat::Config::load(m.config));
    Shapes ours;
    for (auto& [k, v] : model->stateShapes()) ours[k] = v;
    std::vector<std::string> missing, unexpected, wrong;
    for (const auto& [k, shape] : ref) {
      auto it = ours.find(k);
      if (it == ours.end()) {
        missing.push_back(k);
      } else if (it->second != shape) {
        wrong.push_back(k);
      }
    }
    for (const auto& kv : ours) {
      if (!ref.count(kv.first)) unexpected.push_back(kv.first);
    }
    EXPECT_TRUE(missing.empty()) << "keys of the reference vidfeat lacks: " << joined(missing);
    EXPECT_TRUE(unexpected.empty()) << "keys the reference lacks: " << joined(unexpected);
    EXPECT_TRUE(wrong.empty()) << "shapes that differ: " << joined(wrong);
    EXPECT_EQ(ours.size(), ref.size());
  }
}
