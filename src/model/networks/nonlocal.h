#pragma once
// PySlowFast's non-local block (slowfast/models/nonlocal_helper.Nonlocal, after Wang et al.,
// "Non-local neural networks"): x + bn(conv_out(attention(theta(x), phi(x'), g(x')))), where x' is
// x max-pooled by NONLOCAL.POOL. Submodule names equal PySlowFast's state-dict keys
// ("s3.pathway0_nonlocal1.conv_theta.weight", ...).
#include <torch/torch.h>

#include <string>
#include <vector>

#include "kernels/conv_bn.h"

namespace vidfeat::model {

struct NonlocalImpl : torch::nn::Module, BnFoldable {
  // dimInner: channels inside the block (PySlowFast uses dim / 2). poolSize: {T, H, W} kernel and
  // stride of the max pool in front of phi and g; all ones (or empty) means no pool.
  // instantiation: "softmax" (scaled by dimInner^-0.5) or "dot_product" (divided by the number of
  // pooled positions), as NONLOCAL.INSTANTIATION.
  NonlocalImpl(int64_t dim, int64_t dimInner, const std::vector<int64_t>& poolSize,
               const std::string& instantiation, double eps = 1e-5);
  torch::Tensor forward(torch::Tensor x);

  torch::nn::Conv3d conv_theta{nullptr}, conv_phi{nullptr}, conv_g{nullptr}, conv_out{nullptr};
  torch::nn::BatchNorm3d bn{nullptr};
  torch::nn::MaxPool3d pool{nullptr};  // only when some pool size is > 1
  ConvBn outBn;                        // conv_out -> bn

 private:
  int64_t dimInner_;
  bool softmax_;
};
TORCH_MODULE(Nonlocal);

}  // namespace vidfeat::model
