#pragma once
// The model stage as the rest of the pipeline sees it, free of LibTorch headers: clips (float
// C x T x H x W, as packClip writes them) in, feature rows out.
//
// Thread safety: one FeatureModel per thread (inference itself uses LibTorch's intra-op threads).
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "vidfeat/clip/preprocess.h"  // ClipNormalisation
#include "vidfeat/model/checkpoint.h"

namespace vidfeat {

class Config;

// Arithmetic of the forward pass. fp32 is the reference (PySlowFast's); fp16 and bf16 cast the
// weights (after BatchNorm folding) and the normalised input on the device, and return the
// features as float. The feature error each costs is measured in docs/MODELS.md.
enum class Precision { Fp32, Fp16, Bf16 };
// "fp32", "fp16", "bf16" -> Precision; Error naming the option otherwise.
Precision parsePrecision(const std::string& name);
const char* precisionName(Precision p);

struct ClipShape {
  int64_t channels = 3;
  int64_t frames = 0;
  int64_t height = 0;
  int64_t width = 0;
  int64_t numel() const { return channels * frames * height * width; }
};

class FeatureModel {
 public:
  // Builds the network the config describes on `device` ("cpu", "cuda", "cuda:1"). Its weights
  // are not set yet: call randomizeWeights() or loadCheckpoint(). Throws Error naming the config
  // key for unsupported values.
  static std::unique_ptr<FeatureModel> build(const Config& cfg, const std::string& device = "cpu",
                                             Precision precision = Precision::Fp32);
  virtual ~FeatureModel() = default;

  virtual std::string arch() const = 0;
  virtual int64_t featureDim() const = 0;
  // What a feature row is, computed from the built network's real widths, e.g. for SLOWFAST_8x8_R50
  // "2304-d: Slow res5 (2048) and Fast res5 (256) outputs, each average-pooled over T, H and W,
  // concatenated; the input of head.projection". Starts with featureDim() and "-d: ".
  virtual std::string featureDescription() const = 0;
  virtual int64_t numClasses() const = 0;
  virtual ClipShape inputShape() const = 0;
  virtual std::string device() const = 0;
  virtual Precision precision() const = 0;

  // Seeded random weights for every parameter and BatchNorm statistic (untrained!).
  virtual void randomizeWeights(uint64_t seed) = 0;
  // State-dict keys with their shapes, as PySlowFast names them.
  virtual std::vector<std::pair<std::string, std::vector<int64_t>>> stateShapes() const = 0;

  // Loads a checkpoint strictly (see src/model/checkpoint/state_dict.h): the format comes from the
  // file's bytes. `checkpointType` is TEST.CHECKPOINT_TYPE ("pytorch" or "caffe2"); when it
  // disagrees with the bytes a warning says so and the file is read as what it is (a mislabelled
  // file is common, a wrong load is impossible: names and shapes are checked strictly). Throws
  // InputError / Error.
  virtual CheckpointReport loadCheckpoint(const std::string& path,
                                          const std::string& checkpointType) = 0;

  // Runs the pathways stored in an .io.pt file (tools/fixtures/make_fixtures.py, pysf_ref.py) and
  // compares the features with the stored reference: one warm-up forward, then `repeats` timed
  // ones.
  struct VerifyResult {
    double relativeError = 0.0;       // ||ours - ref|| / ||ref||
    double forwardSeconds = 0.0;      // median of forwardRuns
    std::vector<double> forwardRuns;  // seconds of each timed forward
    int64_t batch = 0;
    int64_t featureDim = 0;
  };
  virtual VerifyResult verifyIo(const std::string& ioPath, int repeats = 1) = 0;

  // Runs `batch` clips (batch * inputShape().numel() floats) and writes batch * featureDim()
  // features, and batch * numClasses() head outputs when `logits` is not null.
  // On a CUDA device the clips go through a pinned host buffer (reused across calls) with a
  // non-blocking copy on the model's own stream, and the features come back once per batch.
  virtual void extract(const float* clips, int64_t batch, float* features,
                       float* logits = nullptr) = 0;

  // The same from uint8 clips (batch x 3 x T x H x W bytes, channel planes in output order, as
  // cropClip writes them): the bytes are uploaded (4x less than floats) and normalised on the
  // model's device with one multiply and one add per value, the arithmetic packClip does, so the
  // input is bit-identical to extract()'s from packClip. Worth it on a GPU (uploadsBytes()).
  virtual void extractBytes(const uint8_t* clips, int64_t batch, const ClipNormalisation& norm,
                            float* features, float* logits = nullptr) = 0;
  // Whether extractBytes() is the cheaper path for this model (its device is not the CPU).
  virtual bool uploadsBytes() const = 0;
};

}  // namespace vidfeat

namespace vidfeat {

// LibTorch intra-op threads for this process (0 leaves LibTorch's default).
void setComputeThreads(int threads);
// Whether a CUDA device is usable by LibTorch in this process.
bool cudaAvailable();
// The device a rank uses: "auto" is cuda:(localRank mod visible CUDA devices) when LibTorch sees
// any, else "cpu"; "cuda" likewise picks by local rank; anything else is taken as given.
std::string resolveDevice(const std::string& requested, int localRank = 0);

}  // namespace vidfeat
