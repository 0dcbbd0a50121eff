// TSN and TSM (mit-han-lab/temporal-shift-module). Key names, shapes and counts below were read off
// the TSM repository's own TSN class (tools/fixtures/make_tsm_fixtures.py --full: torchvision
// ResNet-50, state_dict() with DataParallel's "module." stripped); the parity fixtures come from
// the same script at a reduced width.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>

#include "checkpoint/state_dict.h"
#include "networks/tsm.h"
#include "networks/video_net.h"
#include "test_support.h"
#include "vidfeat/common/error.h"
#include "vidfeat/config/config.h"
#include "vidfeat/model/feature_model.h"

using namespace vidfeat;
using Shape = std::vector<int64_t>;

namespace {

const char* const kTsmConfig = "configs/TSM/TSM_R50_shift8_blockres_avg_segment8.yaml";
const char* const kTsnConfig = "configs/TSN/TSN_R50_avg_segment5.yaml";

Config config(const std::string& rel, const std::vector<std::string>& overrides = {}) {
  return Config::load((vidfeat::testing::sourceDir() / rel).string(), overrides);
}

std::filesystem::path fixtureDir() { return vidfeat::testing::sourceDir() / "tests" / "fixtures"; }

std::map<std::string, Shape> shapesOf(const FeatureModel& m) {
  std::map<std::string, Shape> s;
  for (auto& [k, v] : m.stateShapes()) s[k] = v;
  return s;
}

void expectErrorNaming(const Config& cfg, const std::string& key) {
  try {
    model::buildVideoNet(cfg);
    ADD_FAILURE() << "no error for " << key;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(key), std::string::npos) << e.what();
  }
}

}  // namespace

// The published files' keys: TSN's 320 entries (267 parameters and BN statistics, 53
// num_batches_tracked), ResNet-50 without fc (TSN turns it into a Dropout) plus new_fc.
TEST(Tsm, FullSizeKeysShapesAndCountsEqualTheReference) {
  struct Entry {
    const char* config;
    const char* shiftedConv1;  // layer1.0's conv1 weight key
    const char* plainConv1;    // the key that must not exist
  };
  const Entry entries[] = {
      {kTsmConfig, "base_model.layer1.0.conv1.net.weight", "base_model.layer1.0.conv1.weight"},
      {kTsnConfig, "base_model.layer1.0.conv1.weight", "base_model.layer1.0.conv1.net.weight"},
  };
  for (const auto& e : entries) {
    SCOPED_TRACE(e.config);
    auto cfg = config(e.config);
    auto m = FeatureModel::build(cfg);
    EXPECT_EQ(m->featureDim(), 2048);
    EXPECT_EQ(m->numClasses(), 400);
    EXPECT_EQ(m->inputShape().frames, 8);
    EXPECT_EQ(m->inputShape().height, 224);
    auto s = shapesOf(*m);
    EXPECT_EQ(s.size(), 320u);
    int64_t params = 0;
    for (const auto& p : model::buildVideoNet(cfg)->parameters()) params += p.numel();
    EXPECT_EQ(params, 24327632);  // sum(p.numel() for p in TSN.parameters())
    EXPECT_EQ(s.at("base_model.conv1.weight"), (Shape{64, 3, 7, 7}));
    EXPECT_EQ(s.at(e.shiftedConv1), (Shape{64, 64, 1, 1}));
    EXPECT_EQ(s.count(e.plainConv1), 0u);
    EXPECT_EQ(s.at("base_model.layer1.0.downsample.0.weight"), (Shape{256, 64, 1, 1}));
    EXPECT_EQ(s.at("base_model.layer2.0.conv2.weight"), (Shape{128, 128, 3, 3}));
    EXPECT_EQ(s.at("base_model.layer4.2.bn3.running_var"), (Shape{2048}));
    EXPECT_EQ(s.at("new_fc.weight"), (Shape{400, 2048}));
    EXPECT_EQ(s.at("new_fc.bias"), (Shape{400}));
    EXPECT_EQ(s.count("base_model.fc.weight"), 0u);
  }
}

