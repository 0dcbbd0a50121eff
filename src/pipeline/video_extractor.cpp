#include "vidfeat/pipeline/video_extractor.h"

#include <chrono>
#include <optional>

#include "vidfeat/clip/clip_assembler.h"
#include "vidfeat/clip/fps_resampler.h"
#include "vidfeat/common/error.h"
#include "vidfeat/common/log.h"
#include "vidfeat/decode/video_decoder.h"
#include "vidfeat/model/feature_model.h"

namespace vidfeat {

namespace {

// Packs clips into a batch buffer and runs the model when it is full.
class Batcher {
 public:
  Batcher(FeatureModel& model, const PreprocessSpec& prep, int frameWidth, int frameHeight, int batch,
          int crops, VideoResult& result, const char*& stage)
      : model_(model), prep_(prep), w_(frameWidth), h_(frameHeight), batch_(std::max(1, batch)),
        result_(result), stage_(stage), clipSize_(model.inputShape().numel()) {
    // PySlowFast's three test crops are uniform_crop's left/top, centre, right/bottom.
    spatial_ = crops == 3 ? std::vector<int>{0, 1, 2} : std::vector<int>{1};
    const ClipShape shape = model.inputShape();
    if (shape.height != prep.cropSize || shape.width != prep.cropSize) {
      throw Error("internal: model input " + std::to_string(shape.height) + " but crop " +
                  std::to_string(prep.cropSize));
    }
    input_.resize(size_t(batch_) * spatial_.size() * clipSize_);
  }

  void add(const AssembledClip& clip) {
    std::vector<const uint8_t*> frames;
    for (const auto& f : clip.frames) frames.push_back(f->data());
    for (size_t k = 0; k < spatial_.size(); ++k) {
      PreprocessSpec crop = prep_;
      crop.spatialIndex = spatial_[k];
      packClip(frames, w_, h_, crop, input_.data() + (size_t(pending_) * spatial_.size() + k) * clipSize_);
    }
    result_.segments.push_back(clip.segment);
    if (++pending_ == batch_) flush();
  }

  void flush() {
    if (pending_ == 0) return;
    const int64_t dim = model_.featureDim();
    const int64_t n = pending_ * int64_t(spatial_.size());  // rows [segment][crop] in the output
    size_t at = result_.features.size();
    result_.features.resize(at + size_t(n * dim));
    stage_ = "model";  // an error from here on is the model's, not the video's
    model_.extract(input_.data(), n, result_.features.data() + at);
    stage_ = "decode";
    clips_ += pending_;
    pending_ = 0;
  }

  int64_t clips() const { return clips_; }

 private:
  FeatureModel& model_;
  const PreprocessSpec& prep_;
  int w_, h_, batch_;
  VideoResult& result_;
  const char*& stage_;
  size_t clipSize_;
  std::vector<int> spatial_;
  std::vector<float> input_;
  int pending_ = 0;
  int64_t clips_ = 0;
};

}  // namespace

VideoExtractor::VideoExtractor(FeatureModel& model, const ExtractOptions& options)
    : model_(model), opt_(options) {
  opt_.buckets.validate();
  if (opt_.targetFps < 0) throw Error("--fps must be positive");
}

VideoResult VideoExtractor::run(const VideoEntry& video, int64_t videoRow,
                                const std::function<void()>& safePoint) {
  const auto started = std::chrono::steady_clock::now();
  struct BusyClock {
    double& total;
    std::chrono::steady_clock::time_point t0;
    ~BusyClock() { total += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); }
  } busy{busy_, started};
  VideoResult result;
  result.videoRow = videoRow;
  const char* stage = "open";
  try {
    DecodeOptions dopt;
    dopt.threads = opt_.decodeThreads;
    dopt.timeoutSeconds = opt_.timeoutSeconds;
    VideoDecoder dec(video.path, dopt);
    stage = "decode";
    const StreamInfo& info = dec.info();
    auto [w, h] = shortSideScaledSize(info.displayWidth, info.displayHeight, opt_.preprocess.shortSide);
    dec.setOutputSize(w, h);
    const size_t frameBytes = size_t(w) * size_t(h) * 3;
    auto convertCurrent = [&]() -> FramePixels {
      auto px = std::make_shared<std::vector<uint8_t>>(frameBytes);
      dec.convert(px->data());
      return px;
    };

    ClipAssembler assembler(opt_.buckets, tailSeedFor(opt_.tailSeed, video.videoId));
    Batcher batcher(model_, opt_.preprocess, w, h, opt_.batch, opt_.crops, result, stage);
    auto drain = [&](std::vector<AssembledClip> clips) {
      for (const auto& c : clips) batcher.add(c);
    };

    std::optional<FpsResampler> resampler;
    if (opt_.targetFps > 0) resampler.emplace(opt_.targetFps);
    FramePixels previous;  // --fps: a frame's slots are known only when the next frame arrives

    DecodedFrame f;
    int64_t n = 0;
    double firstPts = 0, lastPts = 0;
    while (dec.next(f)) {
      if (n == 0) firstPts = f.pts;
      lastPts = f.pts;
      ++n;
      if (resampler) {
        for (const auto& slot : resampler->push(f.index, f.pts)) {
          assembler.push({slot.sourceIndex, slot.time},
                         assembler.needsPixels(assembler.nextPosition()) ? previous : nullptr);
        }
        // Which slots this frame gets is known only later, so it is converted now.
        previous = convertCurrent();
      } else {
        const bool need = assembler.needsPixels(assembler.nextPosition());
        assembler.push({f.index, f.pts}, need ? convertCurrent() : nullptr);
      }
      drain(assembler.takeReady());
      if (safePoint) safePoint();
    }
    if (n == 0) throw InputError(video.path, "no frame could be decoded");

    // Duration of the last frame: the mean frame interval, or the stream's rate for one frame.
    double frameDuration = n > 1 ? (lastPts - firstPts) / double(n - 1)
                                 : (info.avgFps > 0 ? 1.0 / info.avgFps : 0.0);
    double sequenceStep = frameDuration;
    if (resampler) {
      for (const auto& slot : resampler->finish(frameDuration)) {
        assembler.push({slot.sourceIndex, slot.time},
                       assembler.needsPixels(assembler.nextPosition()) ? previous : nullptr);
      }
      drain(assembler.takeReady());
      sequenceStep = 1.0 / opt_.targetFps;
    }
    drain(assembler.finish(sequenceStep, [&]() -> FramePixels {
      return resampler ? previous : convertCurrent();
    }));
    batcher.flush();
    clips_ += batcher.clips();

    result.status = VideoStatus::Complete;
    result.decodedFrames = n;
    result.duration = lastPts - firstPts + frameDuration;
    result.fps = frameDuration > 0 ? 1.0 / frameDuration : info.avgFps;
    result.decodeErrors = dec.stats().decodeErrors;
    if (result.decodeErrors > 0) {
      spdlog::warn("{}: {} broken packets/frames skipped", video.path, result.decodeErrors);
    }
  } catch (const std::exception& e) {
    if (dynamic_cast<const DecodeTimeout*>(&e)) stage = "timeout";
    spdlog::error("video {} failed: {}", video.videoId, e.what());
    VideoResult failed;
    failed.videoRow = videoRow;
    failed.status = VideoStatus::Failed;
    failed.error = e.what();
    failed.failureStage = stage;
    failed.decodeErrors = result.decodeErrors;
    return failed;
  }
  return result;
}

}  // namespace vidfeat
