#pragma once
// CLIP's image tower (Radford et al., "Learning Transferable Visual Models From Natural Language
// Supervision"): the Vision Transformer of OpenAI's clip/model.py and open_clip's
// transformer.VisionTransformer, which share their state-dict keys ("visual.conv1.weight",
// "visual.class_embedding", "visual.positional_embedding", "visual.ln_pre",
// "visual.transformer.resblocks.<i>.{ln_1,attn.in_proj_weight,attn.in_proj_bias,attn.out_proj,
// ln_2,mlp.c_fc,mlp.c_proj}", "visual.ln_post", "visual.proj"). Module names are those keys, so
// OpenAI's released archives and open_clip's state dicts load as they are; the text tower's keys
// in the same files are left out (ignoresCheckpointKey).
//
// Per frame: patches (a conv with kernel = stride = CLIP.PATCH_SIZE), the class token prepended,
// positional embedding, ln_pre, CLIP.LAYERS residual attention blocks (pre-norm, CLIP.HEADS heads,
// MLP 4x with QuickGELU or GELU: CLIP.ACT), ln_post on the class token, times proj. A clip of
// DATA.NUM_FRAMES frames gives the mean of its frames' features (1 frame: that frame's).
#include <torch/torch.h>

#include "networks/video_net.h"

namespace vidfeat::model {

// torch.nn.MultiheadAttention as CLIP uses it (self-attention, no mask): in_proj_weight
// [3d, d] and in_proj_bias [3d] give q, k, v; out_proj after the heads.
struct ClipAttentionImpl : torch::nn::Module {
  ClipAttentionImpl(int64_t width, int64_t heads);
  torch::Tensor forward(const torch::Tensor& x);  // [N, L, d] -> [N, L, d]

  torch::Tensor in_proj_weight, in_proj_bias;
  torch::nn::Linear out_proj{nullptr};
  int64_t heads;
};
TORCH_MODULE(ClipAttention);

// c_fc -> QuickGELU / GELU -> c_proj (an nn.Sequential in CLIP, hence the names).
struct ClipMlpImpl : torch::nn::Module {
  ClipMlpImpl(int64_t width, bool quickGelu);
  torch::Tensor forward(const torch::Tensor& x);

  torch::nn::Linear c_fc{nullptr}, c_proj{nullptr};
  bool quickGelu;
};
TORCH_MODULE(ClipMlp);

// x + attn(ln_1(x)), then x + mlp(ln_2(x)).
struct ResidualAttentionBlockImpl : torch::nn::Module {
  ResidualAttentionBlockImpl(int64_t width, int64_t heads, bool quickGelu);
  torch::Tensor forward(torch::Tensor x);

  torch::nn::LayerNorm ln_1{nullptr}, ln_2{nullptr};
  ClipAttention attn{nullptr};
  ClipMlp mlp{nullptr};
};
TORCH_MODULE(ResidualAttentionBlock);

struct ClipVisionOptions {
  int64_t imageSize = 224;  // DATA.TEST_CROP_SIZE
  int64_t patchSize = 32;
  int64_t width = 768;
  int64_t layers = 12;
  int64_t heads = 12;
  int64_t embedDim = 512;  // proj's output
  bool quickGelu = true;
};

// transformer.resblocks: a ModuleList in CLIP.
struct ClipTransformerImpl : torch::nn::Module {
  ClipTransformerImpl(int64_t width, int64_t layers, int64_t heads, bool quickGelu);
  torch::Tensor forward(torch::Tensor x);

  torch::nn::ModuleList resblocks{nullptr};
};
TORCH_MODULE(ClipTransformer);

struct ClipVisionTransformerImpl : torch::nn::Module {
  explicit ClipVisionTransformerImpl(const ClipVisionOptions& o);
  // images [N, 3, S, S] -> ln_post(class token) [N, width]; times proj gives the embedding.
  torch::Tensor token(const torch::Tensor& images);

  torch::nn::Conv2d conv1{nullptr};
  torch::Tensor class_embedding, positional_embedding, proj;
  torch::nn::LayerNorm ln_pre{nullptr}, ln_post{nullptr};
  ClipTransformer transformer{nullptr};
  int64_t grid;
};
TORCH_MODULE(ClipVisionTransformer);

// MODEL.MODEL_NAME CLIP (MODEL.ARCH clip). Reads CLIP.PATCH_SIZE, WIDTH, LAYERS, HEADS, EMBED_DIM,
// ACT (quick_gelu | gelu), FEATURE (embedding | token), DATA.TEST_CROP_SIZE, DATA.NUM_FRAMES.
class ClipImpl : public VideoNet {
 public:
  explicit ClipImpl(const Config& cfg);
  // pathways[0]: [B, 3, T, S, S]; the feature is the mean over the T frames.
  NetOutput forwardFeatures(std::vector<torch::Tensor> pathways, bool withLogits) override;
  // Every key outside "visual." (the text tower, logit_scale, OpenAI's input_resolution, ...).
  bool ignoresCheckpointKey(const std::string& key) const override;

  ClipVisionTransformer visual{nullptr};

 private:
  bool projected_ = true;  // CLIP.FEATURE embedding (after proj) or token (before)
};

}  // namespace vidfeat::model
