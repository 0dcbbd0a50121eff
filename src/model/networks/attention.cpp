#include "networks/attention.h"

#include <algorithm>
#include <cmath>
#include <tuple>
#include <typeinfo>

#include "kernels/conv_bn.h"  // pool3d
#include "kernels/depthwise_conv.h"
#include "kernels/gemm.h"
#include "vidfeat/common/error.h"

namespace vidfeat::model {

namespace nn = torch::nn;

int64_t roundWidthF32(int64_t width, float multiplier, int64_t minWidth, int64_t divisor) {
  if (multiplier == 0.0f) return width;
  const float w = float(width) * multiplier;
  // int(width + divisor / 2): the float32 tensor plus a Python float stays float32.
  int64_t out = std::max(minWidth, int64_t(w + float(double(divisor) / 2.0)) / divisor * divisor);
  if (float(out) < float(0.9) * w) out += divisor;
  return out;
}

nn::LayerNorm mvitLayerNorm(int64_t dim) {
  return nn::LayerNorm(nn::LayerNormOptions({dim}).eps(1e-6));
}

torch::Tensor attentionPool(torch::Tensor x, nn::AnyModule& pool, Thw& thw, bool hasCls,
                            nn::LayerNorm norm) {
  if (pool.is_empty()) return x;
  const bool threeD = x.dim() == 3;
  if (threeD) {
    x = x.unsqueeze(1);
  } else if (x.dim() != 4) {
    throw Error("MViT attention pooling: unsupported tensor rank " + std::to_string(x.dim()));
  }
  torch::Tensor cls;
  if (hasCls) {
    cls = x.slice(2, 0, 1);
    x = x.slice(2, 1);
  }
  const int64_t B = x.size(0), N = x.size(1), C = x.size(3);
  // [B, N, L, C] -> [B * N, C, T, H, W] in one copy (a reshape first would copy the strided
  // q / k / v views of the qkv output once more).
  x = x.transpose(2, 3).contiguous().view({B * N, C, thw[0], thw[1], thw[2]});
  // A conv pool (one filter per channel) runs depthwise_conv.h's kernel where it applies (dense
  // float CPU input; LibTorch's grouped conv path is a few % of the machine's conv rate), else
  // LibTorch's conv in the weights' type; a max/avg pool may need pool3d's bf16 fallback.
  if (pool.type_info() == typeid(nn::Conv3dImpl)) {
    auto* conv = pool.get<nn::Conv3d>().get();
    const auto& o = conv->options;
    if (depthwiseConv3dApplies(x, conv->weight, at::IntArrayRef(o.dilation()).vec(), o.groups())) {
      x = depthwiseConv3d(x, conv->weight, conv->bias, at::IntArrayRef(o.stride()).vec(),
                          explicitPadding3d(o));
    } else {
      x = pool.forward(x);
    }
  } else {
    x = pool3d([&](const torch::Tensor& t) { return pool.forward(t); }, x);
  }
  thw = {x.size(2), x.size(3), x.size(4)};
  x = x.reshape({B, N, C, thw[0] * thw[1] * thw[2]}).transpose(2, 3);
  if (hasCls) x = torch::cat({cls, x}, 2);
  if (norm) x = norm(x);
  return threeD ? x.squeeze(1) : x;
}

MlpImpl::MlpImpl(int64_t in, int64_t hidden, int64_t out) {
  fc1 = register_module("fc1", nn::Linear(in, hidden));
  fc2 = register_module("fc2", nn::Linear(hidden, out));
}

torch::Tensor MlpImpl::forward(const torch::Tensor& x) {
  return gemm::linear(gemm::linear(x, fc1, gemm::Activation::Gelu), fc2);
}

namespace {

int64_t product(const std::vector<int64_t>& v) {
  int64_t p = 1;
  for (auto e : v) p *= e;
  return p;
}

nn::AnyModule makePool(const std::string& mode, int64_t channels,
                       const std::vector<int64_t>& kernel, const std::vector<int64_t>& stride) {
  if (kernel.size() != 3 || stride.size() != 3) {
    throw Error(
        "MVIT.POOL_Q_STRIDE / MVIT.POOL_KV_STRIDE / MVIT.POOL_KVQ_KERNEL: pooling needs 3 sizes "
        "(T, H, W)");
  }
  std::vector<int64_t> padding;
  for (auto k : kernel) padding.push_back(k / 2);
  if (mode == "conv") {
    return nn::AnyModule(
        nn::Conv3d(nn::Conv3dOptions(channels, channels, torch::IntArrayRef(kernel))
                       .stride(stride)
                       .padding(padding)
                       .groups(channels)
                       .bias(false)));
  }
  if (mode == "max") {
    return nn::AnyModule(nn::MaxPool3d(
        nn::MaxPool3dOptions(torch::IntArrayRef(kernel)).stride(stride).padding(padding)));
  }
  return nn::AnyModule(nn::AvgPool3d(
      nn::AvgPool3dOptions(torch::IntArrayRef(kernel)).stride(stride).padding(padding)));
}

// get_rel_pos: the table linearly resized to `d` rows when its size differs (a pooled grid larger
// than the one PySlowFast sized the table for).
torch::Tensor relPosTable(const torch::Tensor& relPos, int64_t d) {
  const int64_t rows = relPos.size(0);
  if (rows == d) return relPos;
  namespace F = torch::nn::functional;
  auto t = F::interpolate(relPos.reshape({1, rows, -1}).permute({0, 2, 1}),
                          F::InterpolateFuncOptions()
                              .size(std::vector<int64_t>{d})
                              .mode(torch::kLinear)
                              .align_corners(false));
  return t.reshape({-1, d}).permute({1, 0});
}

// dist = q_i * qRatio - k_j * kRatio + (k - 1) * kRatio, in float32 as PySlowFast computes it,
// truncated to table rows.
torch::Tensor relDistance(int64_t q, int64_t k) {
  const double qRatio = std::max(double(k) / double(q), 1.0);
  const double kRatio = std::max(double(q) / double(k), 1.0);
  auto dist = torch::arange(q).unsqueeze(1) * qRatio - torch::arange(k).unsqueeze(0) * kRatio;
  dist += double(k - 1) * kRatio;
  return dist.to(torch::kLong);
}

// The attention logits between grid tokens (cls row / column excluded), viewed as
// [B, heads, qT, qH, qW, kT, kH, kW]; adding into it writes into `attn`.
torch::Tensor gridView(torch::Tensor& attn, int64_t sp, const Thw& qs, const Thw& ks) {
  return attn.slice(2, sp).slice(3, sp).view(
      {attn.size(0), -1, qs[0], qs[1], qs[2], ks[0], ks[1], ks[2]});
}

// cal_rel_pos_spatial's two terms, [B, heads, qT, qH, qW, kH] and [B, heads, qT, qH, qW, kW].
std::pair<torch::Tensor, torch::Tensor> relPosSpatialTerms(const torch::Tensor& q, bool hasCls,
                                                           const Thw& qs, const Thw& ks,
                                                           const torch::Tensor& relPosH,
                                                           const torch::Tensor& relPosW) {
  const int64_t sp = hasCls ? 1 : 0;
  const int64_t dh = 2 * std::max(qs[1], ks[1]) - 1;
  const int64_t dw = 2 * std::max(qs[2], ks[2]) - 1;
  auto Rh = relPosTable(relPosH, dh).index({relDistance(qs[1], ks[1])});
  auto Rw = relPosTable(relPosW, dw).index({relDistance(qs[2], ks[2])});
  const int64_t B = q.size(0), heads = q.size(1), dim = q.size(3);
  auto rq = q.slice(2, sp).reshape({B, heads, qs[0], qs[1], qs[2], dim});
  return {torch::einsum("bythwc,hkc->bythwk", {rq, Rh}),
          torch::einsum("bythwc,wkc->bythwk", {rq, Rw})};
}

// cal_rel_pos_temporal's term, [B, heads, qT, qH, qW, kT].
torch::Tensor relPosTemporalTerm(const torch::Tensor& q, bool hasCls, const Thw& qs, const Thw& ks,
                                 const torch::Tensor& relPosT) {
  const int64_t sp = hasCls ? 1 : 0;
  const int64_t dt = 2 * std::max(qs[0], ks[0]) - 1;
  auto Rt = relPosTable(relPosT, dt).index({relDistance(qs[0], ks[0])});
  const int64_t B = q.size(0), heads = q.size(1), dim = q.size(3);
  auto rq = q.slice(2, sp)
                .reshape({B, heads, qs[0], qs[1], qs[2], dim})
                .permute({2, 0, 1, 3, 4, 5})
                .reshape({qs[0], B * heads * qs[1] * qs[2], dim});
  auto rel = torch::matmul(rq, Rt.transpose(1, 2)).transpose(0, 1);
  return rel.view({B, heads, qs[1], qs[2], qs[0], ks[0]}).permute({0, 1, 4, 2, 3, 5});
}

// The terms added in place into the whole logit matrix (PySlowFast adds into a new tensor and
// copies it back: the same sums, in the same order, one attention-sized buffer less): the
// spatial ones first, then the temporal one.
void addRelPos(torch::Tensor& attn, bool hasCls, const Thw& qs, const Thw& ks,
               const torch::Tensor& relH, const torch::Tensor& relW, const torch::Tensor& relT) {
  auto view = gridView(attn, hasCls ? 1 : 0, qs, ks);
  if (relH.defined()) {
    view.add_(relH.unsqueeze(5).unsqueeze(7));
    view.add_(relW.unsqueeze(5).unsqueeze(5));
  }
  if (relT.defined()) view.add_(relT.unsqueeze(6).unsqueeze(7));
}

// The same terms for a block of rows of the fused attention (gemm::attention): per logit
// ((l + h) + w) + t, the unfused adds' order. Terms contiguous, [B, heads, qT * qH * qW, k*].
gemm::LogitBias relPosBias(bool hasCls, const Thw& qs, const Thw& ks, const torch::Tensor& relH,
                           const torch::Tensor& relW, const torch::Tensor& relT) {
  const int64_t sp = hasCls ? 1 : 0, grid = qs[0] * qs[1] * qs[2];
  const int64_t kT = ks[0], kH = ks[1], kW = ks[2];
  const float* ph = relH.defined() ? relH.data_ptr<float>() : nullptr;
  const float* pw = relW.defined() ? relW.data_ptr<float>() : nullptr;
  const float* pt = relT.defined() ? relT.data_ptr<float>() : nullptr;
  const int64_t heads = (relH.defined() ? relH : relT).size(1);
  return [=](int64_t b, int64_t h, int64_t row0, int64_t rows, float* logits, int64_t ld) {
    for (int64_t r = std::max(row0, sp); r < row0 + rows; ++r) {
      const int64_t g = (b * heads + h) * grid + (r - sp);
      float* row = logits + (r - row0) * ld + sp;
      for (int64_t t = 0; t < kT; ++t) {
        const float tt = pt ? pt[g * kT + t] : 0.0f;
        for (int64_t y = 0; y < kH; ++y) {
          float* cell = row + (t * kH + y) * kW;
          if (ph) {
            const float hy = ph[g * kH + y];
            const float* wx = pw + g * kW;
            if (pt) {
              for (int64_t x = 0; x < kW; ++x) cell[x] = ((cell[x] + hy) + wx[x]) + tt;
            } else {
              for (int64_t x = 0; x < kW; ++x) cell[x] = (cell[x] + hy) + wx[x];
            }
          } else {
            for (int64_t x = 0; x < kW; ++x) cell[x] = cell[x] + tt;
          }
        }
      }
    }
  };
}

}  // namespace

MultiScaleAttentionImpl::MultiScaleAttentionImpl(const AttentionOptions& o)
    : numHeads(o.numHeads),
      dimOut(o.dimOut),
      hasCls(o.hasCls),
      relPosSpatial(o.relPosSpatial),
      relPosTemporal(o.relPosTemporal),
      residualPooling(o.residualPooling),
      separateQkv(o.separateQkv) {
  const int64_t headDim = o.dimOut / o.numHeads;
  scale = std::pow(double(headDim), -0.5);
  if (o.separateQkv) {
    q = register_module("q", nn::Linear(nn::LinearOptions(o.dim, o.dimOut).bias(o.qkvBias)));
    k = register_module("k", nn::Linear(nn::LinearOptions(o.dim, o.dimOut).bias(o.qkvBias)));
    v = register_module("v", nn::Linear(nn::LinearOptions(o.dim, o.dimOut).bias(o.qkvBias)));
  } else {
    qkv =
        register_module("qkv", nn::Linear(nn::LinearOptions(o.dim, o.dimOut * 3).bias(o.qkvBias)));
  }
  proj = register_module("proj", nn::Linear(o.dimOut, o.dimOut));

  if (o.mode != "conv" && o.mode != "avg" && o.mode != "max") {
    throw Error("MVIT.MODE '" + o.mode +
                "' is not supported (conv, avg, max; conv_unshared needs MVIT.POOL_FIRST)");
  }
  // PySlowFast skips a pooling whose kernel and stride are both 1x1x1.
  const bool poolQ = !(product(o.kernelQ) == 1 && product(o.strideQ) == 1) && !o.kernelQ.empty();
  const bool poolKv =
      !(product(o.kernelKv) == 1 && product(o.strideKv) == 1) && !o.kernelKv.empty();
  const int64_t dimConv = o.dimOut / o.numHeads;
  if (poolQ) {
    pool_q = makePool(o.mode, dimConv, o.kernelQ, o.strideQ);
    register_module("pool_q", pool_q.ptr());
    if (o.mode == "conv") norm_q = register_module("norm_q", mvitLayerNorm(dimConv));
  }
  if (poolKv) {
    pool_k = makePool(o.mode, dimConv, o.kernelKv, o.strideKv);
    register_module("pool_k", pool_k.ptr());
    if (o.mode == "conv") norm_k = register_module("norm_k", mvitLayerNorm(dimConv));
    pool_v = makePool(o.mode, dimConv, o.kernelKv, o.strideKv);
    register_module("pool_v", pool_v.ptr());
    if (o.mode == "conv") norm_v = register_module("norm_v", mvitLayerNorm(dimConv));
  }

  if (o.relPosSpatial) {
    if (o.inputSize[1] != o.inputSize[2]) {
      throw Error(
          "MVIT.REL_POS_SPATIAL needs a square token grid (DATA.TRAIN_CROP_SIZE / "
          "MVIT.PATCH_STRIDE)");
    }
    const int64_t size = o.inputSize[1];
    const int64_t qSize = o.strideQ.empty() ? size : size / o.strideQ[1];
    const int64_t kvSize = o.strideKv.empty() ? size : size / o.strideKv[1];
    const int64_t rows = 2 * std::max(qSize, kvSize) - 1;
    rel_pos_h = register_parameter("rel_pos_h", torch::zeros({rows, headDim}));
    rel_pos_w = register_parameter("rel_pos_w", torch::zeros({rows, headDim}));
  }
  if (o.relPosTemporal) {
    rel_pos_t = register_parameter("rel_pos_t", torch::zeros({2 * o.inputSize[0] - 1, headDim}));
  }
}

std::pair<torch::Tensor, Thw> MultiScaleAttentionImpl::forward(const torch::Tensor& x,
                                                               const Thw& thw) {
  const int64_t B = x.size(0), N = x.size(1);
  Thw qShape = thw, kShape = thw, vShape = thw;
  torch::Tensor qt, kt, vt;
  {
    // Scoped: once pooled, the unpooled projections are dropped (PySlowFast's local `qkv` keeps
    // them to the end of its forward).
    torch::Tensor qkvOut;
    if (separateQkv) {
      qt = gemm::linear(x, q).reshape({B, N, numHeads, -1}).permute({0, 2, 1, 3});
      kt = gemm::linear(x, k).reshape({B, N, numHeads, -1}).permute({0, 2, 1, 3});
      vt = gemm::linear(x, v).reshape({B, N, numHeads, -1}).permute({0, 2, 1, 3});
    } else {
      qkvOut = gemm::linear(x, qkv).reshape({B, N, 3, numHeads, -1}).permute({2, 0, 3, 1, 4});
      qt = qkvOut[0];
      kt = qkvOut[1];
      vt = qkvOut[2];
    }
    qt = attentionPool(qt, pool_q, qShape, hasCls, norm_q);
    kt = attentionPool(kt, pool_k, kShape, hasCls, norm_k);
    vt = attentionPool(vt, pool_v, vShape, hasCls, norm_v);
  }

  torch::Tensor relH, relW, relT;  // the relative position terms, from the unscaled q
  if (relPosSpatial) {
    std::tie(relH, relW) = relPosSpatialTerms(qt, hasCls, qShape, kShape, rel_pos_h, rel_pos_w);
  }
  if (relPosTemporal) relT = relPosTemporalTerm(qt, hasCls, qShape, kShape, rel_pos_t);
  auto qScaled = qt * scale;
  torch::Tensor out;
  if (gemm::fusedAttention(qScaled, kt, vt)) {
    gemm::LogitBias bias;
    if (relH.defined() || relT.defined()) {
      if (relH.defined()) relH = relH.contiguous(), relW = relW.contiguous();
      if (relT.defined()) relT = relT.contiguous();
      bias = relPosBias(hasCls, qShape, kShape, relH, relW, relT);
    }
    out = gemm::attention(qScaled, kt, vt, 1.0, bias);
  } else {
    auto attn = gemm::matmul(qScaled, kt.transpose(-2, -1));
    if (relH.defined() || relT.defined()) addRelPos(attn, hasCls, qShape, kShape, relH, relW, relT);
    attn = attn.softmax(-1);
    out = gemm::matmul(attn, vt);
  }
  qScaled.reset();

  if (residualPooling) {
    if (hasCls) {
      out.slice(2, 1).add_(qt.slice(2, 1));
    } else {
      out.add_(qt);
    }
  }
  out = out.transpose(1, 2).reshape({B, -1, dimOut});
  return {gemm::linear(out, proj), qShape};
}

MultiScaleBlockImpl::MultiScaleBlockImpl(const MViTBlockOptions& o)
    : dim(o.attn.dim), dimOut(o.attn.dimOut), dimMulInAtt(o.dimMulInAtt), hasCls(o.attn.hasCls) {
  norm1 = register_module("norm1", mvitLayerNorm(dim));
  AttentionOptions a = o.attn;
  const int64_t attDim = o.dimMulInAtt ? dimOut : dim;
  a.dimOut = attDim;
  attn = register_module("attn", MultiScaleAttention(a));
  norm2 = register_module("norm2", mvitLayerNorm(attDim));
  // Python int(): truncation.
  mlp = register_module("mlp", Mlp(attDim, int64_t(double(attDim) * o.mlpRatio), dimOut));
  if (dim != dimOut) proj = register_module("proj", nn::Linear(dim, dimOut));
  // The skip connection is max-pooled by the query stride, kernel stride + 1 where the stride is
  // above 1.
  if (!o.attn.strideQ.empty() && product(o.attn.strideQ) > 1) {
    std::vector<int64_t> kernel, padding;
    for (auto s : o.attn.strideQ) kernel.push_back(s > 1 ? s + 1 : s);
    for (auto k : kernel) padding.push_back(k / 2);
    pool_skip = nn::AnyModule(nn::MaxPool3d(
        nn::MaxPool3dOptions(torch::IntArrayRef(kernel)).stride(o.attn.strideQ).padding(padding)));
    register_module("pool_skip", pool_skip.ptr());
  }
}

std::pair<torch::Tensor, Thw> MultiScaleBlockImpl::forward(torch::Tensor x, const Thw& thw) {
  auto xNorm = norm1(x);
  auto [xBlock, thwNew] = attn(xNorm, thw);
  if (dimMulInAtt && dim != dimOut) x = gemm::linear(xNorm, proj);
  Thw skipThw = thw;
  x = attentionPool(std::move(x), pool_skip, skipThw, hasCls) + xBlock;
  xBlock.reset();
  xNorm = norm2(x);
  auto xMlp = mlp(xNorm);
  if (!dimMulInAtt && dim != dimOut) x = gemm::linear(xNorm, proj);
  xNorm.reset();
  return {x + xMlp, thwNew};
}

}  // namespace vidfeat::model
