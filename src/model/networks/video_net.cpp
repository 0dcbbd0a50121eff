#include "networks/video_net.h"

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <cmath>

#include "networks/clip_vit.h"
#include "networks/mvit.h"
#include "networks/resnet.h"
#include "networks/slowfast.h"
#include "networks/tsm.h"
#include "networks/x3d.h"
#include "vidfeat/common/error.h"
#include "vidfeat/config/config.h"

namespace vidfeat::model {

namespace {

// MODEL.MODEL_NAME -> builder. The error for an unknown name lists this table, so it cannot
// forget a family.
struct NetBuilder {
  const char* name;
  std::shared_ptr<VideoNet> (*build)(const Config&);
};
const NetBuilder kNetBuilders[] = {
    {"ResNet",
     [](const Config& c) -> std::shared_ptr<VideoNet> { return std::make_shared<ResNetImpl>(c); }},
    {"ResNet_nopool",
     [](const Config& c) -> std::shared_ptr<VideoNet> {
       return std::make_shared<ResNetImpl>(c, /*nopool=*/true);
     }},
    {"SlowFast",
     [](const Config& c) -> std::shared_ptr<VideoNet> {
       return std::make_shared<SlowFastImpl>(c);
     }},
    {"X3D",
     [](const Config& c) -> std::shared_ptr<VideoNet> { return std::make_shared<X3DImpl>(c); }},
    // TSN and TSM (MODEL.ARCH tsn / tsm).
    {"TSN",
     [](const Config& c) -> std::shared_ptr<VideoNet> { return std::make_shared<TsnImpl>(c); }},
    {"MViT",
     [](const Config& c) -> std::shared_ptr<VideoNet> { return std::make_shared<MViTImpl>(c); }},
    // CLIP's image tower (MODEL.ARCH clip; vidfeat's own configs/CLIP/).
    {"CLIP",
     [](const Config& c) -> std::shared_ptr<VideoNet> { return std::make_shared<ClipImpl>(c); }},
};

}  // namespace

std::vector<std::string> supportedModelNames() {
  std::vector<std::string> names;
  for (const auto& b : kNetBuilders) names.emplace_back(b.name);
  return names;
}

std::shared_ptr<VideoNet> buildVideoNet(const Config& cfg) {
  const auto name = cfg.get<std::string>("MODEL.MODEL_NAME");
  std::string known;
  for (const auto& b : kNetBuilders) {
    if (name == b.name) return b.build(cfg);
    known += (known.empty() ? "" : ", ") + std::string(b.name);
  }
  throw Error("MODEL.MODEL_NAME '" + name + "' is not supported (supported: " + known + ")");
}

std::vector<std::string> dropIgnoredKeys(const VideoNet& net,
                                         std::vector<std::pair<std::string, torch::Tensor>>& dict) {
  std::vector<std::string> dropped;
  auto kept = std::remove_if(dict.begin(), dict.end(), [&](const auto& entry) {
    if (!net.ignoresCheckpointKey(entry.first)) return false;
    dropped.push_back(entry.first);
    return true;
  });
  dict.erase(kept, dict.end());
  return dropped;
}

std::vector<torch::Tensor> packPathways(const Config& cfg, const torch::Tensor& clip) {
  const auto arch = cfg.get<std::string>("MODEL.ARCH");
  const auto multi = cfg.get<std::vector<std::string>>("MODEL.MULTI_PATHWAY_ARCH");
  if (std::find(multi.begin(), multi.end(), arch) == multi.end()) return {clip};
  const int64_t alpha = cfg.get<int>("SLOWFAST.ALPHA");
  const int64_t T = clip.size(2);
  // torch.linspace(0, T-1, T // alpha).long(): float32 linspace, truncated.
  auto idx = torch::linspace(0, double(T - 1), T / alpha, torch::kFloat32)
                 .to(torch::kLong)
                 .to(clip.device());
  return {torch::index_select(clip, 2, idx), clip};
}

void randomizeParameters(torch::nn::Module& module, uint64_t seed) {
  torch::NoGradGuard noGrad;
  auto gen = at::detail::createCPUGenerator(seed);
  auto fill = [&](torch::Tensor t, const std::string& name) {
    if (!t.is_floating_point()) return;  // num_batches_tracked
    auto opts = torch::TensorOptions().dtype(torch::kFloat32);
    torch::Tensor v;
    auto endsWith = [&](const char* s) {
      std::string suffix(s);
      return name.size() >= suffix.size() &&
             name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
    };
    if (endsWith("running_var")) {
      v = torch::rand(t.sizes(), gen, opts) + 0.5;
    } else if (endsWith("running_mean") || endsWith("bias")) {
      v = torch::randn(t.sizes(), gen, opts) * 0.1;
    } else if (t.dim() <= 1) {  // norm weights
      v = torch::randn(t.sizes(), gen, opts) * 0.1 + 1.0;
    } else {  // conv / linear weights, He-normal over the fan-in
      double fanIn = double(t.numel()) / double(t.size(0));
      v = torch::randn(t.sizes(), gen, opts) * std::sqrt(2.0 / fanIn);
    }
    t.copy_(v);
  };
  for (auto& p : module.named_parameters(/*recurse=*/true)) fill(p.value(), p.key());
  for (auto& b : module.named_buffers(/*recurse=*/true)) fill(b.value(), b.key());
}

}  // namespace vidfeat::model
