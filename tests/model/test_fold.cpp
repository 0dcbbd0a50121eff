// BatchNorm folding and the blocked (MKL-DNN) layout (model/conv_bn.h) against the plain model:
// every architecture family, random weights AND random BatchNorm statistics, within 1e-5.
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "kernels/conv_bn.h"
#include "networks/video_net.h"
#include "test_support.h"
#include "vidfeat/config/config.h"

using namespace vidfeat;

namespace {

struct Case {
  const char* config;  // under configs/
  std::vector<std::string> overrides;
};

const std::vector<std::string> kResnet = {"RESNET.WIDTH_PER_GROUP=4", "DATA.NUM_FRAMES=8",
                                          "DATA.TRAIN_CROP_SIZE=64", "DATA.TEST_CROP_SIZE=64",
                                          "MODEL.NUM_CLASSES=7"};
const std::vector<std::string> kSlowFast = {"RESNET.WIDTH_PER_GROUP=8", "DATA.NUM_FRAMES=16",
                                            "DATA.TRAIN_CROP_SIZE=64", "DATA.TEST_CROP_SIZE=64",
                                            "MODEL.NUM_CLASSES=7"};
const std::vector<std::string> kX3d = {"DATA.NUM_FRAMES=4", "DATA.TRAIN_CROP_SIZE=64",
                                       "DATA.TEST_CROP_SIZE=64", "MODEL.NUM_CLASSES=7"};
const std::vector<std::string> kTsm = {"RESNET.WIDTH_PER_GROUP=8", "DATA.NUM_FRAMES=4",
                                       "DATA.TRAIN_CROP_SIZE=64", "DATA.TEST_CROP_SIZE=64",
                                       "MODEL.NUM_CLASSES=7"};

std::vector<Case> cases() {
  auto with = [](std::vector<std::string> v, const std::string& extra) {
    v.push_back(extra);
    return v;
  };
  auto basic = with(with(with(kResnet, "RESNET.DEPTH=18"), "RESNET.TRANS_FUNC=basic_transform"),
                    "RESNET.NUM_BLOCK_TEMP_KERNEL=[[2],[2],[2],[2]]");
  return {
      {"Kinetics/C2D_8x8_R50.yaml", kResnet},
      {"Kinetics/c2/C2D_NOPOOL_8x8_R50.yaml", kResnet},
      {"Kinetics/I3D_8x8_R50.yaml", kResnet},
      {"Kinetics/I3D_NLN_8x8_R50.yaml", kResnet},
      {"Kinetics/SLOW_8x8_R50.yaml", kResnet},
      {"Kinetics/SLOW_8x8_R50.yaml", basic},
      {"Kinetics/SLOWFAST_8x8_R50.yaml", kSlowFast},
      {"Kinetics/c2/SLOWFAST_16x8_R101_50_50.yaml", kSlowFast},
      {"Kinetics/X3D_S.yaml", kX3d},
      {"Kinetics/X3D_M.yaml", with(kX3d, "X3D.BN_LIN5=True")},
      {"TSM/TSM_R50_shift8_blockres_avg_segment8.yaml", kTsm},
      {"TSN/TSN_R50_avg_segment5.yaml", kTsm},
  };
}

double relErr(const torch::Tensor& a, const torch::Tensor& ref) {
  auto r = ref.to(torch::kFloat64);
  return (a.to(torch::kFloat64) - r).norm().item<double>() / r.norm().item<double>();
}

size_t countBatchNorms(torch::nn::Module& net) {
  size_t n = 0;
  for (const auto& m : net.modules(/*include_self=*/false)) {
    if (dynamic_cast<torch::nn::BatchNorm3dImpl*>(m.get()) ||
        dynamic_cast<torch::nn::BatchNorm2dImpl*>(m.get()))
      ++n;
  }
  return n;
}

// Restores the process-wide layout switch whatever a test does.
struct LayoutGuard {
  bool saved = model::blockedLayout();
  ~LayoutGuard() { model::setBlockedLayout(saved); }
};

}  // namespace

