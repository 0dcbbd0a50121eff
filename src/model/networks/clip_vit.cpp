#include "networks/clip_vit.h"

#include <cmath>

#include "kernels/gemm.h"
#include "vidfeat/common/error.h"
#include "vidfeat/config/config.h"

namespace vidfeat::model {

namespace nn = torch::nn;

namespace {

nn::LayerNorm clipLayerNorm(int64_t dim) {  // torch.nn.LayerNorm's default eps
  return nn::LayerNorm(nn::LayerNormOptions({dim}).eps(1e-5));
}

int64_t positive(const Config& cfg, const std::string& key) {
  const int v = cfg.get<int>(key);
  if (v < 1) throw Error("config key " + key + " must be >= 1, got " + std::to_string(v));
  return v;
}

}  // namespace

ClipAttentionImpl::ClipAttentionImpl(int64_t width, int64_t heads_) : heads(heads_) {
  in_proj_weight = register_parameter("in_proj_weight", torch::empty({3 * width, width}));
  in_proj_bias = register_parameter("in_proj_bias", torch::zeros({3 * width}));
  out_proj = register_module("out_proj", nn::Linear(width, width));
}

torch::Tensor ClipAttentionImpl::forward(const torch::Tensor& x) {
  const int64_t N = x.size(0), L = x.size(1), d = x.size(2), hd = d / heads;
  // One product for q, k and v (MultiheadAttention's in_proj), split per head in place.
  auto qkv = gemm::linear(x, in_proj_weight, in_proj_bias)
                 .reshape({N, L, 3, heads, hd})
                 .permute({2, 0, 3, 1, 4});  // [3, N, heads, L, hd]
  auto q = qkv[0], k = qkv[1], v = qkv[2];
  const double scale = 1.0 / std::sqrt(double(hd));
  torch::Tensor out;
  if (gemm::fusedAttention(q, k, v)) {
    out = gemm::attention(q, k, v, scale);
  } else {
    auto logits = gemm::matmul(q * scale, k.transpose(-2, -1));
    out = gemm::matmul(logits.softmax(-1), v);
  }
  return gemm::linear(out.transpose(1, 2).reshape({N, L, d}), out_proj);
}

ClipMlpImpl::ClipMlpImpl(int64_t width, bool quickGelu_) : quickGelu(quickGelu_) {
  c_fc = register_module("c_fc", nn::Linear(width, 4 * width));
  c_proj = register_module("c_proj", nn::Linear(4 * width, width));
}

torch::Tensor ClipMlpImpl::forward(const torch::Tensor& x) {
  const auto act = quickGelu ? gemm::Activation::QuickGelu : gemm::Activation::Gelu;
  return gemm::linear(gemm::linear(x, c_fc, act), c_proj);
}

ResidualAttentionBlockImpl::ResidualAttentionBlockImpl(int64_t width, int64_t heads,
                                                       bool quickGelu) {
  ln_1 = register_module("ln_1", clipLayerNorm(width));
  attn = register_module("attn", ClipAttention(width, heads));
  ln_2 = register_module("ln_2", clipLayerNorm(width));
  mlp = register_module("mlp", ClipMlp(width, quickGelu));
}

torch::Tensor ResidualAttentionBlockImpl::forward(torch::Tensor x) {
  x = x + attn(ln_1(x));
  return x + mlp(ln_2(x));
}

ClipTransformerImpl::ClipTransformerImpl(int64_t width, int64_t layers, int64_t heads,
                                         bool quickGelu) {
  resblocks = register_module("resblocks", nn::ModuleList());
  for (int64_t i = 0; i < layers; ++i)
    resblocks->push_back(ResidualAttentionBlock(width, heads, quickGelu));
}

torch::Tensor ClipTransformerImpl::forward(torch::Tensor x) {
  for (const auto& block : *resblocks) x = block->as<ResidualAttentionBlock>()->forward(x);
  return x;
}

ClipVisionTransformerImpl::ClipVisionTransformerImpl(const ClipVisionOptions& o)
    : grid(o.imageSize / o.patchSize) {
  conv1 = register_module(
      "conv1",
      nn::Conv2d(nn::Conv2dOptions(3, o.width, o.patchSize).stride(o.patchSize).bias(false)));
  class_embedding = register_parameter("class_embedding", torch::zeros({o.width}));
  positional_embedding =
      register_parameter("positional_embedding", torch::zeros({grid * grid + 1, o.width}));
  ln_pre = register_module("ln_pre", clipLayerNorm(o.width));
  transformer =
      register_module("transformer", ClipTransformer(o.width, o.layers, o.heads, o.quickGelu));
  ln_post = register_module("ln_post", clipLayerNorm(o.width));
  proj = register_parameter("proj", torch::zeros({o.width, o.embedDim}));
}

torch::Tensor ClipVisionTransformerImpl::token(const torch::Tensor& images) {
  auto x = conv1(images);  // [N, width, g, g]
  const int64_t N = x.size(0), width = x.size(1);
  if (x.size(2) != grid || x.size(3) != grid) {
    throw Error("CLIP built for a " + std::to_string(grid) + "x" + std::to_string(grid) +
                " patch grid got images of " + std::to_string(images.size(2)) + "x" +
                std::to_string(images.size(3)));
  }
  x = x.reshape({N, width, grid * grid}).transpose(1, 2);  // [N, g*g, width]
  // [class_embedding; patches] + positional_embedding, written once into one buffer.
  auto tokens = torch::empty({N, grid * grid + 1, width}, x.options());
  tokens.select(1, 0).copy_(class_embedding.to(x.dtype()).expand({N, width}));
  tokens.narrow(1, 1, grid * grid).copy_(x);
  tokens.add_(positional_embedding.to(x.dtype()));
  auto h = transformer(ln_pre(tokens));
  return ln_post(h.select(1, 0));
}

ClipImpl::ClipImpl(const Config& cfg) {
  const auto arch = cfg.get<std::string>("MODEL.ARCH");
  if (arch != "clip")
    throw Error("MODEL.MODEL_NAME CLIP needs MODEL.ARCH clip (got '" + arch + "')");
  ClipVisionOptions o;
  o.imageSize = positive(cfg, "DATA.TEST_CROP_SIZE");
  o.patchSize = positive(cfg, "CLIP.PATCH_SIZE");
  o.width = positive(cfg, "CLIP.WIDTH");
  o.layers = positive(cfg, "CLIP.LAYERS");
  o.heads = positive(cfg, "CLIP.HEADS");
  o.embedDim = positive(cfg, "CLIP.EMBED_DIM");
  if (o.width % o.heads != 0) {
    throw Error("CLIP.WIDTH (" + std::to_string(o.width) + ") must be a multiple of CLIP.HEADS (" +
                std::to_string(o.heads) + ")");
  }
  if (o.imageSize < o.patchSize) {
    throw Error("DATA.TEST_CROP_SIZE (" + std::to_string(o.imageSize) +
                ") must be >= CLIP.PATCH_SIZE (" + std::to_string(o.patchSize) + ")");
  }
  const auto act = cfg.get<std::string>("CLIP.ACT");
  if (act != "quick_gelu" && act != "gelu")
    throw Error("CLIP.ACT '" + act + "' is not supported (quick_gelu, gelu)");
  o.quickGelu = act == "quick_gelu";
  const auto feature = cfg.get<std::string>("CLIP.FEATURE");
  if (feature != "embedding" && feature != "token")
    throw Error("CLIP.FEATURE '" + feature + "' is not supported (embedding, token)");
  projected_ = feature == "embedding";
  positive(cfg, "DATA.NUM_FRAMES");

  visual = register_module("visual", ClipVisionTransformer(o));
  featureDim_ = projected_ ? o.embedDim : o.width;
  numClasses_ = 0;
  const int frames = cfg.get<int>("DATA.NUM_FRAMES");
  description_ = std::to_string(featureDim_) + "-d: CLIP ViT (patch " +
                 std::to_string(o.patchSize) + ", width " + std::to_string(o.width) + ", " +
                 std::to_string(o.layers) + " layers) " +
                 (projected_ ? "image embedding (ln_post of the class token times visual.proj, as "
                               "encode_image returns it)"
                             : "class token after ln_post, before visual.proj") +
                 (frames == 1 ? std::string(", of the window's one frame")
                              : ", the mean over the clip's " + std::to_string(frames) + " frames");
}

NetOutput ClipImpl::forwardFeatures(std::vector<torch::Tensor> pathways, bool withLogits) {
  if (pathways.size() != 1)
    throw Error("internal: CLIP takes one pathway, got " + std::to_string(pathways.size()));
  if (withLogits) throw Error("CLIP's image tower has no classifier: there are no head outputs");
  const auto& clip = pathways[0];  // [B, C, T, H, W]
  const int64_t B = clip.size(0), C = clip.size(1), T = clip.size(2);
  auto frames = clip.permute({0, 2, 1, 3, 4}).reshape({B * T, C, clip.size(3), clip.size(4)});
  auto token = visual->token(frames);  // [B*T, width]
  auto perFrame = projected_ ? gemm::matmul(token, visual->proj.to(token.dtype())) : token;
  NetOutput out;
  out.features = T == 1 ? perFrame : perFrame.view({B, T, -1}).mean(1);
  return out;
}

bool ClipImpl::ignoresCheckpointKey(const std::string& key) const {
  return key.compare(0, 7, "visual.") != 0;
}

}  // namespace vidfeat::model
