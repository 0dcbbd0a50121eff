#pragma once
// Inference-time fusion of a convolution and the BatchNorm that follows it.
//
// At eval time BN(conv(x)) = conv'(x) with, per output channel o,
//   s = gamma[o] / sqrt(running_var[o] + eps),  w'[o] = s * w[o],
//   b'[o] = beta[o] + s * (bias[o] - running_mean[o])           (bias 0 when the conv has none).
// The modules stay registered under PySlowFast's names (the state dict, strict loading and
// stateShapes() do not change); a ConvBn only keeps the folded tensors next to them and runs them
// in place of the pair once foldBatchNorms() was called after the weights were set. In training
// mode, or before folding, it runs the two modules as they are.
//
// Blocked layout: with setBlockedLayout(true) the ResNet-family stems and stages (resnet_helper)
// convert their activations to MKL-DNN's blocked layout once and keep them there across convs
// (weights prepacked at fold time), instead of LibTorch reordering every conv's input, output and
// weight on every call. The numbers are those of the same MKL-DNN kernels (float rounding only).
#include <torch/torch.h>

#include <functional>
#include <vector>

namespace vidfeat::model {

class ConvBn {
 public:
  ConvBn() = default;
  ConvBn(torch::nn::Conv3d conv, torch::nn::BatchNorm3d bn);
  ConvBn(torch::nn::Conv2d conv, torch::nn::BatchNorm2d bn);

  // bn(conv(x)); x may be dense or (once folded) an MKL-DNN tensor, the result has x's layout.
  torch::Tensor operator()(const torch::Tensor& x) const;
  // bn(conv(cat(x, lateral) along channels)) without the concatenation: once folded, with both in
  // the blocked layout, conv(x, W[:, :split]) + conv(lateral, W[:, split:]) on weights prepacked
  // per part (SlowFast's lateral connections: the concatenation meant leaving the blocked layout
  // and re-entering it, ~10 % of SLOWFAST 16x8 R101's forward). Otherwise it concatenates.
  // The result is in the blocked layout when the switch is on.
  torch::Tensor operator()(const torch::Tensor& x, const torch::Tensor& lateral) const;
  // The first `channels` input channels come as x, the rest as `lateral` (0: not split). Call
  // before fold(); needs groups == 1.
  void setInputSplit(int64_t channels);
  // Recomputes the folded tensors from the modules' current values (on their device), or drops
  // them (on = false). Prepacks the weight for MKL-DNN when blockedLayout() is on and the
  // tensors are on the CPU.
  void fold(bool on);
  bool folded() const { return weight_.defined(); }
  // A depth-wise 3-D conv (one filter per channel): folded, it runs depthwise_conv.h's kernel on a
  // dense float CPU input (give it a dense x: on a blocked one it runs MKL-DNN's slow grouped
  // path).
  bool depthwise() const { return depthwise_; }
  explicit operator bool() const { return bool(unfolded_); }

 private:
  template <size_t D, typename Conv, typename Bn>
  void adopt(Conv conv, Bn bn);  // the two constructors, for D = 3 and 2 dimensions
  torch::Tensor runFolded(const torch::Tensor& x) const;

  std::function<torch::Tensor(const torch::Tensor&)> unfolded_;
  std::function<bool()> training_;
  torch::Tensor convWeight_, convBias_;      // the module's own tensors
  torch::Tensor gamma_, beta_, mean_, var_;  // the BN's own tensors
  double eps_ = 1e-5;
  std::vector<int64_t> stride_, padding_, dilation_;
  int64_t groups_ = 1;
  bool depthwise_ = false;
  torch::Tensor weight_, bias_;               // folded (dense); undefined when not folded
  torch::Tensor packed_;                      // folded weight in MKL-DNN's layout, when prepacked
  int64_t split_ = 0;                         // setInputSplit
  torch::Tensor packedMain_, packedLateral_;  // the two parts, prepacked, when split
};

// A module holding ConvBn pairs: foldBatchNorms() finds it among the network's modules.
class BnFoldable {
 public:
  virtual ~BnFoldable() = default;
  // Returns the number of pairs.
  size_t foldPairs(bool on) {
    for (ConvBn* p : pairs_) p->fold(on);
    return pairs_.size();
  }

 protected:
  // Registers a member pair; `pair` must live as long as the module (a data member).
  void addPair(ConvBn& pair) { pairs_.push_back(&pair); }

 private:
  std::vector<ConvBn*> pairs_;
};

// A Conv3d's padding as numbers (an error for "same" / "valid" padding, which vidfeat's nets do
// not use).
std::vector<int64_t> explicitPadding3d(const torch::nn::detail::ConvNdOptions<3>& o);

// Folds (on) or unfolds every ConvBn pair of `net` and its submodules from the current weights.
// Call after every change of the weights (loading, randomizing, moving to another device).
// Returns the number of pairs (every BatchNorm of the ResNet-family, X3D and TSM/TSN nets).
size_t foldBatchNorms(torch::nn::Module& net, bool on = true);

// The blocked-layout switch (process-wide; read by forward passes and by foldBatchNorms). On by
// default (measured faster, docs in conv_bn.h's header comment); VIDFEAT_BLOCKED_LAYOUT=0 in the
// environment starts the process with it off.
void setBlockedLayout(bool on);
bool blockedLayout();

// x in MKL-DNN's blocked layout when the switch is on and x is a dense CPU float tensor; else x.
torch::Tensor toBlocked(const torch::Tensor& x);
// x in the ordinary strided layout (a no-op for one already there).
torch::Tensor toDense(const torch::Tensor& x);

// pool(x), skipping a pool that is the identity (kernel and stride 1, no padding: PySlowFast's
// pathway pools between res2 and res3 of every arch but c2d / i3d). On dense and blocked tensors
// (MKL-DNN's pooling for a blocked one; a max is exact in any order).
torch::Tensor maxPool3d(const torch::nn::MaxPool3d& pool, const torch::Tensor& x);

// pool(x) for a 3-D pool. With --precision bf16 on the CPU (LibTorch 1.13 has no bf16
// max_pool3d / avg_pool3d kernels there) the pool runs in float on the bf16 values and its result
// is rounded back to bf16: exact for a max, one rounding for a mean (as a GPU's bf16 kernel).
template <typename Pool>
torch::Tensor pool3d(Pool&& pool, const torch::Tensor& x) {
  if (x.scalar_type() == torch::kBFloat16 && x.device().is_cpu() && !x.is_mkldnn()) {
    return pool(x.to(torch::kFloat32)).to(torch::kBFloat16);
  }
  return pool(x);
}

}  // namespace vidfeat::model
