#include "networks/nonlocal.h"

#include <algorithm>
#include <cmath>

#include "kernels/gemm.h"
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
  // PySlowFast's einsums "nct,ncp->ntp" and "ntg,ncg->nct" as the matrix products they are
  // (kernels/gemm.h: oneDNN's sgemm, the transposes read in place); with the softmax, fused into
  // one pass over blocks of rows as attention with q = theta^T, k = phi^T, v = g^T.
  torch::Tensor y;
  const double scale = std::pow(double(dimInner_), -0.5);
  auto q = theta.transpose(1, 2).unsqueeze(1), k = phi.transpose(1, 2).unsqueeze(1),
       v = g.transpose(1, 2).unsqueeze(1);
  if (softmax_ && gemm::fusedAttention(q, k, v)) {
    y = gemm::attention(q, k, v, scale).squeeze(1).transpose(1, 2).reshape({n, dimInner_, t, h, w});
  } else {
    torch::Tensor thetaPhi = gemm::matmul(theta.transpose(1, 2), phi);
    if (softmax_) {
      thetaPhi = torch::softmax(thetaPhi * scale, 2);
    } else {
      thetaPhi = thetaPhi / double(thetaPhi.size(2));
    }
    y = gemm::matmul(g, thetaPhi.transpose(1, 2)).view({n, dimInner_, t, h, w});
  }
  return outBn(y).add_(x);
}

}  // namespace vidfeat::model
