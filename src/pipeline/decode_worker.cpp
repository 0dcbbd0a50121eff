#include "decode_worker.h"

#include <pthread.h>
#include <sched.h>

#include <cstring>
#include <memory>
#include <optional>
#include <utility>

#include "vidfeat/clip/bucket_plan.h"
#include "vidfeat/clip/clip_assembler.h"
#include "vidfeat/clip/fps_resampler.h"
#include "vidfeat/common/error.h"
#include "vidfeat/common/log.h"
#include "vidfeat/decode/video_decoder.h"

namespace vidfeat {

namespace {

// The worker was stopped while a video was in flight.
struct WorkerStopped {};

// A multi-threaded decode found the stream damaged: decode it again single-threaded. Not a
// std::exception, so a video's failure handler does not take it for one.
struct DecodeAgainSingleThreaded {};

// The calling thread runs only on otherwise idle cores (SCHED_IDLE; lowering needs no privilege).
void lowerToIdlePriority() {
#if defined(__linux__)
  sched_param none{};
  if (int err = pthread_setschedparam(pthread_self(), SCHED_IDLE, &none)) {
    spdlog::debug("decode worker: SCHED_IDLE refused ({}); it keeps the normal priority",
                  std::strerror(err));
  }
#endif
}

}  // namespace

DecodeWorker::DecodeWorker(const ExtractOptions& opt, size_t clipValues, bool bytes,
                           std::vector<int> spatial, size_t queueClips, bool idlePriority)
    : opt_(opt),
      clipValues_(clipValues),
      bytes_(bytes),
      spatial_(std::move(spatial)),
      out_(queueClips),
      idlePriority_(idlePriority),
      thread_([this] { loop(); }) {}

DecodeWorker::~DecodeWorker() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  out_.close();
  thread_.join();
}

void DecodeWorker::submit(int64_t ticket, const VideoEntry& video) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    jobs_.push_back({ticket, video});
  }
  wake_.notify_one();
}

bool DecodeWorker::wantsWork() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return jobs_.empty() && !midVideo_;
}

bool DecodeWorker::drained() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return jobs_.empty() && !midVideo_ && out_.size() == 0;
}

void DecodeWorker::recycle(std::vector<unsigned char> buffer) {
  std::lock_guard<std::mutex> lock(poolMutex_);
  if (pool_.size() < out_.capacity() + 2) pool_.push_back(std::move(buffer));
}

std::vector<unsigned char> DecodeWorker::takeBuffer() {
  std::lock_guard<std::mutex> lock(poolMutex_);
  if (pool_.empty()) return std::vector<unsigned char>(clipBytes() * spatial_.size());
  std::vector<unsigned char> b = std::move(pool_.back());
  pool_.pop_back();
  return b;
}

void DecodeWorker::emit(WorkerItem item) {
  if (!out_.push(std::move(item))) throw WorkerStopped{};
}

void DecodeWorker::loop() {
  // FFmpeg's codec threads, created by this thread, inherit its policy.
  if (idlePriority_) lowerToIdlePriority();
  for (;;) {
    Job job;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || !jobs_.empty(); });
      if (stopping_) return;
      job = std::move(jobs_.front());
      jobs_.pop_front();
      midVideo_ = true;
    }
    WorkerItem end;
    end.ticket = job.ticket;
    try {
      end.end = decode(job, end.framesConverted);
    } catch (const WorkerStopped&) {
      return;
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      midVideo_ =
          false;  // (drained() may see this before the end item: a batch runs early, no harm)
    }
    try {
      emit(std::move(end));
    } catch (const WorkerStopped&) {
      return;
    }
  }
}

// One video: decode -> clips -> crops, each clip emitted as soon as its frames are known.
// Returns the video's end record; a bad video becomes a Failed record, never an exception
// (WorkerStopped aside).
//
// Determinism (docs/DESIGN.md): the first decode uses the configured codec threads. A damaged
// stream (a packet or frame the decoder rejected, a picture it flagged as error-concealed, or
// an error it logged) decoded by more than one codec thread is decoded again from the start with
// one thread, and only that decode counts: FFmpeg's frame-threaded concealment depends on the
// thread count and on timing. The clips already sent are withdrawn first (a restart item). A
// good stream is decoded once.
VideoResult DecodeWorker::decode(const Job& job, int64_t& framesConverted) {
  try {
    return decodeOnce(job, opt_.decodeThreads, true, framesConverted);
  } catch (const DecodeAgainSingleThreaded&) {
    WorkerItem restart;
    restart.ticket = job.ticket;
    restart.restart = true;
    emit(std::move(restart));
  }
  return decodeOnce(job, 1, false, framesConverted);
}

