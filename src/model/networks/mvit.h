#pragma once
// PySlowFast's MViT (video_model_builder.MViT): MViTv1 (conv patch embedding, separate space /
// time positional embeddings, pooling attention, cls token), MViTv2 (decomposed relative position
// bias, residual pooling, DIM_MUL_IN_ATT) and, with MVIT.REV.ENABLE, the reversible encoder
// (rev_mvit.h), built from the config. Module names equal PySlowFast's state-dict keys
// ("patch_embed.proj.weight", "cls_token", "pos_embed_spatial", "blocks.0.attn.qkv.weight",
// "norm.weight", "head.projection.weight", "rev_backbone.layers...").
//
// Feature: the head's input, i.e. after the final norm the cls token, or the mean over tokens
// (MVIT.USE_MEAN_POOLING, no cls token, the reversible model).
//
// Input sizes: as PySlowFast, DATA.TEST_CROP_SIZE must equal DATA.TRAIN_CROP_SIZE and the clip must
// give the configured token grid (PySlowFast asserts both before its positional-embedding
// interpolation could run, so positional embeddings are never resized); relative position tables
// are resized where a pooled grid outgrows them, as PySlowFast's get_rel_pos does.
#include <torch/torch.h>

#include "networks/attention.h"
#include "networks/rev_mvit.h"
#include "networks/video_net.h"

namespace vidfeat::model {

// Conv3d patch embedding; forward gives [B, T*H*W, C] tokens and the grid.
struct PatchEmbedImpl : torch::nn::Module {
  PatchEmbedImpl(int64_t dimIn, int64_t dimOut, const std::vector<int64_t>& kernel,
                 const std::vector<int64_t>& stride, const std::vector<int64_t>& padding);
  std::pair<torch::Tensor, Thw> forward(const torch::Tensor& x);

  torch::nn::Conv3d proj{nullptr};
};
TORCH_MODULE(PatchEmbed);

// Linear projection and the test-time activation (head_helper.TransformerBasicHead).
struct TransformerBasicHeadImpl : torch::nn::Module {
  TransformerBasicHeadImpl(int64_t dimIn, int64_t numClasses, const std::string& act);
  torch::Tensor forward(const torch::Tensor& x);

  torch::nn::Linear projection{nullptr};
  std::string act;
};
TORCH_MODULE(TransformerBasicHead);

class MViTImpl : public VideoNet {
 public:
  // Throws Error naming the key for what PySlowFast rejects or vidfeat does not build
  // (MVIT.CLS_EMBED_ON with MVIT.REV.ENABLE, DATA.TEST_CROP_SIZE != DATA.TRAIN_CROP_SIZE,
  // MVIT.POOL_FIRST, MVIT.PATCH_2D, DETECTION.ENABLE, ...).
  explicit MViTImpl(const Config& cfg);
  NetOutput forwardFeatures(std::vector<torch::Tensor> pathways, bool withLogits) override;

  PatchEmbed patch_embed{nullptr};
  torch::Tensor cls_token, pos_embed, pos_embed_spatial, pos_embed_temporal, pos_embed_class;
  torch::nn::LayerNorm norm_stem{nullptr};
  std::vector<MultiScaleBlock> blocks;
  ReversibleMViT rev_backbone{nullptr};
  TwoStreamFusion fuse{nullptr};
  torch::nn::LayerNorm norm{nullptr};
  TransformerBasicHead head{nullptr};

 private:
  Thw patchDims_{};
  bool clsEmbed_ = false;
  bool meanPooling_ = false;
  bool fixedSincos_ = false;
};

}  // namespace vidfeat::model
