#pragma once
// PySlowFast's reversible MViT encoder (models/reversible_mvit.py, after Mangalam et al.,
// "Reversible Vision Transformers") and the two-stream fusion (models/common.TwoStreamFusion).
// At inference the reversible stack is run forwards as PySlowFast does in eval mode
// (vanilla_backward): the same numbers, no activation recomputation. Names equal PySlowFast's
// ("rev_backbone.layers.1.F.attn.qkv.weight", "rev_backbone.layers.1.res_proj.weight",
// "rev_backbone.layers.0.G.mlp.fc1.weight").
#include <torch/torch.h>

#include <string>
#include <vector>

#include "networks/attention.h"

namespace vidfeat::model {

// Fuses the two halves of the last dimension: add / max / min / avg, concat (no-op),
// concat_linear[_mult[_drop]] (x + MLP(x)) and ln+concat_linear... (x + MLP(LayerNorm(x))).
// Throws Error naming `key` for other modes.
struct TwoStreamFusionImpl : torch::nn::Module {
  TwoStreamFusionImpl(const std::string& mode, int64_t dim, const std::string& key);
  torch::Tensor forward(const torch::Tensor& x);

  std::string mode;
  // Registered as "fuse_fn" (concat_linear variants only): the MLP, or LayerNorm then the MLP.
  Mlp fuse_mlp{nullptr};
  torch::nn::Sequential fuse_ln_mlp{nullptr};
};
TORCH_MODULE(TwoStreamFusion);

// F: LayerNorm -> multiscale attention on the fixed grid `thw` set at construction.
struct AttentionSubBlockImpl : torch::nn::Module {
  AttentionSubBlockImpl(const AttentionOptions& o, const Thw& thw);
  torch::Tensor forward(const torch::Tensor& x);

  torch::nn::LayerNorm norm{nullptr};
  MultiScaleAttention attn{nullptr};
  Thw thw;
};
TORCH_MODULE(AttentionSubBlock);

// G: LayerNorm -> MLP (width kept).
struct MLPSubblockImpl : torch::nn::Module {
  MLPSubblockImpl(int64_t dim, double mlpRatio);
  torch::Tensor forward(const torch::Tensor& x);

  torch::nn::LayerNorm norm{nullptr};
  Mlp mlp{nullptr};
};
TORCH_MODULE(MLPSubblock);

// Y1 = X1 + F(X2), Y2 = X2 + G(Y1).
struct ReversibleBlockImpl : torch::nn::Module {
  ReversibleBlockImpl(const AttentionOptions& o, const Thw& thw, double mlpRatio);
  void forward(torch::Tensor& x1, torch::Tensor& x2);

  AttentionSubBlock F{nullptr};
  MLPSubblock G{nullptr};
};
TORCH_MODULE(ReversibleBlock);

// The non-reversible block where the stage changes: fuse the two streams, then a MultiScaleBlock
// whose skip path is projected (res_proj) and pooled with the attention's own pool_q / norm_q.
struct StageTransitionBlockImpl : torch::nn::Module {
  StageTransitionBlockImpl(const AttentionOptions& o, const Thw& thw, double mlpRatio,
                           const std::string& preQFusion);
  torch::Tensor forward(torch::Tensor x);

  TwoStreamFusion pre_q_fuse{nullptr};
  AttentionSubBlock F{nullptr};
  MLPSubblock G{nullptr};
  torch::nn::Linear res_proj{nullptr};
};
TORCH_MODULE(StageTransitionBlock);

struct ReversibleMViTImpl : torch::nn::Module {
  struct LayerSpec {
    AttentionOptions attn;
    Thw thw{};
    bool transition = false;
  };
  ReversibleMViTImpl(const std::vector<LayerSpec>& specs, double mlpRatio,
                     const std::string& preQFusion);
  // [B, N, C] -> [B, N', 2 C'] (the two streams concatenated, as PySlowFast returns them).
  torch::Tensor forward(torch::Tensor x);

  torch::nn::ModuleList layers;
  std::vector<ReversibleBlock> reversible;        // per layer, null where a transition
  std::vector<StageTransitionBlock> transitions;  // per layer, null where reversible
};
TORCH_MODULE(ReversibleMViT);

}  // namespace vidfeat::model