// `mayRestart`: a damaged stream decoded by several codec threads throws
// DecodeAgainSingleThreaded (only then).
VideoResult DecodeWorker::decodeOnce(const Job& job, int codecThreads, bool mayRestart,
                                     int64_t& framesConverted) {
  const VideoEntry& video = job.video;
  VideoResult result;
  const char* stage = "open";
  // Outside the try: a failure handler still sees the decoder's figures.
  std::optional<VideoDecoder> decoder;
  bool threadedDecode = false;  // set once the decoder is open
  const DecodeStats* stats = nullptr;
  auto damaged = [&] {
    return stats != nullptr &&
           (stats->decodeErrors > 0 || stats->framesCorrupt > 0 || stats->errorsLogged > 0);
  };
  try {
    DecodeOptions dopt;
    dopt.threads = codecThreads;
    dopt.device = opt_.decodeDevice;
    dopt.timeoutSeconds = opt_.timeoutSeconds;
    VideoDecoder& dec = decoder.emplace(video.path, dopt);
    stage = "decode";
    threadedDecode = mayRestart && dec.threaded();
    stats = &dec.stats();
    // Checked after every frame, before the frame is used, and at the end.
    auto checkDamage = [&] {
      if (!threadedDecode || !damaged()) return;
      spdlog::info(
          "{}: damaged stream ({} broken packets/frames, {} concealed frames, {} decoder errors "
          "logged) "
          "with {} codec threads; decoding it again single-threaded, so that its features do not "
          "depend on the thread count",
          video.path, stats->decodeErrors, stats->framesCorrupt, stats->errorsLogged,
          dec.codecThreads());
      throw DecodeAgainSingleThreaded{};
    };
    const StreamInfo& info = dec.info();
    auto [w, h] = opt_.preprocess.scaledSize(info.displayWidth, info.displayHeight);
    dec.setOutputSize(w, h, opt_.preprocess.resize);
    const size_t frameBytes = size_t(w) * size_t(h) * 3;
    auto convertCurrent = [&]() -> FramePixels {
      auto px = std::make_shared<std::vector<uint8_t>>(frameBytes);
      dec.convert(px->data());
      return px;
    };

    // The sequence clips are cut from: the decoded frames, or a time grid (--fps, --clip-seconds).
    const ClipSequence sequence = clipSequence(opt_.buckets, opt_.targetFps);
    ClipAssembler assembler(sequence.buckets, tailSeedFor(opt_.tailSeed, video.videoId));
    auto drain = [&](const std::vector<AssembledClip>& clips) {
      for (const auto& c : clips) {
        WorkerItem item;
        item.ticket = job.ticket;
        item.isClip = true;
        item.segment = c.segment;
        item.pixels = takeBuffer();
        std::vector<const uint8_t*> frames;
        frames.reserve(c.frames.size());
        for (const auto& f : c.frames) frames.push_back(f->data());
        for (size_t k = 0; k < spatial_.size(); ++k) {
          PreprocessSpec crop = opt_.preprocess;
          crop.spatialIndex = spatial_[k];
          unsigned char* at = item.pixels.data() + k * clipBytes();
          if (bytes_) {
            cropClip(frames, w, h, crop, at);
          } else {
            packClip(frames, w, h, crop, reinterpret_cast<float*>(at));
          }
        }
        emit(std::move(item));
      }
    };

    std::optional<FpsResampler> resampler;
    if (sequence.fps > 0) {
      resampler.emplace(sequence.fps, sequence.phase,
                        sequence.byTime ? FpsResampler::Gaps::Fail : FpsResampler::Gaps::Break);
    }
    FramePixels previous;  // --fps: a frame's slots are known only when the next frame arrives

    DecodedFrame f;
    int64_t n = 0;
    double firstPts = 0, lastPts = 0;
    while (dec.next(f)) {
      checkDamage();
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
    }
    checkDamage();
    if (n == 0) throw InputError(video.path, "no frame could be decoded");

    // Duration of the last frame: the mean frame interval, or the stream's rate for one frame.
    double frameDuration =
        n > 1 ? (lastPts - firstPts) / double(n - 1) : (info.avgFps > 0 ? 1.0 / info.avgFps : 0.0);
    double sequenceStep = frameDuration;
    if (resampler) {
      for (const auto& slot : resampler->finish(frameDuration)) {
        assembler.push({slot.sourceIndex, slot.time},
                       assembler.needsPixels(assembler.nextPosition()) ? previous : nullptr);
      }
      drain(assembler.takeReady());
      sequenceStep = 1.0 / sequence.fps;
    }
    drain(assembler.finish(
        sequenceStep, [&]() -> FramePixels { return resampler ? previous : convertCurrent(); }));

    result.status = VideoStatus::Complete;
    result.decodedFrames = n;
    result.duration = lastPts - firstPts + frameDuration;
    result.fps = frameDuration > 0 ? 1.0 / frameDuration : info.avgFps;
    result.decodeErrors = dec.stats().decodeErrors;
    framesConverted = dec.stats().framesConverted;
    if (result.decodeErrors > 0) {
      spdlog::warn("{}: {} broken packets/frames skipped", video.path, result.decodeErrors);
    }
  } catch (const WorkerStopped&) {
    throw;
  } catch (const std::exception& e) {
    const bool timeout = dynamic_cast<const DecodeTimeout*>(&e) != nullptr;
    // A damaged stream that failed multi-threaded (e.g. too many errors in a row) may fail
    // differently, or not at all, single-threaded: that decode decides.
    if (threadedDecode && !timeout && damaged()) {
      spdlog::info(
          "{}: damaged stream failed with several codec threads ({}); decoding it again "
          "single-threaded",
          video.path, e.what());
      throw DecodeAgainSingleThreaded{};
    }
    if (timeout) stage = "timeout";
    spdlog::error("video {} failed: {}", video.videoId, e.what());
    VideoResult failed;
    failed.status = VideoStatus::Failed;
    failed.error = e.what();
    failed.failureStage = stage;
    failed.decodeErrors = stats != nullptr ? stats->decodeErrors : 0;
    return failed;
  }
  return result;
}

}  // namespace vidfeat