// ResNet-101 TSM (published for Something-Something): make_temporal_shift shifts only every
// second block when layer3 has >= 23 blocks.
TEST(Tsm, ResNet101ShiftsEverySecondBlock) {
  auto m = FeatureModel::build(config(kTsmConfig, {"RESNET.DEPTH=101"}));
  auto s = shapesOf(*m);
  EXPECT_EQ(s.count("base_model.layer3.0.conv1.net.weight"), 1u);
  EXPECT_EQ(s.count("base_model.layer3.1.conv1.weight"), 1u);
  EXPECT_EQ(s.count("base_model.layer3.22.conv1.net.weight"), 1u);
  EXPECT_EQ(s.count("base_model.layer1.1.conv1.weight"), 1u);
}

// TemporalShift.shift on a hand-checkable tensor: 2 videos x 3 frames, 16 channels, fold 2.
TEST(Tsm, TemporalShiftMovesOneFoldEachWayWithinAVideo) {
  const int64_t n = 2, t = 3, c = 16;
  auto x = torch::arange(n * t * c, torch::kFloat32).view({n * t, c, 1, 1}) + 1;  // no zeros
  auto y = model::temporalShift(x, t, 8).view({n, t, c});
  auto v = x.view({n, t, c});
  for (int64_t b = 0; b < n; ++b) {
    for (int64_t f = 0; f < t; ++f) {
      for (int64_t ch = 0; ch < c; ++ch) {
        float want;
        if (ch < 2) {
          want = f + 1 < t ? v[b][f + 1][ch].item<float>() : 0.0f;  // from the next frame
        } else if (ch < 4) {
          want = f > 0 ? v[b][f - 1][ch].item<float>() : 0.0f;  // from the previous frame
        } else {
          want = v[b][f][ch].item<float>();
        }
        EXPECT_EQ(y[b][f][ch].item<float>(), want) << b << " " << f << " " << ch;
      }
    }
  }
}

TEST(Tsm, UnsupportedSettingsNameTheirKey) {
  expectErrorNaming(config(kTsmConfig, {"TSM.SHIFT_PLACE=block"}), "TSM.SHIFT_PLACE");
  expectErrorNaming(config(kTsmConfig, {"TSM.CONSENSUS=identity"}), "TSM.CONSENSUS");
  expectErrorNaming(config(kTsmConfig, {"TSM.SHIFT_DIV=0"}), "TSM.SHIFT_DIV");
  expectErrorNaming(config(kTsmConfig, {"MODEL.ARCH=c2d"}), "MODEL.ARCH");
  expectErrorNaming(config(kTsmConfig, {"RESNET.DEPTH=18"}), "RESNET.DEPTH");
  expectErrorNaming(config(kTsmConfig, {"RESNET.NUM_GROUPS=32"}), "RESNET.NUM_GROUPS");
}

// The shift mixes neighbouring rows of the frame batch, so a clip whose T is not n_segment
// would silently mix videos: refused, naming DATA.NUM_FRAMES.
TEST(Tsm, ClipLengthMustEqualSegments) {
  auto net = model::buildVideoNet(
      config(kTsmConfig, {"RESNET.WIDTH_PER_GROUP=8", "DATA.NUM_FRAMES=4", "MODEL.NUM_CLASSES=3"}));
  net->eval();
  torch::NoGradGuard g;
  const std::vector<torch::Tensor> good = {torch::randn({1, 3, 4, 32, 32})};
  const std::vector<torch::Tensor> bad = {torch::randn({1, 3, 5, 32, 32})};
  EXPECT_NO_THROW(net->forwardFeatures(good, true));
  try {
    net->forwardFeatures(bad, false);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("DATA.NUM_FRAMES"), std::string::npos) << e.what();
  }
}

