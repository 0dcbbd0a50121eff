// kernels/gemm.h: oneDNN's sgemm for matmul / linear and the fused attention, against LibTorch's
// own ops in double precision (every layout the kernels read in place, and the ones they copy),
// and the models that use them (MViTs, the non-local block) with the switch on against off.
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/record_function.h>
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <mutex>
#include <string>
#include <vector>

#include "checkpoint/state_dict.h"
#include "fixture_parity.h"
#include "kernels/conv_bn.h"
#include "kernels/gemm.h"
#include "networks/video_net.h"
#include "test_support.h"
#include "vidfeat/config/config.h"

using namespace vidfeat;
namespace gemm = vidfeat::model::gemm;

namespace {

double relErr(const torch::Tensor& a, const torch::Tensor& ref) {
  auto r = ref.to(torch::kFloat64);
  return (a.to(torch::kFloat64) - r).norm().item<double>() / r.norm().item<double>();
}

torch::Tensor randn(std::vector<int64_t> sizes, uint64_t seed) {
  return torch::randn(sizes, at::detail::createCPUGenerator(seed), torch::kFloat32);
}

struct SwitchGuard {
  bool saved = gemm::onednnGemm();
  ~SwitchGuard() { gemm::setOnednnGemm(saved); }
};

torch::Tensor d(const torch::Tensor& t) { return t.to(torch::kFloat64); }

}  // namespace

TEST(Gemm, BuiltWhereLibTorchLinksOneDnn) {
  // Debian's LibTorch (the build CI makes) has it; a CUDA LibTorch build turns it off.
  if (!gemm::onednnGemmBuilt()) GTEST_SKIP() << "built without VIDFEAT_ONEDNN_GEMM";
  EXPECT_TRUE(gemm::onednnGemm());
}

TEST(Gemm, MatmulEqualsTorchInEveryLayout) {
  c10::InferenceMode inference;
  // [M, K] x [K, N] with M, N, K not multiples of any vector width.
  auto a = randn({2, 3, 37, 29}, 1), b = randn({2, 3, 29, 41}, 2);
  struct Case {
    const char* what;
    torch::Tensor a, b;
  };
  std::vector<Case> cases = {
      {"contiguous", a, b},
      {"a transposed in memory", a.transpose(-2, -1).contiguous().transpose(-2, -1), b},
      {"b transposed in memory", a, b.transpose(-2, -1).contiguous().transpose(-2, -1)},
      {"batch dims permuted", a.permute({1, 0, 2, 3}).contiguous().permute({1, 0, 2, 3}), b},
      {"rows apart (read in place)", randn({2, 3, 74, 29}, 3).slice(2, 0, 74, 2), b},
      {"neither rows nor columns contiguous (copied)",
       randn({2, 3, 74, 58}, 3).slice(2, 0, 74, 2).slice(3, 0, 58, 2), b},
      {"2-D", a[0][0], b[1][2]},
      {"one row", a.slice(2, 0, 1), b},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    auto ref = torch::matmul(d(c.a), d(c.b));
    auto out = gemm::matmul(c.a, c.b);
    EXPECT_EQ(out.sizes(), ref.sizes());
    EXPECT_LT(relErr(out, ref), 1e-6);
  }
  // Shapes it does not take go to torch::matmul (broadcasting), bit for bit.
  EXPECT_TRUE(
      torch::equal(gemm::matmul(a[0], randn({29, 5}, 5)), torch::matmul(a[0], randn({29, 5}, 5))));
  EXPECT_TRUE(torch::equal(gemm::matmul(a, b[0][0]), torch::matmul(a, b[0][0])));
}

TEST(Gemm, SwitchOffIsLibTorchsOwnOp) {
  c10::InferenceMode inference;
  SwitchGuard guard;
  auto a = randn({5, 64, 48}, 6), b = randn({5, 48, 33}, 7);
  gemm::setOnednnGemm(false);
  EXPECT_FALSE(gemm::onednnGemm());
  EXPECT_TRUE(torch::equal(gemm::matmul(a, b), torch::matmul(a, b)));
  torch::nn::Linear fc(48, 17);
  EXPECT_TRUE(torch::equal(gemm::linear(a, fc), fc(a)));
  EXPECT_FALSE(gemm::fusedAttention(a.unsqueeze(0), a.unsqueeze(0), a.unsqueeze(0)));
}

