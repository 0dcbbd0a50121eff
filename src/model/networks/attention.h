#pragma once
// PySlowFast's multiscale attention (models/attention.py, after Fan et al., "Multiscale Vision
// Transformers", and Li et al., "MViTv2"): pooling attention with conv / avg / max pooling of Q, K
// and V, decomposed relative position bias, residual pooling; the transformer block around it and
// the MLP (models/common.py). Module names equal PySlowFast's ("attn.qkv", "attn.pool_q",
// "attn.norm_q", "attn.rel_pos_h", "mlp.fc1", "norm1", "proj").
//
// Memory: the attention runs the ops PySlowFast's does, (q * scale) @ k^T, the bias added in place
// into that matrix, softmax, @ v; no per-head copies beyond those ops.
#include <torch/torch.h>

#include <array>
#include <string>
#include <utility>
#include <vector>

namespace vidfeat::model {

using Thw = std::array<int64_t, 3>;

// PySlowFast's round_width as MViT calls it: its multipliers are elements of a float32 tensor, so
// the product and the comparisons are float32 arithmetic. multiplier 0 keeps the width.
int64_t roundWidthF32(int64_t width, float multiplier, int64_t minWidth = 1, int64_t divisor = 1);

// attention_pool: `x` is [B, heads, L, C] or [B, L, C] over a T x H x W grid (plus a leading cls
// token when hasCls). `pool` (empty: no pooling, `x` and `thw` returned unchanged) runs on
// [B * heads, C, T, H, W]; the cls token rejoins unpooled, then `norm` (may be null) runs on all.
// `thw` becomes the pooled grid.
torch::Tensor attentionPool(torch::Tensor x, torch::nn::AnyModule& pool, Thw& thw, bool hasCls,
                            torch::nn::LayerNorm norm = torch::nn::LayerNorm(nullptr));

// Linear -> GELU -> Linear (common.Mlp; dropout is a no-op at inference).
struct MlpImpl : torch::nn::Module {
  MlpImpl(int64_t in, int64_t hidden, int64_t out);
  torch::Tensor forward(const torch::Tensor& x);

  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
};
TORCH_MODULE(Mlp);

struct AttentionOptions {
  int64_t dim = 0;
  int64_t dimOut = 0;
  Thw inputSize{};  // the grid PySlowFast sizes the relative position tables for
  int64_t numHeads = 1;
  bool qkvBias = false;
  std::vector<int64_t> kernelQ, kernelKv, strideQ, strideKv;  // empty: no pooling
  std::string mode = "conv";                                  // conv, avg, max
  bool hasCls = true;
  bool relPosSpatial = false;
  bool relPosTemporal = false;
  bool residualPooling = false;
  bool separateQkv = false;
};

struct MultiScaleAttentionImpl : torch::nn::Module {
  explicit MultiScaleAttentionImpl(const AttentionOptions& o);
  // x: [B, N, dim] tokens over `thw`. Returns [B, Nq, dimOut] and the grid of the pooled queries.
  std::pair<torch::Tensor, Thw> forward(const torch::Tensor& x, const Thw& thw);

  torch::nn::Linear qkv{nullptr}, q{nullptr}, k{nullptr}, v{nullptr}, proj{nullptr};
  torch::nn::AnyModule pool_q, pool_k, pool_v;  // empty when that pooling is skipped
  torch::nn::LayerNorm norm_q{nullptr}, norm_k{nullptr}, norm_v{nullptr};
  torch::Tensor rel_pos_h, rel_pos_w, rel_pos_t;

  int64_t numHeads;
  int64_t dimOut;
  double scale;
  bool hasCls, relPosSpatial, relPosTemporal, residualPooling, separateQkv;
};
TORCH_MODULE(MultiScaleAttention);

struct MViTBlockOptions {
  AttentionOptions attn;  // attn.dim / dimOut are the block's; the attention gets dimOut only
                          // with dimMulInAtt
  double mlpRatio = 4.0;
  bool dimMulInAtt = false;
};

// norm1 -> attention (+ max-pooled skip) -> norm2 -> MLP (+ skip), with `proj` on the skip where
// the width changes (after norm1 with DIM_MUL_IN_ATT, else after norm2).
struct MultiScaleBlockImpl : torch::nn::Module {
  explicit MultiScaleBlockImpl(const MViTBlockOptions& o);
  std::pair<torch::Tensor, Thw> forward(torch::Tensor x, const Thw& thw);

  torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr};
  MultiScaleAttention attn{nullptr};
  Mlp mlp{nullptr};
  torch::nn::Linear proj{nullptr};
  torch::nn::AnyModule pool_skip;

  int64_t dim, dimOut;
  bool dimMulInAtt, hasCls;
};
TORCH_MODULE(MultiScaleBlock);

// LayerNorm with PySlowFast's MViT epsilon (1e-6).
torch::nn::LayerNorm mvitLayerNorm(int64_t dim);

}  // namespace vidfeat::model