// Parity with the TSM repository's TSN class on the committed fixtures (reduced width, random
// weights and BN statistics, batch 2 so the shift must keep videos apart), loaded as the
// published files are: {"state_dict": {"module.base_model...."}}, legacy and zip containers.
TEST(Tsm, FixtureFeaturesEqualTheReference) {
  const YAML::Node root = YAML::LoadFile((fixtureDir() / "tsm_fixtures.json").string());
  size_t seen = 0;
  for (const auto& f : root["fixtures"]) {
    const auto name = f["name"].as<std::string>();
    SCOPED_TRACE(name);
    ++seen;
    auto cfg = config(f["config"].as<std::string>(), f["overrides"].as<std::vector<std::string>>());
    auto m = FeatureModel::build(cfg);
    EXPECT_EQ(m->featureDim(), f["feature_dim"].as<int64_t>());
    EXPECT_EQ(int64_t(m->stateShapes().size()), f["state_keys"].as<int64_t>());
    auto report = m->loadCheckpoint(
        (fixtureDir() / f["files"]["checkpoint"].as<std::string>()).string(), "pytorch");
    EXPECT_TRUE(report.absentHeadKeys.empty());
    auto r = m->verifyIo((fixtureDir() / f["files"]["io"].as<std::string>()).string());
    EXPECT_EQ(r.batch, f["batch"].as<int64_t>());
    EXPECT_LE(r.relativeError, 1e-4);
    std::printf("[tsm parity] %-38s rel.err %.3g (forward %.3f s, reference %.3f s)\n",
                name.c_str(), r.relativeError, r.forwardSeconds,
                f["reference_forward_s"].as<double>());
  }
  EXPECT_EQ(seen, 2u);
}

// The check can fail: TSN's weights on TSM's stored input (same batch and feature size, other
// frames and weights) are far from TSM's feature.
TEST(Tsm, FixtureOfAnotherModelDoesNotVerify) {
  auto m =
      FeatureModel::build(config(kTsnConfig, {"DATA.NUM_FRAMES=8", "DATA.TEST_CROP_SIZE=64",
                                              "MODEL.NUM_CLASSES=10", "RESNET.WIDTH_PER_GROUP=8"}));
  m->loadCheckpoint((fixtureDir() / "TSN_R50_avg_segment5.pth").string(), "pytorch");
  EXPECT_GT(m->verifyIo((fixtureDir() / "TSM_R50_shift8_blockres_avg_segment8.io.pt").string())
                .relativeError,
            0.1);
}

// The TSN checkpoint has conv1.weight where TSM has conv1.net.weight: the strict loader must
// refuse it for the TSM config rather than load a model without its shift's weights.
TEST(Tsm, TsnCheckpointDoesNotLoadIntoTsm) {
  auto m =
      FeatureModel::build(config(kTsmConfig, {"DATA.NUM_FRAMES=8", "DATA.TEST_CROP_SIZE=64",
                                              "MODEL.NUM_CLASSES=10", "RESNET.WIDTH_PER_GROUP=8"}));
  EXPECT_THROW(m->loadCheckpoint((fixtureDir() / "TSN_R50_avg_segment5.pth").string(), "pytorch"),
               InputError);
}

// Full size (ResNet-50, 224 px, the configs as shipped) against the files
// `tools/fixtures/make_tsm_fixtures.py --full DIR` writes (~100 MB each, not committed): runs only
// when VIDFEAT_TSM_FULL=DIR is set.
TEST(Tsm, FullSizeFeaturesEqualTheReference) {
  const char* dirEnv = std::getenv("VIDFEAT_TSM_FULL");
  if (!dirEnv) GTEST_SKIP() << "VIDFEAT_TSM_FULL not set";
  const std::filesystem::path dir(dirEnv);
  const YAML::Node root = YAML::LoadFile((dir / "tsm_fixtures.json").string());
  for (const auto& f : root["fixtures"]) {
    const auto name = f["name"].as<std::string>();
    SCOPED_TRACE(name);
    // The shipped config, with NUM_FRAMES as the reference ran it.
    auto m =
        FeatureModel::build(config(f["config"].as<std::string>(),
                                   {"DATA.NUM_FRAMES=" + std::to_string(f["segments"].as<int>())}));
    m->loadCheckpoint((dir / f["files"]["checkpoint"].as<std::string>()).string(), "pytorch");
    auto r = m->verifyIo((dir / f["files"]["io"].as<std::string>()).string());
    EXPECT_LE(r.relativeError, 1e-4);
    std::printf("[tsm full] %-38s rel.err %.3g forward %.3f s (reference %.3f s)\n", name.c_str(),
                r.relativeError, r.forwardSeconds, f["reference_forward_s"].as<double>());
  }
}