TEST(Gemm, LinearWithBiasAndGelu) {
  c10::InferenceMode inference;
  torch::nn::Linear fc(96, 130), noBias(torch::nn::LinearOptions(96, 130).bias(false));
  auto x = randn({3, 201, 96}, 8);
  auto ref = torch::nn::functional::linear(d(x), d(fc->weight), d(fc->bias));
  EXPECT_LT(relErr(gemm::linear(x, fc), ref), 1e-6);
  EXPECT_LT(relErr(gemm::linear(x, fc, gemm::Activation::Gelu), torch::gelu(ref)), 1e-6);
  EXPECT_LT(relErr(gemm::linear(x, noBias), torch::matmul(d(x), d(noBias->weight).t())), 1e-6);
  // A transposed input is read in place, a sliced one copied: same numbers.
  auto xt = x.transpose(1, 2).contiguous().transpose(1, 2);
  EXPECT_LT(relErr(gemm::linear(xt, fc), ref), 1e-6);
  EXPECT_LT(relErr(gemm::linear(randn({3, 201, 192}, 9).slice(2, 0, 192, 2), fc),
                   torch::nn::functional::linear(d(randn({3, 201, 192}, 9).slice(2, 0, 192, 2)),
                                                 d(fc->weight), d(fc->bias))),
            1e-6);
}

TEST(Gemm, FusedAttentionEqualsTheUnfusedOps) {
  if (!gemm::onednnGemmBuilt()) GTEST_SKIP() << "built without VIDFEAT_ONEDNN_GEMM";
  c10::InferenceMode inference;
  // Lq of several blocks plus a partial one, two batches, three heads.
  const int64_t B = 2, H = 3, Lq = 700, Lk = 257, D = 24, Dv = 20;
  auto q = randn({B, H, Lq, D}, 10), k = randn({B, H, Lk, D}, 11), v = randn({B, H, Lk, Dv}, 12);
  auto biasT = randn({B, H, Lq, Lk}, 13);
  const double scale = 0.37;
  auto logits = torch::matmul(d(q), d(k).transpose(-2, -1)) * scale;
  auto ref = torch::matmul(torch::softmax(logits, -1), d(v));
  auto refBiased = torch::matmul(torch::softmax(logits + d(biasT), -1), d(v));

  ASSERT_TRUE(gemm::fusedAttention(q, k, v));
  auto out = gemm::attention(q, k, v, scale);
  EXPECT_EQ(out.sizes(), ref.sizes());
  EXPECT_LT(relErr(out, ref), 1e-6);
  // Stored as [B, Lq, H, Dv]: heads side by side per token.
  EXPECT_TRUE(out.transpose(1, 2).is_contiguous());

  // The bias callback sees every row of every (batch, head) exactly once.
  auto seen = torch::zeros({B, H, Lq}, torch::kInt32);
  auto biasC = biasT.contiguous();
  std::mutex m;
  gemm::LogitBias bias = [&](int64_t b, int64_t h, int64_t row0, int64_t rows, float* l,
                             int64_t ld) {
    for (int64_t r = 0; r < rows; ++r) {
      const float* src = biasC[b][h][row0 + r].data_ptr<float>();
      for (int64_t j = 0; j < Lk; ++j) l[r * ld + j] += src[j];
    }
    std::lock_guard<std::mutex> lock(m);
    seen[b][h].slice(0, row0, row0 + rows).add_(1);
  };
  EXPECT_LT(relErr(gemm::attention(q, k, v, scale, bias), refBiased), 1e-6);
  EXPECT_TRUE(torch::equal(seen, torch::ones_like(seen)));

  // The non-local block's layout: q, k, v the transposes of [.., D, L] tensors.
  auto qT = q.transpose(2, 3).contiguous().transpose(2, 3);
  auto kT = k.transpose(2, 3).contiguous().transpose(2, 3);
  auto vT = v.transpose(2, 3).contiguous().transpose(2, 3);
  ASSERT_TRUE(gemm::fusedAttention(qT, kT, vT));
  EXPECT_LT(relErr(gemm::attention(qT, kT, vT, scale), ref), 1e-6);

  // Rows further apart than a row (a slice) are read in place; operands with neither rows nor
  // columns contiguous are refused, not misread.
  auto qRows = randn({B, H, 2 * Lq, D}, 14).slice(2, 0, 2 * Lq, 2);
  ASSERT_TRUE(gemm::fusedAttention(qRows, k, v));
  EXPECT_LT(relErr(gemm::attention(qRows, k, v, scale),
                   torch::matmul(
                       torch::softmax(torch::matmul(d(qRows), d(k).transpose(-2, -1)) * scale, -1),
                       d(v))),
            1e-6);
  EXPECT_FALSE(gemm::fusedAttention(randn({B, H, Lq, 2 * D}, 14).slice(3, 0, 2 * D, 2), k, v));
  EXPECT_FALSE(gemm::fusedAttention(q.to(torch::kBFloat16), k, v));
  EXPECT_FALSE(gemm::fusedAttention(q, randn({B, H, Lk, D + 1}, 15), v));
}

