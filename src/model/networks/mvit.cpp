#include "networks/mvit.h"

#include <algorithm>
#include <optional>

#include "vidfeat/common/error.h"
#include "vidfeat/config/config.h"

namespace vidfeat::model {

namespace nn = torch::nn;

namespace {

std::vector<int64_t> toInt64(const std::vector<int>& v) { return {v.begin(), v.end()}; }

std::vector<int64_t> threeSizes(const Config& cfg, const std::string& key) {
  auto v = toInt64(cfg.get<std::vector<int>>(key));
  if (v.size() != 3)
    throw Error(key + " must give 3 sizes (T, H, W); MVIT.PATCH_2D is not supported");
  return v;
}

// A list that PySlowFast allows to be None (null in YAML).
std::optional<std::vector<int64_t>> optionalList(const Config& cfg, const std::string& key) {
  try {
    const auto s = cfg.get<std::string>(key);
    if (s.empty() || s == "None") return std::nullopt;
  } catch (const Error&) {
    // not a scalar: the list itself
  }
  return toInt64(cfg.get<std::vector<int>>(key));
}

// [[index, value], ...] into a per-block table of ones (depth + 1 entries), float32 as PySlowFast's
// torch.ones table.
std::vector<float> multiplierTable(const Config& cfg, const std::string& key, int64_t depth) {
  std::vector<float> table(size_t(depth + 1), 1.0f);
  for (const auto& e : cfg.get<std::vector<std::vector<double>>>(key)) {
    if (e.size() != 2 || e[0] < 0 || int64_t(e[0]) > depth) {
      throw Error(key + ": each entry must be [block index in 0.." + std::to_string(depth) +
                  ", multiplier]");
    }
    table[size_t(e[0])] = float(e[1]);
  }
  return table;
}

struct PoolingPlan {
  std::vector<std::vector<int64_t>> kernelQ, kernelKv, strideQ,
      strideKv;  // per block, empty = none
};

// PySlowFast's pool_q / pool_kv / stride_q / stride_kv tables, POOL_KV_STRIDE_ADAPTIVE included.
PoolingPlan poolingPlan(const Config& cfg, int64_t depth) {
  PoolingPlan p;
  p.kernelQ.resize(size_t(depth));
  p.kernelKv.resize(size_t(depth));
  p.strideQ.resize(size_t(depth));
  p.strideKv.resize(size_t(depth));
  const auto kvqKernel = optionalList(cfg, "MVIT.POOL_KVQ_KERNEL");
  auto kernelFor = [&](const std::vector<int64_t>& stride) {
    if (kvqKernel) return *kvqKernel;
    std::vector<int64_t> k;
    for (auto s : stride) k.push_back(s > 1 ? s + 1 : s);
    return k;
  };
  auto entries = [&](const std::string& key) {
    std::vector<std::pair<size_t, std::vector<int64_t>>> out;
    for (const auto& e : cfg.get<std::vector<std::vector<int>>>(key)) {
      if (e.size() != 4 || e[0] < 0 || e[0] >= depth) {
        throw Error(key + ": each entry must be [block index below MVIT.DEPTH, sT, sH, sW]");
      }
      out.push_back({size_t(e[0]), {e[1], e[2], e[3]}});
    }
    return out;
  };
  for (auto& [i, s] : entries("MVIT.POOL_Q_STRIDE")) {
    p.strideQ[i] = s;
    p.kernelQ[i] = kernelFor(s);
  }
  std::vector<std::pair<size_t, std::vector<int64_t>>> kv;
  if (auto adaptive = optionalList(cfg, "MVIT.POOL_KV_STRIDE_ADAPTIVE")) {
    // The K/V stride shrinks with every query pooling so that K/V keep the same grid.
    std::vector<int64_t> s = *adaptive;
    if (s.size() != 3) throw Error("MVIT.POOL_KV_STRIDE_ADAPTIVE must give 3 strides");
    for (int64_t i = 0; i < depth; ++i) {
      const auto& q = p.strideQ[size_t(i)];
      if (!q.empty()) {
        for (size_t d = 0; d < 3; ++d) s[d] = std::max<int64_t>(s[d] / q[d], 1);
      }
      kv.push_back({size_t(i), s});
    }
  } else {
    kv = entries("MVIT.POOL_KV_STRIDE");
  }
  for (auto& [i, s] : kv) {
    p.strideKv[i] = s;
    p.kernelKv[i] = kernelFor(s);
  }
  return p;
}

}  // namespace

PatchEmbedImpl::PatchEmbedImpl(int64_t dimIn, int64_t dimOut, const std::vector<int64_t>& kernel,
                               const std::vector<int64_t>& stride,
                               const std::vector<int64_t>& padding) {
  proj = register_module("proj",
                         nn::Conv3d(nn::Conv3dOptions(dimIn, dimOut, torch::IntArrayRef(kernel))
                                        .stride(stride)
                                        .padding(padding)));
}

std::pair<torch::Tensor, Thw> PatchEmbedImpl::forward(const torch::Tensor& x) {
  auto y = proj(x);
  Thw grid{y.size(2), y.size(3), y.size(4)};
  return {y.flatten(2).transpose(1, 2), grid};
}

TransformerBasicHeadImpl::TransformerBasicHeadImpl(int64_t dimIn, int64_t numClasses,
                                                   const std::string& act_)
    : act(act_) {
  if (act != "softmax" && act != "sigmoid" && act != "none") {
    throw Error("MODEL.HEAD_ACT '" + act + "' is not supported (softmax, sigmoid, none)");
  }
  projection = register_module("projection", nn::Linear(dimIn, numClasses));
}

torch::Tensor TransformerBasicHeadImpl::forward(const torch::Tensor& x) {
  auto y = projection(x);
  if (act == "softmax") return torch::softmax(y, 1);
  if (act == "sigmoid") return torch::sigmoid(y);
  return y;
}

MViTImpl::MViTImpl(const Config& cfg) {
  if (cfg.get<bool>("DETECTION.ENABLE"))
    throw Error("DETECTION.ENABLE: vidfeat extracts clip features only");
  if (cfg.get<int>("CONTRASTIVE.NUM_MLP_LAYERS") != 1) {
    throw Error("CONTRASTIVE.NUM_MLP_LAYERS other than 1 (an MLP head) is not supported");
  }
  if (cfg.get<std::string>("MVIT.NORM") != "layernorm") {
    throw Error("MVIT.NORM '" + cfg.get<std::string>("MVIT.NORM") +
                "': PySlowFast's MViT supports layernorm only");
  }
  if (cfg.get<bool>("MVIT.POOL_FIRST"))
    throw Error("MVIT.POOL_FIRST True is not supported by vidfeat");
  if (cfg.get<bool>("MVIT.PATCH_2D")) throw Error("MVIT.PATCH_2D True is not supported by vidfeat");
  const int64_t trainCrop = cfg.get<int>("DATA.TRAIN_CROP_SIZE");
  const int64_t testCrop = cfg.get<int>("DATA.TEST_CROP_SIZE");
  if (trainCrop != testCrop) {
    // PySlowFast's MViT asserts this: its positional embeddings and relative position tables are
    // sized for the train crop and its forward accepts no other grid.
    throw Error("DATA.TEST_CROP_SIZE (" + std::to_string(testCrop) +
                ") must equal DATA.TRAIN_CROP_SIZE (" + std::to_string(trainCrop) +
                ") for MViT, as PySlowFast asserts");
  }
  const bool rev = cfg.get<bool>("MVIT.REV.ENABLE");
  clsEmbed_ = cfg.get<bool>("MVIT.CLS_EMBED_ON");
  if (rev && clsEmbed_) {
    throw Error(
        "MVIT.CLS_EMBED_ON True with MVIT.REV.ENABLE True: PySlowFast's reversible MViT has no cls "
        "token (its own REV_MVIT_B_16x4_CONV.yaml sets both and fails to build); set "
        "MVIT.CLS_EMBED_ON False");
  }
  const auto channels = cfg.get<std::vector<int>>("DATA.INPUT_CHANNEL_NUM");
  if (channels.size() != 1) throw Error("DATA.INPUT_CHANNEL_NUM must list one pathway for MViT");

  const auto kernel = threeSizes(cfg, "MVIT.PATCH_KERNEL");
  const auto stride = threeSizes(cfg, "MVIT.PATCH_STRIDE");
  const auto padding = threeSizes(cfg, "MVIT.PATCH_PADDING");
  const int64_t frames = cfg.get<int>("DATA.NUM_FRAMES");
  patchDims_ = {frames / stride[0], trainCrop / stride[1], trainCrop / stride[2]};
  const int64_t numPatches = patchDims_[0] * patchDims_[1] * patchDims_[2];

  int64_t embedDim = cfg.get<int>("MVIT.EMBED_DIM");
  int64_t numHeads = cfg.get<int>("MVIT.NUM_HEADS");
  const double mlpRatio = cfg.get<double>("MVIT.MLP_RATIO");
  const int64_t depth = cfg.get<int>("MVIT.DEPTH");
  meanPooling_ = cfg.get<bool>("MVIT.USE_MEAN_POOLING");
  const bool absPos = cfg.get<bool>("MVIT.USE_ABS_POS");
  const bool sepPos = cfg.get<bool>("MVIT.SEP_POS_EMBED");
  fixedSincos_ = cfg.get<bool>("MVIT.USE_FIXED_SINCOS_POS");
  if (fixedSincos_ && (!absPos || sepPos)) {
    // PySlowFast then reads a pos_embed it never made.
    throw Error(
        "MVIT.USE_FIXED_SINCOS_POS needs MVIT.USE_ABS_POS True and MVIT.SEP_POS_EMBED False");
  }
  // MVIT.LAYER_SCALE_INIT_VALUE is read by PySlowFast's MViT but never passed to its blocks: no
  // gamma parameters whatever its value.

  patch_embed =
      register_module("patch_embed", PatchEmbed(channels[0], embedDim, kernel, stride, padding));
  if (clsEmbed_) cls_token = register_parameter("cls_token", torch::zeros({1, 1, embedDim}));
  if (absPos) {
    if (sepPos) {
      pos_embed_spatial = register_parameter(
          "pos_embed_spatial", torch::zeros({1, patchDims_[1] * patchDims_[2], embedDim}));
      pos_embed_temporal =
          register_parameter("pos_embed_temporal", torch::zeros({1, patchDims_[0], embedDim}));
      if (clsEmbed_)
        pos_embed_class = register_parameter("pos_embed_class", torch::zeros({1, 1, embedDim}));
    } else {
      pos_embed = register_parameter("pos_embed",
                                     torch::zeros({1, numPatches + (clsEmbed_ ? 1 : 0), embedDim}),
                                     /*requires_grad=*/!fixedSincos_);
    }
  }
  if (cfg.get<bool>("MVIT.NORM_STEM"))
    norm_stem = register_module("norm_stem", mvitLayerNorm(embedDim));

  const auto dimMul = multiplierTable(cfg, "MVIT.DIM_MUL", depth);
  const auto headMul = multiplierTable(cfg, "MVIT.HEAD_MUL", depth);
  const auto plan = poolingPlan(cfg, depth);

  AttentionOptions base;
  base.qkvBias = cfg.get<bool>("MVIT.QKV_BIAS");
  base.mode = cfg.get<std::string>("MVIT.MODE");
  base.hasCls = clsEmbed_;
  base.relPosSpatial = cfg.get<bool>("MVIT.REL_POS_SPATIAL");
  base.relPosTemporal = cfg.get<bool>("MVIT.REL_POS_TEMPORAL");
  base.residualPooling = cfg.get<bool>("MVIT.RESIDUAL_POOLING");
  base.separateQkv = cfg.get<bool>("MVIT.SEPARATE_QKV");
  auto attnAt = [&](size_t i, int64_t dim, int64_t dimOut, int64_t heads, const Thw& inputSize) {
    AttentionOptions a = base;
    a.dim = dim;
    a.dimOut = dimOut;
    a.numHeads = heads;
    a.inputSize = inputSize;
    a.kernelQ = plan.kernelQ[i];
    a.kernelKv = plan.kernelKv[i];
    a.strideQ = plan.strideQ[i];
    a.strideKv = plan.strideKv[i];
    return a;
  };
  auto pooled = [&](Thw size, size_t i) {
    if (!plan.strideQ[i].empty()) {
      for (size_t d = 0; d < 3; ++d) size[d] /= plan.strideQ[i][d];
    }
    return size;
  };

  Thw inputSize = patchDims_;
  int64_t headDimIn = 0;
  if (rev) {
    if (cfg.get<std::string>("MVIT.REV.RES_PATH") != "conv") {
      // PySlowFast's "max" path reads F.attn.thw, which its attention never sets.
      throw Error("MVIT.REV.RES_PATH '" + cfg.get<std::string>("MVIT.REV.RES_PATH") +
                  "' is not supported (conv)");
    }
    const auto preQ = cfg.get<std::string>("MVIT.REV.PRE_Q_FUSION");
    const auto buffers = cfg.get<std::vector<int>>("MVIT.REV.BUFFER_LAYERS");
    std::vector<ReversibleMViTImpl::LayerSpec> specs;
    int64_t dim = embedDim, heads = numHeads, dimOut = embedDim;
    for (int64_t i = 0; i < depth; ++i) {
      const size_t u = size_t(i);
      heads = roundWidthF32(heads, headMul[u]);
      // The width steps up inside the block before the stage transition (ReversibleMViT).
      dim = roundWidthF32(dim, i > 0 ? dimMul[u - 1] : 1.0f, 1, heads);
      dimOut = roundWidthF32(dim, dimMul[u], 1, roundWidthF32(heads, headMul[u + 1]));
      ReversibleMViTImpl::LayerSpec s;
      s.transition = std::find(buffers.begin(), buffers.end(), int(i)) != buffers.end();
      const bool concat = s.transition && preQ.find("concat") != std::string::npos;
      s.attn = attnAt(u, concat ? 2 * dim : dim, dimOut, heads, inputSize);
      s.thw = inputSize;
      specs.push_back(s);
      inputSize = pooled(inputSize, u);
    }
    rev_backbone = register_module("rev_backbone", ReversibleMViT(specs, mlpRatio, preQ));
    float mulAll = 1.0f;
    for (float m : dimMul) mulAll *= m;
    embedDim = roundWidthF32(embedDim, mulAll, 1, numHeads);
    const auto fuseMode = cfg.get<std::string>("MVIT.REV.RESPATH_FUSE");
    fuse =
        register_module("fuse", TwoStreamFusion(fuseMode, 2 * embedDim, "MVIT.REV.RESPATH_FUSE"));
    headDimIn = fuseMode.find("concat") != std::string::npos ? 2 * embedDim : embedDim;
    norm = register_module("norm", mvitLayerNorm(headDimIn));
  } else {
    auto list = register_module("blocks", nn::ModuleList());
    const bool inAtt = cfg.get<bool>("MVIT.DIM_MUL_IN_ATT");
    for (int64_t i = 0; i < depth; ++i) {
      const size_t u = size_t(i);
      numHeads = roundWidthF32(numHeads, headMul[u]);
      const int64_t dimOut =
          inAtt
              ? roundWidthF32(embedDim, dimMul[u], 1, roundWidthF32(numHeads, headMul[u]))
              : roundWidthF32(embedDim, dimMul[u + 1], 1, roundWidthF32(numHeads, headMul[u + 1]));
      MViTBlockOptions b;
      b.attn = attnAt(u, embedDim, dimOut, numHeads, inputSize);
      b.mlpRatio = mlpRatio;
      b.dimMulInAtt = inAtt;
      blocks.emplace_back(b);
      list->push_back(blocks.back());
      inputSize = pooled(inputSize, u);
      embedDim = dimOut;
    }
    headDimIn = embedDim;
    norm = register_module("norm", mvitLayerNorm(embedDim));
  }
  numClasses_ = cfg.get<int>("MODEL.NUM_CLASSES");
  head = register_module(
      "head", TransformerBasicHead(headDimIn, numClasses_, cfg.get<std::string>("MODEL.HEAD_ACT")));
  featureDim_ = headDimIn;
  const std::string dim = std::to_string(featureDim_) + "-d: ";
  if (rev) {
    const std::string streams = "the two reversible streams (" + std::to_string(embedDim) + " + " +
                                std::to_string(embedDim) + ") fused (MVIT.REV.RESPATH_FUSE " +
                                cfg.get<std::string>("MVIT.REV.RESPATH_FUSE") + ")";
    description_ =
        dim + (meanPooling_ ? streams + ", the mean over tokens, then the final norm"
                            : "after the final norm, " + streams + ", the mean over tokens");
  } else if (meanPooling_) {
    description_ =
        dim + (clsEmbed_
                   ? "the mean over the patch tokens (cls token left out), then the final norm"
                   : "the mean over tokens, then the final norm");
  } else {
    description_ = dim + (clsEmbed_ ? "the cls token after the final norm"
                                    : "the mean over tokens after the final norm");
  }
  description_ += "; the input of head.projection";
}

NetOutput MViTImpl::forwardFeatures(std::vector<torch::Tensor> pathways, bool withLogits) {
  if (pathways.size() != 1) throw Error("MViT: expected one pathway");
  auto [x, grid] = patch_embed(pathways[0]);
  pathways.clear();
  if (grid != patchDims_) {
    throw Error("MViT: the clip gives a " + std::to_string(grid[0]) + "x" +
                std::to_string(grid[1]) + "x" + std::to_string(grid[2]) +
                " token grid, the config (DATA.NUM_FRAMES, DATA.TRAIN_CROP_SIZE, "
                "MVIT.PATCH_*) " +
                std::to_string(patchDims_[0]) + "x" + std::to_string(patchDims_[1]) + "x" +
                std::to_string(patchDims_[2]) + "; PySlowFast's MViT asserts they are equal");
  }
  const int64_t B = x.size(0);
  const int64_t s = clsEmbed_ ? 1 : 0;
  if (fixedSincos_) x += pos_embed.slice(1, s);
  if (clsEmbed_) {
    auto cls = cls_token.expand({B, -1, -1});
    if (fixedSincos_) cls = cls + pos_embed.slice(1, 0, s);
    x = torch::cat({cls, x}, 1);
  }
  // The grid equals the one the embeddings were made for (checked above), so PySlowFast's
  // _get_pos_embed adds them unchanged.
  if (pos_embed_spatial.defined()) {
    auto pos = pos_embed_spatial.repeat({1, patchDims_[0], 1}) +
               torch::repeat_interleave(pos_embed_temporal, patchDims_[1] * patchDims_[2], 1);
    if (clsEmbed_) pos = torch::cat({pos_embed_class, pos}, 1);
    x += pos;
  } else if (pos_embed.defined()) {
    x += pos_embed;
  }
  if (norm_stem) x = norm_stem(x);

  NetOutput out;
  if (rev_backbone) {
    x = rev_backbone(std::move(x));
    if (meanPooling_) {
      out.features = norm(fuse(x).mean(1));
    } else {
      out.features = fuse(norm(x)).mean(1);
    }
  } else {
    Thw thw = grid;
    for (auto& blk : blocks) std::tie(x, thw) = blk->forward(std::move(x), thw);
    if (meanPooling_) {
      out.features = norm((clsEmbed_ ? x.slice(1, 1) : x).mean(1));
    } else if (clsEmbed_) {
      // LayerNorm is per token: normalising the cls token alone gives PySlowFast's norm(x)[:, 0].
      out.features = norm(x.select(1, 0));
    } else {
      out.features = norm(x).mean(1);
    }
  }
  if (withLogits) out.logits = head(out.features);
  return out;
}

}  // namespace vidfeat::model