TEST(BatchNormFolding, FoldedAndBlockedMatchThePlainModelForEveryFamily) {
  LayoutGuard guard;
  c10::InferenceMode inference;
  for (const auto& c : cases()) {
    SCOPED_TRACE(c.config);
    auto cfg =
        Config::load((vidfeat::testing::sourceDir() / "configs" / c.config).string(), c.overrides);
    auto net = model::buildVideoNet(cfg);
    net->eval();
    model::randomizeParameters(*net, 11);  // running means and variances random too
    std::vector<std::string> keysBefore;
    for (const auto& p : net->named_parameters()) keysBefore.push_back(p.key());
    for (const auto& b : net->named_buffers()) keysBefore.push_back(b.key());

    const int64_t t = cfg.get<int>("DATA.NUM_FRAMES"), s = cfg.get<int>("DATA.TEST_CROP_SIZE");
    auto gen = at::detail::createCPUGenerator(3);
    auto clip = torch::randn({2, 3, t, s, s}, gen, torch::kFloat32);
    auto pathways = model::packPathways(cfg, clip);

    model::setBlockedLayout(false);
    ASSERT_EQ(model::foldBatchNorms(*net, false), countBatchNorms(*net));
    auto plain = net->forwardFeatures(pathways, true);

    // Every BatchNorm of the net belongs to exactly one pair.
    ASSERT_GT(countBatchNorms(*net), 0u);
    ASSERT_EQ(model::foldBatchNorms(*net, true), countBatchNorms(*net));
    auto folded = net->forwardFeatures(pathways, true);
    EXPECT_LT(relErr(folded.features, plain.features), 1e-5);
    EXPECT_LT(relErr(folded.logits, plain.logits), 1e-5);
    // Folding computes something else than the two modules (else this test would test nothing).
    EXPECT_FALSE(torch::equal(folded.features, plain.features));

    model::setBlockedLayout(true);
    model::foldBatchNorms(*net, true);  // prepacks the weights
    auto blocked = net->forwardFeatures(pathways, true);
    EXPECT_FALSE(blocked.features.is_mkldnn());
    EXPECT_LT(relErr(blocked.features, plain.features), 1e-5);
    EXPECT_LT(relErr(blocked.logits, plain.logits), 1e-5);

    // Blocked layout without folding: the pairs run the modules, converting as needed.
    model::foldBatchNorms(*net, false);
    auto blockedPlain = net->forwardFeatures(pathways, true);
    EXPECT_LT(relErr(blockedPlain.features, plain.features), 1e-5);

    std::vector<std::string> keysAfter;
    for (const auto& p : net->named_parameters()) keysAfter.push_back(p.key());
    for (const auto& b : net->named_buffers()) keysAfter.push_back(b.key());
    EXPECT_EQ(keysAfter, keysBefore);  // state-dict names unchanged: loading stays strict
  }
}

TEST(BatchNormFolding, RefoldingFollowsNewWeights) {
  LayoutGuard guard;
  c10::InferenceMode inference;
  auto cfg = Config::load(
      (vidfeat::testing::sourceDir() / "configs/Kinetics/SLOW_8x8_R50.yaml").string(), kResnet);
  auto net = model::buildVideoNet(cfg);
  net->eval();
  auto clip = torch::randn({1, 3, 8, 64, 64}, at::detail::createCPUGenerator(4), torch::kFloat32);
  model::randomizeParameters(*net, 1);
  model::foldBatchNorms(*net);
  auto first = net->forwardFeatures({clip}, false).features;
  model::randomizeParameters(*net, 2);
  model::foldBatchNorms(*net, false);
  auto plain2 = net->forwardFeatures({clip}, false).features;
  model::foldBatchNorms(*net);
  auto folded2 = net->forwardFeatures({clip}, false).features;
  EXPECT_GT(relErr(first, plain2), 1e-2);  // the weights did change
  EXPECT_LT(relErr(folded2, plain2), 1e-5);
}

TEST(BatchNormFolding, TrainingModeRunsTheModules) {
  auto cfg = Config::load(
      (vidfeat::testing::sourceDir() / "configs/Kinetics/C2D_8x8_R50.yaml").string(), kResnet);
  auto net = model::buildVideoNet(cfg);
  model::randomizeParameters(*net, 1);
  net->eval();
  model::foldBatchNorms(*net);
  net->train();  // batch statistics: folding with the running ones would be wrong
  torch::NoGradGuard noGrad;
  auto clip = torch::randn({2, 3, 8, 64, 64}, at::detail::createCPUGenerator(4), torch::kFloat32);
  auto train1 = net->forwardFeatures({clip}, false).features;
  model::foldBatchNorms(*net, false);
  auto train2 = net->forwardFeatures({clip}, false).features;
  EXPECT_LT(relErr(train1, train2), 1e-6);
}
