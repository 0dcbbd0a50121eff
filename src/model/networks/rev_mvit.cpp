#include "networks/rev_mvit.h"

#include "kernels/gemm.h"
#include "vidfeat/common/error.h"

namespace vidfeat::model {

namespace nn = torch::nn;

TwoStreamFusionImpl::TwoStreamFusionImpl(const std::string& mode_, int64_t dim,
                                         const std::string& key)
    : mode(mode_) {
  if (mode == "add" || mode == "max" || mode == "min" || mode == "avg" || mode == "concat") return;
  if (mode.find("concat_linear") == std::string::npos) {
    throw Error(
        key + " '" + mode +
        "' is not a fusion PySlowFast knows (add, max, min, avg, concat, concat_linear...)");
  }
  // The suffixes after '_' give the hidden width multiplier and the dropout rate.
  std::vector<std::string> parts;
  size_t start = 0;
  for (size_t p; (p = mode.find('_', start)) != std::string::npos; start = p + 1)
    parts.push_back(mode.substr(start, p - start));
  parts.push_back(mode.substr(start));
  const std::string bad = key + " '" + mode + "': expected concat_linear[_MULT[_DROP]]";
  if (parts.size() < 2 || parts.size() > 4) throw Error(bad);
  double mult = 1.0;
  try {
    if (parts.size() > 2) mult = std::stod(parts[2]);
  } catch (const std::exception&) {
    throw Error(bad);
  }
  Mlp mlp(dim, int64_t(double(dim) * mult), dim);
  if (mode.rfind("ln+", 0) == 0) {
    // nn.LayerNorm(dim) with PyTorch's default epsilon, not MViT's.
    fuse_ln_mlp =
        register_module("fuse_fn", nn::Sequential(nn::LayerNorm(nn::LayerNormOptions({dim})), mlp));
  } else {
    fuse_mlp = register_module("fuse_fn", mlp);
  }
}

torch::Tensor TwoStreamFusionImpl::forward(const torch::Tensor& x) {
  if (mode == "concat") return x;
  // The concat_linear MLPs are residual.
  if (fuse_mlp) return fuse_mlp(x) + x;
  if (fuse_ln_mlp) return fuse_ln_mlp->forward(x) + x;
  auto halves = torch::stack(torch::chunk(x, 2, 2));
  if (mode == "add") return halves.sum(0);
  if (mode == "max") return std::get<0>(halves.max(0));
  if (mode == "min") return std::get<0>(halves.min(0));
  return halves.mean(0);
}

AttentionSubBlockImpl::AttentionSubBlockImpl(const AttentionOptions& o, const Thw& thw_)
    : thw(thw_) {
  norm = register_module("norm", mvitLayerNorm(o.dim));
  attn = register_module("attn", MultiScaleAttention(o));
}

torch::Tensor AttentionSubBlockImpl::forward(const torch::Tensor& x) {
  return attn(norm(x), thw).first;
}

MLPSubblockImpl::MLPSubblockImpl(int64_t dim, double mlpRatio) {
  norm = register_module("norm", mvitLayerNorm(dim));
  mlp = register_module("mlp", Mlp(dim, int64_t(double(dim) * mlpRatio), dim));
}

torch::Tensor MLPSubblockImpl::forward(const torch::Tensor& x) { return mlp(norm(x)); }

ReversibleBlockImpl::ReversibleBlockImpl(const AttentionOptions& o, const Thw& thw,
                                         double mlpRatio) {
  F = register_module("F", AttentionSubBlock(o, thw));
  G = register_module("G", MLPSubblock(o.dim, mlpRatio));
}

void ReversibleBlockImpl::forward(torch::Tensor& x1, torch::Tensor& x2) {
  x1 = x1 + F(x2);
  x2 = x2 + G(x1);
}

StageTransitionBlockImpl::StageTransitionBlockImpl(const AttentionOptions& o, const Thw& thw,
                                                   double mlpRatio, const std::string& preQFusion) {
  F = register_module("F", AttentionSubBlock(o, thw));
  G = register_module("G", MLPSubblock(o.dimOut, mlpRatio));
  pre_q_fuse =
      register_module("pre_q_fuse", TwoStreamFusion(preQFusion, o.dim, "MVIT.REV.PRE_Q_FUSION"));
  if (o.dim != o.dimOut) res_proj = register_module("res_proj", nn::Linear(o.dim, o.dimOut));
}

torch::Tensor StageTransitionBlockImpl::forward(torch::Tensor x) {
  x = pre_q_fuse(x);
  auto res = res_proj ? gemm::linear(x, res_proj) : x;
  // The skip is pooled with the attention's own query pooling (RES_PATH conv), per head as q is.
  const int64_t B = res.size(0), L = res.size(1), C = res.size(2);
  const int64_t heads = F->attn->numHeads;
  res = res.reshape({B, L, heads, C / heads}).permute({0, 2, 1, 3});
  Thw thw = F->thw;
  res = attentionPool(res, F->attn->pool_q, thw, F->attn->hasCls, F->attn->norm_q);
  res = res.permute({0, 2, 1, 3}).reshape({B, res.size(2), C});
  x = res + F(x);
  res.reset();
  return x + G(x);
}

ReversibleMViTImpl::ReversibleMViTImpl(const std::vector<LayerSpec>& specs, double mlpRatio,
                                       const std::string& preQFusion) {
  layers = register_module("layers", nn::ModuleList());
  for (const auto& s : specs) {
    if (s.transition) {
      transitions.emplace_back(s.attn, s.thw, mlpRatio, preQFusion);
      reversible.emplace_back(nullptr);
      layers->push_back(transitions.back());
    } else {
      reversible.emplace_back(s.attn, s.thw, mlpRatio);
      transitions.emplace_back(nullptr);
      layers->push_back(reversible.back());
    }
  }
}

torch::Tensor ReversibleMViTImpl::forward(torch::Tensor x) {
  const size_t n = reversible.size();
  for (size_t i = 0; i < n;) {
    if (transitions[i]) {
      x = transitions[i]->forward(std::move(x));
      ++i;
      continue;
    }
    // A run of reversible layers: both streams start as the input (PySlowFast concatenates x with
    // itself and splits it again), and leave concatenated as [a, h].
    torch::Tensor h = x, a = x;
    x.reset();
    for (; i < n && reversible[i]; ++i) reversible[i]->forward(a, h);
    x = torch::cat({a, h}, -1);
  }
  return x;
}

}  // namespace vidfeat::model