TEST(Gemm, AttentionModelsMatchTheUnfusedForward) {
  // The MViTs (cls token, relative positions, residual pooling, reversible blocks, max pooling,
  // separate q/k/v) and the non-local block on the committed fixtures' configs and random
  // checkpoints (every parameter and BatchNorm statistic random): features with oneDNN's
  // products and the fused attention against LibTorch's unfused ops.
  if (!gemm::onednnGemmBuilt()) GTEST_SKIP() << "built without VIDFEAT_ONEDNN_GEMM";
  SwitchGuard guard;
  const std::vector<std::string> names = {"MVIT_B_32x3_CONV",
                                          "MVITv2_S_16x4",
                                          "REV_MVIT_B_16x4_CONV",
                                          "REV_MVIT_B_16x4_CONV_concat_linear",
                                          "MVIT_B_32x3_CONV_max_sepqkv_meanpool",
                                          "I3D_NLN_8x8_R50"};
  // Counts the fused attention's calls (it records itself for profilers).
  static std::atomic<int> fusedCalls{0};
  const auto handle = at::addThreadLocalCallback(at::RecordFunctionCallback(
      [](const at::RecordFunction& fn) -> std::unique_ptr<at::ObserverContext> {
        if (std::string(fn.name()) == "vidfeat::gemm::attention") ++fusedCalls;
        return nullptr;
      }));
  struct Remove {
    at::CallbackHandle h;
    ~Remove() { at::removeCallback(h); }
  } remove{handle};
  vidfeat::testing::forEachFixture(
      names, [&](const std::string& name, const YAML::Node& f, const Config& cfg) {
        auto net = model::buildVideoNet(cfg);
        net->eval();
        model::applyStateDict(
            *net,
            model::readStateDict(
                (vidfeat::testing::fixtureDir() / f["files"]["pyth"].as<std::string>()).string()));
        model::foldBatchNorms(*net);  // as FeatureModel runs it
        auto io = model::readIoFile(
            (vidfeat::testing::fixtureDir() / f["files"]["io"].as<std::string>()).string());
        std::vector<torch::Tensor> in;
        for (auto& t : io.inputs) in.push_back(t.to(torch::kFloat32));
        c10::InferenceMode inference;
        gemm::setOnednnGemm(false);
        const auto off = net->forwardFeatures(in, false).features;
        gemm::setOnednnGemm(true);
        fusedCalls = 0;
        const auto on = net->forwardFeatures(in, false).features;
        EXPECT_GT(fusedCalls.load(), 0);  // the fused kernel ran (small products can be bit-equal)
        const double rel = relErr(on, off), refRel = relErr(on, io.feature);
        std::printf("[gemm] %-38s on vs off rel.err %.3g, on vs PySlowFast %.3g\n", name.c_str(),
                    rel, refRel);
        EXPECT_LE(refRel, 1e-4);
        EXPECT_LE(rel, 1e-6);
      });
}
