// The depth-wise conv3d kernel (model/depthwise_conv.h) against LibTorch's conv3d in double: every
// stride / padding / kernel shape X3D uses and the edge cases around them.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <vector>

#include "kernels/conv_bn.h"
#include "kernels/depthwise_conv.h"

using namespace vidfeat;

namespace {

struct Case {
  std::vector<int64_t> input;  // N, C, T, H, W
  std::vector<int64_t> kernel, stride, padding;
  bool bias;
};

double relErr(const torch::Tensor& a, const torch::Tensor& ref) {
  return (a.to(torch::kFloat64) - ref).norm().item<double>() / ref.norm().item<double>();
}

torch::Tensor reference(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b,
                        const std::vector<int64_t>& stride, const std::vector<int64_t>& padding) {
  return torch::conv3d(x.to(torch::kFloat64), w.to(torch::kFloat64),
                       b.defined() ? b.to(torch::kFloat64) : torch::Tensor(), stride, padding,
                       {1, 1, 1}, x.size(1));
}

}  // namespace

TEST(DepthwiseConv3d, MatchesConv3dOnEveryShape) {
  torch::manual_seed(7);
  torch::set_num_threads(2);
  const std::vector<Case> cases = {
      {{2, 5, 4, 9, 11}, {3, 3, 3}, {1, 1, 1}, {1, 1, 1}, true},  // X3D's b conv, stride 1
      {{1, 6, 5, 9, 11},
       {3, 3, 3},
       {1, 2, 2},
       {1, 1, 1},
       true},  // ... the first block of a stage, odd size
      {{1, 6, 5, 8, 10}, {3, 3, 3}, {1, 2, 2}, {1, 1, 1}, true},  // ... even size
      {{2, 4, 7, 6, 5},
       {5, 1, 1},
       {1, 1, 1},
       {2, 0, 0},
       true},  // X3D's stem: temporal, frames as rows
      {{1, 3, 7, 6, 5}, {3, 1, 1}, {2, 1, 1}, {1, 0, 0}, false},   // temporal stride, no bias
      {{1, 3, 4, 7, 9}, {1, 3, 3}, {1, 1, 1}, {0, 1, 1}, false},   // spatial only
      {{1, 3, 3, 6, 7}, {3, 3, 3}, {1, 1, 1}, {0, 0, 0}, true},    // no padding
      {{1, 3, 3, 10, 11}, {3, 3, 3}, {1, 3, 3}, {1, 1, 1}, true},  // stride 3
      {{1, 3, 3, 5, 7},
       {3, 5, 5},
       {1, 1, 2},
       {1, 2, 2},
       true},  // a 5-wide kernel: the generic row path
      {{1, 2, 1, 1, 1}, {3, 3, 3}, {1, 1, 1}, {1, 1, 1}, true},  // one pixel: only the centre tap
      {{1, 2, 3, 4, 1}, {3, 3, 3}, {1, 2, 2}, {1, 1, 1}, true},  // one column
      {{1, 2, 2, 1, 6}, {3, 3, 3}, {1, 1, 1}, {1, 1, 1}, true},  // one row
      {{1, 2, 3, 3, 2}, {3, 3, 3}, {1, 1, 1}, {1, 1, 1}, true},  // a row narrower than the kernel
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(::testing::Message() << "input " << c.input << " kernel " << c.kernel << " stride "
                                      << c.stride << " padding " << c.padding);
    const int64_t channels = c.input[1];
    auto x = torch::randn(c.input);
    auto w = torch::randn({channels, 1, c.kernel[0], c.kernel[1], c.kernel[2]});
    auto b = c.bias ? torch::randn({channels}) : torch::Tensor();
    ASSERT_TRUE(model::depthwiseConv3dApplies(x, w, {1, 1, 1}, channels));
    auto y = model::depthwiseConv3d(x, w, b, c.stride, c.padding);
    auto ref = reference(x, w, b, c.stride, c.padding);
    ASSERT_EQ(y.sizes(), ref.sizes());
    EXPECT_TRUE(y.is_contiguous());
    EXPECT_LT(relErr(y, ref), 1e-6);
    EXPECT_LT((y.to(torch::kFloat64) - ref).abs().max().item<double>(),
              1e-5 * (1.0 + ref.abs().max().item<double>()));
  }
}

