#include "kernels/conv_bn.h"

#include <ATen/ops/mkldnn_convolution.h>
#include <ATen/ops/mkldnn_reorder_conv2d_weight.h>
#include <ATen/ops/mkldnn_reorder_conv3d_weight.h>
#include <torch/version.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <string>

#include "kernels/depthwise_conv.h"
#include "vidfeat/common/error.h"

namespace vidfeat::model {

namespace {

// VIDFEAT_BLOCKED_LAYOUT=0 in the environment turns the blocked layout off (for measuring).
bool blockedFromEnvironment() {
  const char* v = std::getenv("VIDFEAT_BLOCKED_LAYOUT");
  return !(v && std::string(v) == "0");
}
std::atomic<bool> gBlocked{blockedFromEnvironment()};

template <size_t D, typename Opts>
std::vector<int64_t> explicitPadding(const Opts& o) {
  // The padding option is a c10::variant in LibTorch 1.x and a std::variant from 2.1 on.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 1)
  const auto* p = std::get_if<torch::ExpandingArray<D>>(&o.padding());
#else
  const auto* p = c10::get_if<torch::ExpandingArray<D>>(&o.padding());
#endif
  if (!p) throw Error("internal: BatchNorm folding needs a conv with explicit padding");
  return at::IntArrayRef(*p).vec();
}

}  // namespace

std::vector<int64_t> explicitPadding3d(const torch::nn::detail::ConvNdOptions<3>& o) {
  return explicitPadding<3>(o);
}

template <size_t D, typename Conv, typename Bn>
void ConvBn::adopt(Conv conv, Bn bn) {
  const auto& o = conv->options;
  convWeight_ = conv->weight;
  convBias_ = conv->bias;  // undefined when the conv has none
  gamma_ = bn->weight;
  beta_ = bn->bias;
  mean_ = bn->running_mean;
  var_ = bn->running_var;
  eps_ = bn->options.eps();
  stride_ = at::IntArrayRef(o.stride()).vec();
  padding_ = explicitPadding<D>(o);
  dilation_ = at::IntArrayRef(o.dilation()).vec();
  groups_ = o.groups();
  depthwise_ = D == 3 && groups_ > 1 && convWeight_.size(0) == groups_ && convWeight_.size(1) == 1;
  unfolded_ = [conv, bn](const torch::Tensor& x) mutable { return bn->forward(conv->forward(x)); };
  training_ = [bn] { return bn->is_training(); };
}

ConvBn::ConvBn(torch::nn::Conv3d conv, torch::nn::BatchNorm3d bn) {
  adopt<3>(std::move(conv), std::move(bn));
}
ConvBn::ConvBn(torch::nn::Conv2d conv, torch::nn::BatchNorm2d bn) {
  adopt<2>(std::move(conv), std::move(bn));
}

void ConvBn::setInputSplit(int64_t channels) {
  if (channels < 0 || channels >= convWeight_.size(1) || (channels > 0 && groups_ != 1)) {
    throw Error("internal: ConvBn input split " + std::to_string(channels) + " of " +
                std::to_string(convWeight_.size(1)) + " channels (groups " +
                std::to_string(groups_) + ")");
  }
  split_ = channels;
}

void ConvBn::fold(bool on) {
  weight_ = bias_ = packed_ = packedMain_ = packedLateral_ = torch::Tensor();
  if (!on) return;
  if (!gamma_.defined() || !beta_.defined() || !mean_.defined() || !var_.defined()) {
    throw Error("internal: BatchNorm folding needs an affine BatchNorm with running statistics");
  }
  torch::NoGradGuard noGrad;
  // In double, rounded once to float: the folded tensors are as close to the exact product as
  // float allows.
  auto scale = gamma_.to(torch::kFloat64) / (var_.to(torch::kFloat64) + eps_).sqrt();
  std::vector<int64_t> shape(size_t(convWeight_.dim()), 1);
  shape[0] = -1;
  weight_ = (convWeight_.to(torch::kFloat64) * scale.view(shape))
                .to(convWeight_.scalar_type())
                .contiguous();
  auto shift = convBias_.defined() ? convBias_.to(torch::kFloat64) - mean_.to(torch::kFloat64)
                                   : -mean_.to(torch::kFloat64);
  bias_ = (beta_.to(torch::kFloat64) + scale * shift).to(convWeight_.scalar_type()).contiguous();
  if (blockedLayout() && weight_.device().is_cpu() && weight_.scalar_type() == torch::kFloat32 &&
      split_ > 0 && weight_.dim() == 5) {
    auto pack = [&](const torch::Tensor& w) {
      return at::mkldnn_reorder_conv3d_weight(w.contiguous().to_mkldnn(), padding_, stride_,
                                              dilation_, groups_);
    };
    packedMain_ = pack(weight_.narrow(1, 0, split_));
    packedLateral_ = pack(weight_.narrow(1, split_, weight_.size(1) - split_));
  }
  if (blockedLayout() && weight_.device().is_cpu() && weight_.scalar_type() == torch::kFloat32) {
    packed_ = weight_.dim() == 5 ? at::mkldnn_reorder_conv3d_weight(weight_.to_mkldnn(), padding_,
                                                                    stride_, dilation_, groups_)
                                 : at::mkldnn_reorder_conv2d_weight(weight_.to_mkldnn(), padding_,
                                                                    stride_, dilation_, groups_);
  }
}

torch::Tensor ConvBn::runFolded(const torch::Tensor& x) const {
  if (depthwise_ && depthwiseConv3dApplies(x, weight_, dilation_, groups_)) {
    return depthwiseConv3d(x, weight_, bias_, stride_, padding_);
  }
  if (x.is_mkldnn()) {
    return at::mkldnn_convolution(x, packed_.defined() ? packed_ : weight_, bias_, padding_,
                                  stride_, dilation_, groups_);
  }
  return at::convolution(x, weight_, bias_, stride_, padding_, dilation_, /*transposed=*/false,
                         std::vector<int64_t>(padding_.size(), 0), groups_);
}

torch::Tensor ConvBn::operator()(const torch::Tensor& x) const {
  if (folded() && !training_()) return runFolded(x);
  // Unfolded (or training): the two modules as they are, in x's layout.
  auto y = unfolded_(toDense(x));
  return x.is_mkldnn() ? y.to_mkldnn() : y;
}

torch::Tensor ConvBn::operator()(const torch::Tensor& x, const torch::Tensor& lateral) const {
  if (!lateral.defined()) return (*this)(x);
  if (folded() && !training_() && packedMain_.defined() && x.is_mkldnn() && lateral.is_mkldnn()) {
    auto y = at::mkldnn_convolution(x, packedMain_, bias_, padding_, stride_, dilation_, groups_);
    return y.add_(at::mkldnn_convolution(lateral, packedLateral_, c10::nullopt, padding_, stride_,
                                         dilation_, groups_));
  }
  return (*this)(toBlocked(torch::cat({toDense(x), toDense(lateral)}, 1)));
}

size_t foldBatchNorms(torch::nn::Module& net, bool on) {
  size_t pairs = 0;
  for (const auto& m : net.modules(/*include_self=*/true)) {
    if (auto* f = dynamic_cast<BnFoldable*>(m.get())) pairs += f->foldPairs(on);
  }
  return pairs;
}

void setBlockedLayout(bool on) { gBlocked = on; }
bool blockedLayout() { return gBlocked; }

torch::Tensor toBlocked(const torch::Tensor& x) {
  if (!blockedLayout() || x.is_mkldnn() || !x.device().is_cpu() ||
      x.scalar_type() != torch::kFloat32)
    return x;
  return x.to_mkldnn();
}

torch::Tensor toDense(const torch::Tensor& x) { return x.is_mkldnn() ? x.to_dense() : x; }

torch::Tensor maxPool3d(const torch::nn::MaxPool3d& pool, const torch::Tensor& x) {
  const auto& o = pool->options;
  const auto kernel = at::IntArrayRef(o.kernel_size()).vec(),
             stride = at::IntArrayRef(o.stride()).vec(),
             padding = at::IntArrayRef(o.padding()).vec();
  const bool identity =
      std::all_of(kernel.begin(), kernel.end(), [](int64_t k) { return k == 1; }) &&
      std::all_of(stride.begin(), stride.end(), [](int64_t s) { return s == 1; }) &&
      std::all_of(padding.begin(), padding.end(), [](int64_t p) { return p == 0; });
  if (identity) return x;
  return pool3d(
      [&](const torch::Tensor& t) {
        return at::max_pool3d(t, kernel, stride, padding, at::IntArrayRef(o.dilation()).vec(),
                              o.ceil_mode());
      },
      x);
}

}  // namespace vidfeat::model
