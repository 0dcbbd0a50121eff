#include "networks/resnet_helper.h"

#include <algorithm>

#include "networks/x3d.h"
#include "vidfeat/common/error.h"

namespace vidfeat::model {

namespace nn = torch::nn;

nn::Conv3dOptions conv3dNoBias(int64_t in, int64_t out, std::vector<int64_t> k,
                               std::vector<int64_t> s, std::vector<int64_t> p) {
  return nn::Conv3dOptions(in, out, torch::IntArrayRef(k)).stride(s).padding(p).bias(false);
}
nn::BatchNorm3dOptions batchNorm3d(int64_t c, double eps) {
  return nn::BatchNorm3dOptions(c).eps(eps).momentum(0.1);
}

ResNetBasicStemImpl::ResNetBasicStemImpl(int64_t dimIn, int64_t dimOut, std::vector<int64_t> kernel,
                                         std::vector<int64_t> stride, std::vector<int64_t> padding,
                                         double eps) {
  conv = register_module("conv", nn::Conv3d(conv3dNoBias(dimIn, dimOut, kernel, stride, padding)));
  this->bn = register_module("bn", nn::BatchNorm3d(batchNorm3d(dimOut, eps)));
  pool_layer = register_module(
      "pool_layer",
      nn::MaxPool3d(nn::MaxPool3dOptions({1, 3, 3}).stride({1, 2, 2}).padding({0, 1, 1})));
  convBn = ConvBn(conv, this->bn);
  addPair(convBn);
}

torch::Tensor ResNetBasicStemImpl::forward(torch::Tensor x) {
  return maxPool3d(pool_layer, convBn(toBlocked(x)).relu_());
}

VideoModelStemImpl::VideoModelStemImpl(const std::vector<int64_t>& dimIn,
                                       const std::vector<int64_t>& dimOut,
                                       const std::vector<std::vector<int64_t>>& kernel,
                                       const std::vector<std::vector<int64_t>>& stride,
                                       const std::vector<std::vector<int64_t>>& padding,
                                       double eps) {
  for (size_t p = 0; p < dimIn.size(); ++p) {
    stems.push_back(register_module(
        "pathway" + std::to_string(p) + "_stem",
        ResNetBasicStem(dimIn[p], dimOut[p], kernel[p], stride[p], padding[p], eps)));
  }
}

std::vector<torch::Tensor> VideoModelStemImpl::forward(std::vector<torch::Tensor> x) {
  if (x.size() != stems.size())
    throw Error("stem: expected " + std::to_string(stems.size()) + " pathways");
  for (size_t p = 0; p < x.size(); ++p) x[p] = stems[p]->forward(x[p]);
  return x;
}

BottleneckTransformImpl::BottleneckTransformImpl(int64_t dimIn, int64_t dimOut, int64_t tempKernel,
                                                 int64_t stride, int64_t dimInner,
                                                 int64_t numGroups, int64_t dilation,
                                                 const BlockOptions& opt) {
  const int64_t s1 = opt.stride1x1 ? stride : 1, s3 = opt.stride1x1 ? 1 : stride;
  a = register_module("a", nn::Conv3d(conv3dNoBias(dimIn, dimInner, {tempKernel, 1, 1}, {1, s1, s1},
                                                   {tempKernel / 2, 0, 0})));
  a_bn = register_module("a_bn", nn::BatchNorm3d(batchNorm3d(dimInner, opt.eps)));
  b = register_module("b", nn::Conv3d(conv3dNoBias(dimInner, dimInner, {1, 3, 3}, {1, s3, s3},
                                                   {0, dilation, dilation})
                                          .groups(numGroups)
                                          .dilation({1, dilation, dilation})));
  b_bn = register_module("b_bn", nn::BatchNorm3d(batchNorm3d(dimInner, opt.eps)));
  c = register_module("c",
                      nn::Conv3d(conv3dNoBias(dimInner, dimOut, {1, 1, 1}, {1, 1, 1}, {0, 0, 0})));
  c_bn = register_module("c_bn", nn::BatchNorm3d(batchNorm3d(dimOut, opt.eps)));
  aBn = ConvBn(a, a_bn);
  bBn = ConvBn(b, b_bn);
  cBn = ConvBn(c, c_bn);
  for (ConvBn* p : {&aBn, &bBn, &cBn}) addPair(*p);
}

torch::Tensor BottleneckTransformImpl::forward(torch::Tensor x) {
  return forwardWithLateral(std::move(x), {});
}

torch::Tensor BottleneckTransformImpl::forwardWithLateral(torch::Tensor x,
                                                          const torch::Tensor& lateral) {
  x = aBn(x, lateral).relu_();
  x = bBn(x).relu_();
  return cBn(x);
}

BasicTransformImpl::BasicTransformImpl(int64_t dimIn, int64_t dimOut, int64_t tempKernel,
                                       int64_t stride, int64_t dilation, const BlockOptions& opt) {
  a = register_module("a", nn::Conv3d(conv3dNoBias(dimIn, dimOut, {tempKernel, 3, 3},
                                                   {1, stride, stride}, {tempKernel / 2, 1, 1})));
  a_bn = register_module("a_bn", nn::BatchNorm3d(batchNorm3d(dimOut, opt.eps)));
  b = register_module(
      "b", nn::Conv3d(conv3dNoBias(dimOut, dimOut, {1, 3, 3}, {1, 1, 1}, {0, dilation, dilation})
                          .dilation({1, dilation, dilation})));
  b_bn = register_module("b_bn", nn::BatchNorm3d(batchNorm3d(dimOut, opt.eps)));
  aBn = ConvBn(a, a_bn);
  bBn = ConvBn(b, b_bn);
  for (ConvBn* p : {&aBn, &bBn}) addPair(*p);
}

torch::Tensor BasicTransformImpl::forward(torch::Tensor x) {
  x = aBn(x).relu_();
  return bBn(x);
}

ResBlockImpl::ResBlockImpl(int64_t dimIn, int64_t dimOut, int64_t tempKernel, int64_t stride,
                           int64_t dimInner, int64_t numGroups, int64_t dilation,
                           const BlockOptions& opt, int64_t blockIdx) {
  if (dimIn != dimOut || stride != 1) {
    branch1 = register_module("branch1", nn::Conv3d(conv3dNoBias(dimIn, dimOut, {1, 1, 1},
                                                                 {1, stride, stride}, {0, 0, 0})));
    branch1_bn = register_module("branch1_bn", nn::BatchNorm3d(batchNorm3d(dimOut, opt.eps)));
    branch1Bn = ConvBn(branch1, branch1_bn);
    addPair(branch1Bn);
  }
  if (opt.transFunc == "bottleneck_transform") {
    branch2 = nn::AnyModule(
        BottleneckTransform(dimIn, dimOut, tempKernel, stride, dimInner, numGroups, dilation, opt));
  } else if (opt.transFunc == "basic_transform") {
    branch2 = nn::AnyModule(BasicTransform(dimIn, dimOut, tempKernel, stride, dilation, opt));
  } else if (opt.transFunc == "x3d_transform") {
    branch2 = nn::AnyModule(X3DTransform(dimIn, dimOut, tempKernel, stride, dimInner, numGroups,
                                         dilation, opt, blockIdx));
  } else {
    throw Error("RESNET.TRANS_FUNC '" + opt.transFunc +
                "' is not supported here (bottleneck_transform, basic_transform, x3d_transform)");
  }
  register_module("branch2", branch2.ptr());
}

torch::Tensor ResBlockImpl::forward(torch::Tensor x) {
  x = toBlocked(x);  // a no-op when the blocked layout is off or x is already blocked
  torch::Tensor f = branch2.forward<torch::Tensor>(x);
  torch::Tensor out = branch1 ? branch1Bn(x).add_(f) : f.add_(x);
  return out.relu_();
}

void ResBlockImpl::setInputSplit(int64_t channels) {
  auto* bottleneck = branch2.ptr()->as<BottleneckTransformImpl>();
  if (!branch1 || !bottleneck) return;  // forwardWithLateral concatenates
  branch1Bn.setInputSplit(channels);
  bottleneck->aBn.setInputSplit(channels);
}

torch::Tensor ResBlockImpl::forwardWithLateral(torch::Tensor x, torch::Tensor lateral) {
  auto* bottleneck = branch2.ptr()->as<BottleneckTransformImpl>();
  if (!lateral.defined()) return forward(std::move(x));
  if (!branch1 || !bottleneck) return forward(torch::cat({toDense(x), toDense(lateral)}, 1));
  x = toBlocked(x);
  lateral = toBlocked(lateral);
  torch::Tensor f = bottleneck->forwardWithLateral(x, lateral);
  return branch1Bn(x, lateral).add_(f).relu_();
}

std::vector<int64_t> blockTemporalKernels(const std::vector<int64_t>& basis, int64_t numBlocks,
                                          int64_t numBlockTempKernel) {
  if (numBlockTempKernel > numBlocks) {
    throw Error("RESNET.NUM_BLOCK_TEMP_KERNEL (" + std::to_string(numBlockTempKernel) +
                ") exceeds the stage's block count (" + std::to_string(numBlocks) + ")");
  }
  std::vector<int64_t> k;
  for (int64_t i = 0; i < numBlocks; ++i) {
    k.push_back(i < numBlockTempKernel ? basis[size_t(i) % basis.size()] : 1);
  }
  return k;
}

ResStageImpl::ResStageImpl(const std::vector<PathwaySpec>& pathways, const BlockOptions& opt) {
  for (size_t p = 0; p < pathways.size(); ++p) {
    const auto& s = pathways[p];
    auto kernels = blockTemporalKernels(s.tempKernelBasis, s.numBlocks, s.numBlockTempKernel);
    for (int64_t i : s.nonlocalInds) {
      // PySlowFast silently skips an index past the last block; a typo there would go unnoticed.
      if (i < 0 || i >= s.numBlocks) {
        throw Error("NONLOCAL.LOCATION: block " + std::to_string(i) +
                    " does not exist in a stage of " + std::to_string(s.numBlocks) + " blocks");
      }
    }
    if (!s.nonlocalInds.empty() && s.nonlocalGroup < 1) {
      throw Error("NONLOCAL.GROUP must be >= 1 (got " + std::to_string(s.nonlocalGroup) + ")");
    }
    blocks.emplace_back();
    nonlocals.emplace_back(size_t(s.numBlocks), Nonlocal{nullptr});
    nonlocalGroups.push_back(s.nonlocalGroup);
    const std::string prefix = "pathway" + std::to_string(p);
    for (int64_t i = 0; i < s.numBlocks; ++i) {
      blocks[p].push_back(register_module(
          prefix + "_res" + std::to_string(i),
          ResBlock(i == 0 ? s.dimIn : s.dimOut, s.dimOut, kernels[size_t(i)], i == 0 ? s.stride : 1,
                   s.dimInner, s.numGroups, s.dilation, opt, i)));
      if (i == 0 && s.lateralChannels > 0) blocks[p][0]->setInputSplit(s.dimIn - s.lateralChannels);
      if (std::find(s.nonlocalInds.begin(), s.nonlocalInds.end(), i) != s.nonlocalInds.end()) {
        nonlocals[p][size_t(i)] = register_module(
            prefix + "_nonlocal" + std::to_string(i),
            Nonlocal(s.dimOut, s.dimOut / 2, s.nonlocalPool, opt.nonlocalInstantiation, opt.eps));
      }
    }
  }
}

std::vector<torch::Tensor> ResStageImpl::forward(std::vector<torch::Tensor> x) {
  torch::Tensor lateral;
  if (x.size() == blocks.size() + 1) {
    lateral = std::move(x.back());
    x.pop_back();
  }
  if (x.size() != blocks.size())
    throw Error("stage: expected " + std::to_string(blocks.size()) + " pathways");
  for (size_t p = 0; p < blocks.size(); ++p) {
    const int64_t groups = nonlocalGroups[p];
    for (size_t i = 0; i < blocks[p].size(); ++i) {
      x[p] = p == 0 && i == 0 && lateral.defined() ? blocks[p][i]->forwardWithLateral(x[p], lateral)
                                                   : blocks[p][i]->forward(x[p]);
      if (!nonlocals[p][i]) continue;
      x[p] = toDense(x[p]);
      const int64_t b = x[p].size(0), c = x[p].size(1), t = x[p].size(2), h = x[p].size(3),
                    w = x[p].size(4);
      if (groups > 1) {
        // Attend within each of `groups` temporal chunks: fold them into the batch.
        if (t % groups != 0) {
          throw Error("NONLOCAL.GROUP " + std::to_string(groups) + " does not divide the " +
                      std::to_string(t) + " frames reaching the non-local block");
        }
        x[p] = x[p].permute({0, 2, 1, 3, 4})
                   .reshape({b * groups, t / groups, c, h, w})
                   .permute({0, 2, 1, 3, 4});
      }
      x[p] = nonlocals[p][i]->forward(x[p]);
      if (groups > 1)
        x[p] = x[p].permute({0, 2, 1, 3, 4}).reshape({b, t, c, h, w}).permute({0, 2, 1, 3, 4});
    }
  }
  return x;
}

}  // namespace vidfeat::model
