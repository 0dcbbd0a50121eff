#include "vidfeat/model/feature_model.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <sstream>

#include "vidfeat/common/error.h"
#include "vidfeat/common/log.h"
#include "vidfeat/config/config.h"
#include "vidfeat/model/state_dict.h"
#include "vidfeat/model/video_net.h"

namespace vidfeat {

namespace {

class TorchFeatureModel : public FeatureModel {
 public:
  TorchFeatureModel(const Config& cfg, const std::string& device)
      : cfg_(cfg), device_(device), net_(model::buildVideoNet(cfg)) {
    shape_.frames = cfg.get<int>("DATA.NUM_FRAMES");
    shape_.height = shape_.width = cfg.get<int>("DATA.TEST_CROP_SIZE");
    net_->to(device_);
    net_->eval();
  }

  std::string arch() const override { return cfg_.get<std::string>("MODEL.ARCH"); }
  int64_t featureDim() const override { return net_->featureDim(); }
  int64_t numClasses() const override { return net_->numClasses(); }
  ClipShape inputShape() const override { return shape_; }
  std::string device() const override { return device_.str(); }

  void randomizeWeights(uint64_t seed) override {
    net_->to(torch::kCPU);  // the generator is a CPU one; same numbers on any device
    model::randomizeParameters(*net_, seed);
    net_->to(device_);
    model::foldBatchNorms(*net_);  // BatchNorm into the convs, from the weights just set
  }

  std::vector<std::pair<std::string, std::vector<int64_t>>> stateShapes() const override {
    std::vector<std::pair<std::string, std::vector<int64_t>>> out;
    for (const auto& p : net_->named_parameters()) out.push_back({p.key(), p.value().sizes().vec()});
    for (const auto& b : net_->named_buffers()) out.push_back({b.key(), b.value().sizes().vec()});
    return out;
  }

  CheckpointReport loadCheckpoint(const std::string& path, const std::string& checkpointType) override {
    if (checkpointType != "pytorch" && checkpointType != "caffe2") {
      throw Error("TEST.CHECKPOINT_TYPE '" + checkpointType + "' is not one vidfeat reads (pytorch or caffe2)");
    }
    CheckpointReport report;
    report.sha256 = sha256File(path);
    model::StateDict dict = model::readStateDict(path, &report.format);
    const bool isCaffe2 = report.format == CheckpointFormat::Caffe2Pickle;
    if (isCaffe2 != (checkpointType == "caffe2")) {
      spdlog::warn("{}: TEST.CHECKPOINT_TYPE is {} but the file is a {}; reading it as what its bytes say", path,
                   checkpointType, checkpointFormatName(report.format));
    }
    net_->to(torch::kCPU);
    if (isCaffe2) model::conformCaffe2(dict, *net_, &report.notes);
    model::ApplyResult applied;
    try {
      applied = model::applyStateDict(*net_, dict);
    } catch (const InputError&) {
      throw;
    } catch (const Error& e) {
      throw InputError(path, e.what());
    }
    net_->to(device_);
    model::foldBatchNorms(*net_);  // BatchNorm into the convs, from the weights just set
    report.tensorsLoaded = applied.loaded;
    report.absentHeadKeys = applied.absentHeadKeys;
    if (!report.absentHeadKeys.empty()) {
      spdlog::warn("{}: no classifier weights ({} ...): features are fine, head outputs (--logits) are not", path,
                   report.absentHeadKeys.front());
    }
    return report;
  }

  VerifyResult verifyIo(const std::string& ioPath, int repeats) override {
    c10::InferenceMode guard;
    model::IoFile io = model::readIoFile(ioPath);
    std::vector<torch::Tensor> pathways;
    for (auto& t : io.inputs) pathways.push_back(t.to(device_, torch::kFloat32));
    net_->forwardFeatures(pathways, false);  // warm-up (first-call allocations, cuDNN choices)
    VerifyResult r;
    torch::Tensor ours;
    for (int i = 0; i < std::max(1, repeats); ++i) {
      const auto t0 = std::chrono::steady_clock::now();
      auto out = net_->forwardFeatures(pathways, false);
      ours = out.features.to(torch::kCPU, torch::kFloat64);
      r.forwardRuns.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    std::vector<double> sorted = r.forwardRuns;
    std::sort(sorted.begin(), sorted.end());
    r.forwardSeconds = sorted[sorted.size() / 2];
    auto ref = io.feature.to(torch::kFloat64);
    if (ours.sizes() != ref.sizes()) {
      std::ostringstream o;
      o << "feature shape " << ours.sizes() << " differs from the reference's " << ref.sizes();
      throw InputError(ioPath, o.str());
    }
    r.relativeError = (ours - ref).norm().item<double>() / std::max(ref.norm().item<double>(), 1e-30);
    r.batch = ref.size(0);
    r.featureDim = ref.size(-1);
    return r;
  }

  void extract(const float* clips, int64_t batch, float* features, float* logits) override {
    c10::InferenceMode guard;
    auto input = torch::from_blob(const_cast<float*>(clips),
                                  {batch, shape_.channels, shape_.frames, shape_.height, shape_.width},
                                  torch::kFloat32)
                     .to(device_);
    auto out = net_->forwardFeatures(model::packPathways(cfg_, input), logits != nullptr);
    copyOut(out.features, batch * featureDim(), features);
    if (logits) copyOut(out.logits, batch * numClasses(), logits);
  }

 private:
  static void copyOut(const torch::Tensor& t, int64_t expected, float* dst) {
    auto host = t.to(torch::kCPU, torch::kFloat32).contiguous();
    if (host.numel() != expected) {
      throw Error("internal: model produced " + std::to_string(host.numel()) + " values, expected " +
                  std::to_string(expected));
    }
    std::memcpy(dst, host.data_ptr<float>(), sizeof(float) * size_t(expected));
  }

  Config cfg_;
  torch::Device device_;
  std::shared_ptr<model::VideoNet> net_;
  ClipShape shape_;
};

}  // namespace

std::unique_ptr<FeatureModel> FeatureModel::build(const Config& cfg, const std::string& device) {
  torch::Device dev(torch::kCPU);
  try {
    dev = torch::Device(device);
  } catch (const c10::Error& e) {
    throw Error("--device '" + device + "' is not a device LibTorch knows");
  }
  if (dev.is_cuda() && !torch::cuda::is_available()) {
    throw Error("--device " + device + ": no CUDA device is available (LibTorch built " +
                std::string(torch::cuda::is_available() ? "with" : "without or with no visible") + " CUDA)");
  }
  return std::make_unique<TorchFeatureModel>(cfg, dev.str());
}

}  // namespace vidfeat

namespace vidfeat {

void setComputeThreads(int threads) {
  if (threads > 0) torch::set_num_threads(threads);
}

bool cudaAvailable() { return torch::cuda::is_available(); }

std::string resolveDevice(const std::string& requested, int localRank) {
  if (requested != "auto" && requested != "cuda") return requested;
  const int64_t devices = cudaAvailable() ? int64_t(torch::cuda::device_count()) : 0;
  if (devices == 0) return requested == "auto" ? "cpu" : "cuda";  // "cuda" then fails clearly
  return "cuda:" + std::to_string(localRank % devices);
}

}  // namespace vidfeat