TEST(DepthwiseConv3d, NonContiguousInputAndOneThread) {
  torch::manual_seed(8);
  auto base = torch::randn({2, 4, 3, 10, 9});
  auto x = base.transpose(3, 4);  // [2, 4, 3, 9, 10], strided
  ASSERT_FALSE(x.is_contiguous());
  auto w = torch::randn({4, 1, 3, 3, 3});
  auto b = torch::randn({4});
  const int threads = torch::get_num_threads();
  torch::set_num_threads(1);
  auto y1 = model::depthwiseConv3d(x, w, b, {1, 2, 2}, {1, 1, 1});
  torch::set_num_threads(2);
  auto y2 = model::depthwiseConv3d(x, w, b, {1, 2, 2}, {1, 1, 1});
  torch::set_num_threads(threads);
  EXPECT_LT(relErr(y1, reference(x, w, b, {1, 2, 2}, {1, 1, 1})), 1e-6);
  EXPECT_TRUE(torch::equal(y1, y2));  // each plane is one task: threads do not change the sums
}

TEST(DepthwiseConv3d, AppliesOnlyToWhatItComputes) {
  auto x = torch::randn({1, 4, 3, 5, 5});
  auto w = torch::randn({4, 1, 3, 3, 3});
  EXPECT_TRUE(model::depthwiseConv3dApplies(x, w, {1, 1, 1}, 4));
  EXPECT_FALSE(model::depthwiseConv3dApplies(x, w, {1, 2, 2}, 4));  // dilation
  EXPECT_FALSE(model::depthwiseConv3dApplies(x, torch::randn({4, 2, 3, 3, 3}), {1, 1, 1},
                                             2));  // grouped, not depth-wise
  EXPECT_FALSE(model::depthwiseConv3dApplies(x.to(torch::kFloat64), w, {1, 1, 1}, 4));  // not float
  EXPECT_FALSE(model::depthwiseConv3dApplies(x.to(torch::kBFloat16), w, {1, 1, 1},
                                             4));  // bf16 takes LibTorch's
  EXPECT_FALSE(model::depthwiseConv3dApplies(x.to_mkldnn(), w, {1, 1, 1}, 4));  // blocked layout
  EXPECT_FALSE(model::depthwiseConv3dApplies(torch::randn({4, 3, 5, 5}), w, {1, 1, 1}, 4));  // 4-D
  EXPECT_FALSE(model::depthwiseConv3dApplies(torch::randn({1, 8, 3, 5, 5}), w, {1, 1, 1},
                                             4));  // channels != groups
}

// A folded depth-wise ConvBn runs the kernel and equals conv + BatchNorm with random statistics.
TEST(DepthwiseConv3d, FoldedConvBnEqualsTheModules) {
  torch::manual_seed(9);
  namespace nn = torch::nn;
  nn::Conv3d conv(nn::Conv3dOptions(6, 6, {3, 3, 3})
                      .stride({1, 2, 2})
                      .padding({1, 1, 1})
                      .groups(6)
                      .bias(false));
  nn::BatchNorm3d bn(nn::BatchNorm3dOptions(6).eps(1e-5));
  torch::NoGradGuard noGrad;
  conv->weight.normal_();
  bn->weight.uniform_(0.5, 1.5);
  bn->bias.normal_();
  bn->running_mean.normal_();
  bn->running_var.uniform_(0.5, 2.0);
  conv->eval();
  bn->eval();
  model::ConvBn pair(conv, bn);
  EXPECT_TRUE(pair.depthwise());
  auto x = torch::randn({1, 6, 4, 13, 13});
  auto plain = bn->forward(conv->forward(x));
  pair.fold(true);
  auto folded = pair(x);
  EXPECT_FALSE(folded.is_mkldnn());
  EXPECT_LT(relErr(folded, plain.to(torch::kFloat64)), 1e-5);
  // A regular conv is not depth-wise.
  nn::Conv3d full(nn::Conv3dOptions(6, 6, {3, 3, 3}).padding({1, 1, 1}).bias(false));
  EXPECT_FALSE(model::ConvBn(full, bn).depthwise());
}
