#pragma once
// Depth-wise 3-D convolution on the CPU: one filter per channel (groups == in == out channels),
// as X3D's 3x3x3 "b" convs and its stem's temporal kx1x1 conv.
//
// LibTorch 1.13 runs these through MKL-DNN's generic grouped path at ~3 % of the machine's conv
// throughput (measured: ~8.8 ms per X3D-S res2 conv, 55 % of the whole forward, in PySlowFast as in
// vidfeat). This kernel computes each output row as a sum of shifted input rows (vectorised,
// AVX-512 / AVX2 chosen at run time), one channel plane per task of LibTorch's intra-op pool. The
// sums are the same products in another order: float rounding only
// (tests/model/test_depthwise.cpp).
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

namespace vidfeat::model {

// True when depthwiseConv3d computes conv3d(x, weight, bias, stride, padding, dilation, groups):
// x a dense 5-D float CPU tensor, weight [C, 1, kt, kh, kw] with groups == C == x.size(1), no
// dilation.
bool depthwiseConv3dApplies(const at::Tensor& x, const at::Tensor& weight,
                            const std::vector<int64_t>& dilation, int64_t groups);

// The convolution (bias may be undefined); the result is a new contiguous [N, C, T', H', W']
// tensor.
at::Tensor depthwiseConv3d(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                           const std::vector<int64_t>& stride, const std::vector<int64_t>& padding);

}  // namespace vidfeat::model
