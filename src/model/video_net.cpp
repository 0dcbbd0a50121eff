#include "vidfeat/model/video_net.h"

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>

#include "vidfeat/common/error.h"
#include "vidfeat/config/config.h"
#include "vidfeat/model/resnet.h"
#include "vidfeat/model/slowfast.h"
#include "vidfeat/model/x3d.h"
#include "vidfeat/model/tsm.h"
#include "vidfeat/model/mvit.h"

namespace vidfeat::model {

std::shared_ptr<VideoNet> buildVideoNet(const Config& cfg) {
  const auto name = cfg.get<std::string>("MODEL.MODEL_NAME");
  if (name == "ResNet") return std::make_shared<ResNetImpl>(cfg);
  if (name == "ResNet_nopool") return std::make_shared<ResNetImpl>(cfg, /*nopool=*/true);
  if (name == "SlowFast") return std::make_shared<SlowFastImpl>(cfg);
  if (name == "X3D") return std::make_shared<X3DImpl>(cfg);
  if (name == "TSN") return std::make_shared<TsnImpl>(cfg);  // TSN and TSM (MODEL.ARCH tsn / tsm)
  if (name == "MViT") return std::make_shared<MViTImpl>(cfg);
  throw Error("MODEL.MODEL_NAME '" + name +
              "' is not supported yet (supported: ResNet, ResNet_nopool, SlowFast, X3D, MViT)");
}

std::vector<torch::Tensor> packPathways(const Config& cfg, const torch::Tensor& clip) {
  const auto arch = cfg.get<std::string>("MODEL.ARCH");
  const auto multi = cfg.get<std::vector<std::string>>("MODEL.MULTI_PATHWAY_ARCH");
  if (std::find(multi.begin(), multi.end(), arch) == multi.end()) return {clip};
  const int64_t alpha = cfg.get<int>("SLOWFAST.ALPHA");
  const int64_t T = clip.size(2);
  // torch.linspace(0, T-1, T // alpha).long(): float32 linspace, truncated.
  auto idx = torch::linspace(0, double(T - 1), T / alpha, torch::kFloat32).to(torch::kLong).to(clip.device());
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
      return name.size() >= suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
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
