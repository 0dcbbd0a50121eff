#include "networks/nonlocal.h"

#include <algorithm>
#include <cmath>

#include "vidfeat/common/error.h"

namespace vidfeat::model {

namespace nn = torch::nn;

NonlocalImpl::NonlocalImpl(int64_t dim, int64_t dimInner, const std::vector<int64_t>& poolSize,
                           const std::string& instantiation, double eps)
    : dimInner_(dimInner), softmax_(instantiation == "softmax") {
  if (instantiation != "softmax" && instantiation != "dot_product") {
    throw Error("NONLOCAL.INSTANTIATION '" + instantiation +
                "' is not supported (softmax, dot_product)");
  }
  if (!poolSize.empty() && poolSize.size() != 3) {
    throw Error("NONLOCAL.POOL: each pool size must be [T, H, W]");
  }
  // 1x1x1 convolutions with bias, as nn.Conv3d's default in PySlowFast.
  auto conv1 = [](int64_t in, int64_t out) { return nn::Conv3dOptions(in, out, 1).bias(true); };
  conv_theta = register_module("conv_theta", nn::Conv3d(conv1(dim, dimInner)));
  conv_phi = register_module("conv_phi", nn::Conv3d(conv1(dim, dimInner)));
  conv_g = register_module("conv_g", nn::Conv3d(conv1(dim, dimInner)));
  conv_out = register_module("conv_out", nn::Conv3d(conv1(dimInner, dim)));
  bn = register_module("bn", nn::BatchNorm3d(nn::BatchNorm3dOptions(dim).eps(eps).momentum(0.1)));
  outBn = ConvBn(conv_out, bn);
  addPair(outBn);
  if (std::any_of(poolSize.begin(), poolSize.end(), [](int64_t s) { return s > 1; })) {
    pool = register_module("pool", nn::MaxPool3d(nn::MaxPool3dOptions(torch::IntArrayRef(poolSize))
                                                     .stride(torch::IntArrayRef(poolSize))));
  }
}

torch::Tensor NonlocalImpl::forward(torch::Tensor x) {
  const int64_t n = x.size(0), t = x.size(2), h = x.size(3), w = x.size(4);
  torch::Tensor theta = conv_theta(x).view({n, dimInner_, -1});
  torch::Tensor pooled = pool ? pool3d([&](const torch::Tensor& in) { return pool(in); }, x) : x;
  torch::Tensor phi = conv_phi(pooled).view({n, dimInner_, -1});
  torch::Tensor g = conv_g(pooled).view({n, dimInner_, -1});
  // Same contractions (and so the same kernels and rounding) as PySlowFast's einsums.
  torch::Tensor thetaPhi = torch::einsum("nct,ncp->ntp", {theta, phi});
  if (softmax_) {
    thetaPhi = torch::softmax(thetaPhi * std::pow(double(dimInner_), -0.5), 2);
  } else {
    thetaPhi = thetaPhi / double(thetaPhi.size(2));
  }
  torch::Tensor y = torch::einsum("ntg,ncg->nct", {thetaPhi, g}).view({n, dimInner_, t, h, w});
  return outBn(y).add_(x);
}

}  // namespace vidfeat::model
