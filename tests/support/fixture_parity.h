#pragma once
// Parity with the reference on the committed fixtures (tests/fixtures/fixtures.json, written by
// tools/fixtures/make_fixtures.py): each named fixture's model is built from its config and
// overrides, loaded from every checkpoint format the fixture has, and its feature compared with the
// reference's, ||ours - ref|| / ||ref|| <= 1e-4. A name missing from the manifest is a failure,
// and so is a model that does not build (this is not a skip).
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "test_support.h"
#include "vidfeat/config/config.h"
#include "vidfeat/model/feature_model.h"

namespace vidfeat::testing {

inline fs::path fixtureDir() { return sourceDir() / "tests" / "fixtures"; }

// Calls fn(name, entry, cfg) for each named fixture of tests/fixtures/`manifest` (fixtures.json,
// tsm_fixtures.json, clip_fixtures.json: its config with its overrides loaded), under a
// SCOPED_TRACE of its name; a name missing from the manifest is a failure.
template <typename Fn>
void forEachFixture(const std::vector<std::string>& names, Fn&& fn,
                    const std::string& manifest = "fixtures.json") {
  // The manifests are JSON, which yaml-cpp reads as YAML.
  const YAML::Node root = YAML::LoadFile((fixtureDir() / manifest).string());
  size_t seen = 0;
  for (const auto& f : root["fixtures"]) {
    const auto name = f["name"].as<std::string>();
    if (std::find(names.begin(), names.end(), name) == names.end()) continue;
    ++seen;
    SCOPED_TRACE(name);
    const auto cfg = Config::load((sourceDir() / f["config"].as<std::string>()).string(),
                                  f["overrides"].as<std::vector<std::string>>());
    fn(name, f, cfg);
  }
  EXPECT_EQ(seen, names.size()) << "a fixture is missing from tests/fixtures/" << manifest;
}

inline void expectFixtureParity(const std::vector<std::string>& names, const char* tag,
                                const std::string& manifest = "fixtures.json") {
  forEachFixture(
      names,
      [&](const std::string& name, const YAML::Node& f, const Config& cfg) {
        auto m = FeatureModel::build(cfg);
        EXPECT_EQ(m->featureDim(), f["feature_dim"].as<int64_t>());
        const auto io = (fixtureDir() / f["files"]["io"].as<std::string>()).string();
        for (const auto& kv : f["files"]) {
          const auto format = kv.first.as<std::string>();
          if (format == "io") continue;
          SCOPED_TRACE(format);
          m->loadCheckpoint((fixtureDir() / kv.second.as<std::string>()).string(),
                            format == "caffe2" ? "caffe2" : "pytorch");
          const double rel = m->verifyIo(io).relativeError;
          EXPECT_LE(rel, 1e-4);
          std::printf("[%s parity] %-38s %-7s rel.err %.3g\n", tag, name.c_str(), format.c_str(),
                      rel);
        }
      },
      manifest);
}

}  // namespace vidfeat::testing
