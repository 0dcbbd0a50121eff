#include "vidfeat/model/feature_model.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <mutex>
#include <optional>
#include <sstream>

#include "checkpoint/state_dict.h"
#include "kernels/cpu_allocator.h"
#include "networks/video_net.h"
#include "vidfeat/build_config.h"
#include "vidfeat/common/error.h"
#include "vidfeat/common/log.h"
#include "vidfeat/config/config.h"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

// A LibTorch built with CUDA (VIDFEAT_WITH_CUDA is 1 in vidfeat/build_config.h; PyPI's wheel,
// tools/ci/cuda_build.sh) gives each model its own CUDA stream. Debian's LibTorch has no CUDA:
// there the CUDA device is refused in build() and these paths are never needed.
#if VIDFEAT_WITH_CUDA
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace vidfeat {

namespace {

torch::ScalarType scalarType(Precision p) {
  switch (p) {
    case Precision::Fp16:
      return torch::kHalf;
    case Precision::Bf16:
      return torch::kBFloat16;
    case Precision::Fp32:
      break;
  }
  return torch::kFloat32;
}

// Host memory of at least `bytes`, kept across calls: page-locked when it feeds a CUDA device
// (so copies to and from it can be asynchronous), ordinary otherwise.
class HostBuffer {
 public:
  void* get(size_t bytes, bool pinned) {
    if (!buffer_.defined() || size_t(buffer_.numel()) < bytes) {
      buffer_ = torch::empty({int64_t(bytes)},
                             torch::TensorOptions().dtype(torch::kUInt8).pinned_memory(pinned));
    }
    return buffer_.data_ptr();
  }
  torch::Tensor view(size_t bytes, bool pinned, at::IntArrayRef sizes, torch::ScalarType type) {
    return torch::from_blob(get(bytes, pinned), sizes, torch::TensorOptions().dtype(type));
  }

 private:
  torch::Tensor buffer_;
};

class TorchFeatureModel : public FeatureModel {
 public:
  TorchFeatureModel(const Config& cfg, const std::string& device, Precision precision)
      : cfg_(cfg), device_(device), precision_(precision), net_(model::buildVideoNet(cfg)) {
    shape_.frames = cfg.get<int>("DATA.NUM_FRAMES");
    shape_.height = shape_.width = cfg.get<int>("DATA.TEST_CROP_SIZE");
#if VIDFEAT_WITH_CUDA
    if (device_.is_cuda())
      stream_.emplace(c10::cuda::getStreamFromPool(/*isHighPriority=*/false, device_.index()));
#endif
    placeWeights();
    net_->eval();
  }

  std::string arch() const override { return cfg_.get<std::string>("MODEL.ARCH"); }
  int64_t featureDim() const override { return net_->featureDim(); }
  std::string featureDescription() const override { return net_->featureDescription(); }
  int64_t numClasses() const override { return net_->numClasses(); }
  ClipShape inputShape() const override { return shape_; }
  std::string device() const override { return device_.str(); }
  Precision precision() const override { return precision_; }
  bool uploadsBytes() const override { return !device_.is_cpu(); }

  void randomizeWeights(uint64_t seed) override {
    net_->to(torch::kCPU,
             torch::kFloat32);  // the generator is a CPU one; same numbers on any device
    model::randomizeParameters(*net_, seed);
    placeWeights();
  }

  std::vector<std::pair<std::string, std::vector<int64_t>>> stateShapes() const override {
    std::vector<std::pair<std::string, std::vector<int64_t>>> out;
    for (const auto& p : net_->named_parameters())
      out.push_back({p.key(), p.value().sizes().vec()});
    for (const auto& b : net_->named_buffers()) out.push_back({b.key(), b.value().sizes().vec()});
    return out;
  }

  CheckpointReport loadCheckpoint(const std::string& path,
                                  const std::string& checkpointType) override {
    if (checkpointType != "pytorch" && checkpointType != "caffe2") {
      throw Error("TEST.CHECKPOINT_TYPE '" + checkpointType +
                  "' is not one vidfeat reads (pytorch or caffe2)");
    }
    CheckpointReport report;
    report.sha256 = sha256File(path);
    model::StateDict dict = model::readStateDict(path, &report.format);
    const bool isCaffe2 = report.format == CheckpointFormat::Caffe2Pickle;
    if (isCaffe2 != (checkpointType == "caffe2")) {
      spdlog::warn(
          "{}: TEST.CHECKPOINT_TYPE is {} but the file is a {}; reading it as what its bytes say",
          path, checkpointType, checkpointFormatName(report.format));
    }
    net_->to(torch::kCPU, torch::kFloat32);
    if (isCaffe2) model::conformCaffe2(dict, *net_, &report.notes);
    dropIgnoredKeys(dict, report.notes);
    model::ApplyResult applied;
    try {
      applied = model::applyStateDict(*net_, dict);
    } catch (const InputError&) {
      throw;
    } catch (const Error& e) {
      throw InputError(path, e.what());
    }
    placeWeights();
    report.tensorsLoaded = applied.loaded;
    report.absentHeadKeys = applied.absentHeadKeys;
    if (!report.absentHeadKeys.empty()) {
      spdlog::warn(
          "{}: no classifier weights ({} ...): features are fine, head outputs (--logits) are not",
          path, report.absentHeadKeys.front());
    }
    return report;
  }

  // The keys the network does not take (CLIP's text tower), out of `dict`, with one note.
  void dropIgnoredKeys(model::StateDict& dict, std::vector<std::string>& notes) const {
    const auto dropped = model::dropIgnoredKeys(*net_, dict);
    if (dropped.empty()) return;
    notes.push_back("left out " + std::to_string(dropped.size()) +
                    " tensors this model does not use (" + dropped.front() +
                    (dropped.size() > 1 ? ", ..." : "") + ")");
  }

  VerifyResult verifyIo(const std::string& ioPath, int repeats) override {
    c10::InferenceMode guard;
    model::IoFile io = model::readIoFile(ioPath);
    std::vector<torch::Tensor> pathways;
    for (auto& t : io.inputs) pathways.push_back(t.to(device_, computeType()));
    net_->forwardFeatures(pathways, false);  // warm-up (first-call allocations, cuDNN choices)
    VerifyResult r;
    torch::Tensor ours;
    for (int i = 0; i < std::max(1, repeats); ++i) {
      const auto t0 = std::chrono::steady_clock::now();
      auto out = net_->forwardFeatures(pathways, false);
      ours = out.features.to(torch::kCPU, torch::kFloat64);  // waits for the device
      r.forwardRuns.push_back(
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
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
    r.relativeError =
        (ours - ref).norm().item<double>() / std::max(ref.norm().item<double>(), 1e-30);
    r.batch = ref.size(0);
    r.featureDim = ref.size(-1);
    return r;
  }

  void extract(const float* clips, int64_t batch, float* features, float* logits) override {
    c10::InferenceMode guard;
    const std::vector<int64_t> sizes{batch, shape_.channels, shape_.frames, shape_.height,
                                     shape_.width};
    if (device_.is_cpu()) {
      // The caller's buffer as it is: no copy.
      auto input = torch::from_blob(const_cast<float*>(clips), sizes, torch::kFloat32);
      run(input, batch, features, logits);
      return;
    }
    StreamScope scope(*this);
    const size_t bytes = sizeof(float) * size_t(batch * shape_.numel());
    auto staged = input_.view(bytes, true, sizes, torch::kFloat32);
    std::memcpy(staged.data_ptr(), clips, bytes);
    run(staged.to(device_, /*non_blocking=*/true), batch, features, logits);
  }

  void extractBytes(const uint8_t* clips, int64_t batch, const ClipNormalisation& norm,
                    float* features, float* logits) override {
    c10::InferenceMode guard;
    StreamScope scope(*this);
    const std::vector<int64_t> sizes{batch, shape_.channels, shape_.frames, shape_.height,
                                     shape_.width};
    const size_t bytes = size_t(batch * shape_.numel());
    torch::Tensor input;
    if (device_.is_cpu()) {
      input = torch::from_blob(const_cast<uint8_t*>(clips), sizes, torch::kUInt8);
    } else {
      input = input_.view(bytes, true, sizes, torch::kUInt8);
      std::memcpy(input.data_ptr(), clips, bytes);
      input = input.to(device_, /*non_blocking=*/true);
    }
    // Two elementwise ops, each rounded to float, as packClip's float(v) * scale + shift (no fused
    // multiply-add on either side): the same floats on any device.
    auto scale =
        torch::from_blob(const_cast<float*>(norm.scale.data()), {1, 3, 1, 1, 1}, torch::kFloat32)
            .to(device_);
    auto shift =
        torch::from_blob(const_cast<float*>(norm.shift.data()), {1, 3, 1, 1, 1}, torch::kFloat32)
            .to(device_);
    run(input.to(torch::kFloat32).mul_(scale).add_(shift), batch, features, logits);
  }

 private:
  torch::ScalarType computeType() const { return scalarType(precision_); }

  // Moves the weights (as set, in float on the CPU) to the device in the compute precision, then
  // folds BatchNorm into the convs from them.
  void placeWeights() {
    net_->to(device_, computeType());
    model::foldBatchNorms(*net_);  // BatchNorm into the convs, from the weights just set
  }

  // While alive, LibTorch work on a CUDA device goes to this model's stream; on leaving, the
  // stream is synchronised (the pinned buffers may be reused and the host results read).
  class StreamScope {
   public:
    explicit StreamScope(TorchFeatureModel& m) : model_(m) {
#if VIDFEAT_WITH_CUDA
      if (m.stream_) guard_.emplace(*m.stream_);
#endif
    }
    ~StreamScope() {
#if VIDFEAT_WITH_CUDA
      if (model_.stream_) model_.stream_->synchronize();
#endif
    }
    StreamScope(const StreamScope&) = delete;
    StreamScope& operator=(const StreamScope&) = delete;

   private:
    TorchFeatureModel& model_;
#if VIDFEAT_WITH_CUDA
    std::optional<c10::cuda::CUDAStreamGuard> guard_;
#endif
  };

  // The forward pass of a normalised float batch on the device; the results come back once per
  // batch (through pinned buffers and non-blocking copies on a CUDA device).
  void run(const torch::Tensor& input, int64_t batch, float* features, float* logits) {
    auto out = net_->forwardFeatures(model::packPathways(cfg_, input.to(computeType())),
                                     logits != nullptr);
    const int64_t nf = batch * featureDim(), nl = logits ? batch * numClasses() : 0;
    checkCount(out.features, nf);
    if (logits) checkCount(out.logits, nl);
    if (device_.is_cpu()) {
      copyOut(out.features.to(torch::kFloat32).contiguous(), features);
      if (logits) copyOut(out.logits.to(torch::kFloat32).contiguous(), logits);
      return;
    }
    const size_t fb = sizeof(float) * size_t(nf), lb = sizeof(float) * size_t(nl);
    auto host = output_.view(fb + lb, true, {nf + nl}, torch::kFloat32);
    host.narrow(0, 0, nf).copy_(out.features.reshape({nf}), /*non_blocking=*/true);
    if (logits) host.narrow(0, nf, nl).copy_(out.logits.reshape({nl}), /*non_blocking=*/true);
#if VIDFEAT_WITH_CUDA
    if (stream_) stream_->synchronize();
#endif
    std::memcpy(features, host.data_ptr<float>(), fb);
    if (logits) std::memcpy(logits, host.data_ptr<float>() + nf, lb);
  }

  static void checkCount(const torch::Tensor& t, int64_t expected) {
    if (t.numel() != expected) {
      throw Error("internal: model produced " + std::to_string(t.numel()) + " values, expected " +
                  std::to_string(expected));
    }
  }
  static void copyOut(const torch::Tensor& host, float* dst) {
    std::memcpy(dst, host.data_ptr<float>(), sizeof(float) * size_t(host.numel()));
  }

  Config cfg_;
  torch::Device device_;
  Precision precision_;
  std::shared_ptr<model::VideoNet> net_;
  ClipShape shape_;
  HostBuffer input_, output_;  // staging for a CUDA device, reused across calls
#if VIDFEAT_WITH_CUDA
  std::optional<c10::cuda::CUDAStream> stream_;
#endif
};

}  // namespace

Precision parsePrecision(const std::string& name) {
  if (name == "fp32") return Precision::Fp32;
  if (name == "fp16") return Precision::Fp16;
  if (name == "bf16") return Precision::Bf16;
  throw Error("--precision must be fp32, fp16 or bf16, got '" + name + "'");
}

const char* precisionName(Precision p) {
  switch (p) {
    case Precision::Fp16:
      return "fp16";
    case Precision::Bf16:
      return "bf16";
    case Precision::Fp32:
      break;
  }
  return "fp32";
}

namespace {

// Every forward allocates the same activations again. glibc serves blocks over its dynamic mmap
// threshold with fresh mmap()s and gives freed heap tops back to the system, so each forward
// page-faulted its activations in anew (zeroed pages, cgroup charges: 17 % of X3D-M's profile).
// Keep blocks up to glibc's largest threshold (32 MiB) on the heap and freed memory in the process:
// the heap then holds one forward's peak, reused clip after clip (measured: X3D-M 0.47 -> 0.40 s,
// SLOWFAST 16x8 R101 3.0 -> 2.6 s per clip). Process-wide, once.
void keepActivationMemory() {
#if defined(__GLIBC__)
  static std::once_flag once;
  std::call_once(once, [] {
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
  });
#endif
}

}  // namespace

std::unique_ptr<FeatureModel> FeatureModel::build(const Config& cfg, const std::string& device,
                                                  Precision precision) {
  keepActivationMemory();
  model::installCachingCpuAllocator();
  torch::Device dev(torch::kCPU);
  try {
    dev = torch::Device(device);
  } catch (const c10::Error& e) {
    throw Error("--device '" + device + "' is not a device LibTorch knows");
  }
  if (dev.is_cuda() && !torch::cuda::is_available()) {
    throw Error("--device " + device + ": no CUDA device is available (LibTorch built " +
                std::string(torch::cuda::is_available() ? "with" : "without or with no visible") +
                " CUDA)");
  }
  if (precision == Precision::Fp16 && !dev.is_cuda()) {
    // LibTorch 1.13's CPU kernels have no Half conv3d ("compute_columns3d") or layer norm.
    throw Error(
        "--precision fp16 needs a CUDA device (LibTorch's CPU kernels have no fp16 convolution); "
        "on the CPU use bf16");
  }
  return std::make_unique<TorchFeatureModel>(cfg, dev.str(), precision);
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
