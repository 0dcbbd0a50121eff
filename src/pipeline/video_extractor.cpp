#include "vidfeat/pipeline/video_extractor.h"

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>

#include <pthread.h>
#include <sched.h>

#include "vidfeat/clip/clip_assembler.h"
#include "vidfeat/clip/fps_resampler.h"
#include "vidfeat/common/error.h"
#include "vidfeat/common/log.h"
#include "vidfeat/decode/video_decoder.h"
#include "vidfeat/model/feature_model.h"
#include "vidfeat/pipeline/bounded_queue.h"

namespace vidfeat {

namespace {

using Clock = std::chrono::steady_clock;

double secondsSince(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// What the worker hands over: one preprocessed clip of a video, or the video's end (its status
// and decode figures; segments and features stay empty).
struct WorkerItem {
  int64_t ticket = -1;
  bool isClip = false;
  SegmentRecord segment;  // clip
  // clip: crops x C x T x H x W, as normalised floats (packClip), or as bytes (cropClip) when the
  // model normalises on its device (FeatureModel::uploadsBytes)
  std::vector<unsigned char> pixels;
  VideoResult end;        // end of the video
  // The video is decoded again from the start: what came of it so far (clips, features,
  // segments) is dropped (docs/DESIGN.md, "Determinism").
  bool restart = false;
};

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
    spdlog::debug("decode worker: SCHED_IDLE refused ({}); it keeps the normal priority", std::strerror(err));
  }
#endif
}

}  // namespace

struct VideoExtractor::Worker {
  struct Job {
    int64_t ticket;
    VideoEntry video;
  };

  Worker(const ExtractOptions& opt, size_t clipValues, bool bytes, std::vector<int> spatial, size_t queueClips,
         bool idlePriority)
      : opt(opt), clipValues(clipValues), bytes(bytes), spatial(std::move(spatial)), out(queueClips),
        idlePriority(idlePriority), thread([this] { loop(); }) {}

  ~Worker() {
    {
      std::lock_guard<std::mutex> lock(mutex);
      stopping = true;
    }
    wake.notify_all();
    out.close();
    thread.join();
  }

  void submit(int64_t ticket, const VideoEntry& video) {
    {
      std::lock_guard<std::mutex> lock(mutex);
      jobs.push_back({ticket, video});
    }
    wake.notify_one();
  }

  bool wantsWork() const {
    std::lock_guard<std::mutex> lock(mutex);
    return jobs.empty() && !midVideo;
  }

  // Nothing queued, nothing being decoded, nothing waiting in the queue: no clip will come until
  // the next submit.
  bool drained() const {
    std::lock_guard<std::mutex> lock(mutex);
    return jobs.empty() && !midVideo && out.size() == 0;
  }

  // Clip buffers go back to the worker once their floats are in a batch (no allocation per clip).
  void recycle(std::vector<unsigned char> buffer) {
    std::lock_guard<std::mutex> lock(poolMutex);
    if (pool.size() < out.capacity() + 2) pool.push_back(std::move(buffer));
  }

 private:
  std::vector<unsigned char> takeBuffer() {
    std::lock_guard<std::mutex> lock(poolMutex);
    if (pool.empty()) return std::vector<unsigned char>(clipBytes() * spatial.size());
    std::vector<unsigned char> b = std::move(pool.back());
    pool.pop_back();
    return b;
  }

  void emit(WorkerItem item) {
    if (!out.push(std::move(item))) throw WorkerStopped{};
  }

  void loop() {
    // FFmpeg's codec threads, created by this thread, inherit its policy.
    if (idlePriority) lowerToIdlePriority();
    for (;;) {
      Job job;
      {
        std::unique_lock<std::mutex> lock(mutex);
        wake.wait(lock, [&] { return stopping || !jobs.empty(); });
        if (stopping) return;
        job = std::move(jobs.front());
        jobs.pop_front();
        midVideo = true;
      }
      WorkerItem end;
      end.ticket = job.ticket;
      try {
        end.end = decode(job);
      } catch (const WorkerStopped&) {
        return;
      }
      {
        std::lock_guard<std::mutex> lock(mutex);
        midVideo = false;  // (drained() may see this before the end item: a batch runs early, no harm)
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
  // an error it logged) decoded by more than one codec thread is decoded again from the start with one thread, and
  // only that decode counts: FFmpeg's frame-threaded concealment depends on the thread count and
  // on timing. The clips already sent are withdrawn first (a restart item). A good stream is
  // decoded once.
  VideoResult decode(const Job& job) {
    try {
      return decodeOnce(job, opt.decodeThreads, true);
    } catch (const DecodeAgainSingleThreaded&) {
      WorkerItem restart;
      restart.ticket = job.ticket;
      restart.restart = true;
      emit(std::move(restart));
    }
    return decodeOnce(job, 1, false);
  }

  // `mayRestart`: a damaged stream decoded by several codec threads throws
  // DecodeAgainSingleThreaded (only then).
  VideoResult decodeOnce(const Job& job, int codecThreads, bool mayRestart) {
    const VideoEntry& video = job.video;
    VideoResult result;
    const char* stage = "open";
    // Outside the try: a failure handler still sees the decoder's figures.
    std::optional<VideoDecoder> decoder;
    bool threadedDecode = false;  // set once the decoder is open
    const DecodeStats* stats = nullptr;
    auto damaged = [&] {
      return stats != nullptr && (stats->decodeErrors > 0 || stats->framesCorrupt > 0 || stats->errorsLogged > 0);
    };
    try {
      DecodeOptions dopt;
      dopt.threads = codecThreads;
      dopt.device = opt.decodeDevice;
      dopt.timeoutSeconds = opt.timeoutSeconds;
      VideoDecoder& dec = decoder.emplace(video.path, dopt);
      stage = "decode";
      threadedDecode = mayRestart && dec.threaded();
      stats = &dec.stats();
      // Checked after every frame, before the frame is used, and at the end.
      auto checkDamage = [&] {
        if (!threadedDecode || !damaged()) return;
        spdlog::info("{}: damaged stream ({} broken packets/frames, {} concealed frames, {} decoder errors logged) "
                     "with {} codec threads; decoding it again single-threaded, so that its features do not "
                     "depend on the thread count",
                     video.path, stats->decodeErrors, stats->framesCorrupt, stats->errorsLogged, dec.codecThreads());
        throw DecodeAgainSingleThreaded{};
      };
      const StreamInfo& info = dec.info();
      auto [w, h] = shortSideScaledSize(info.displayWidth, info.displayHeight, opt.preprocess.shortSide);
      dec.setOutputSize(w, h);
      const size_t frameBytes = size_t(w) * size_t(h) * 3;
      auto convertCurrent = [&]() -> FramePixels {
        auto px = std::make_shared<std::vector<uint8_t>>(frameBytes);
        dec.convert(px->data());
        return px;
      };

      ClipAssembler assembler(opt.buckets, tailSeedFor(opt.tailSeed, video.videoId));
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
          for (size_t k = 0; k < spatial.size(); ++k) {
            PreprocessSpec crop = opt.preprocess;
            crop.spatialIndex = spatial[k];
            unsigned char* at = item.pixels.data() + k * clipBytes();
            if (bytes) {
              cropClip(frames, w, h, crop, at);
            } else {
              packClip(frames, w, h, crop, reinterpret_cast<float*>(at));
            }
          }
          emit(std::move(item));
        }
      };

      std::optional<FpsResampler> resampler;
      if (opt.targetFps > 0) resampler.emplace(opt.targetFps);
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
      double frameDuration = n > 1 ? (lastPts - firstPts) / double(n - 1)
                                   : (info.avgFps > 0 ? 1.0 / info.avgFps : 0.0);
      double sequenceStep = frameDuration;
      if (resampler) {
        for (const auto& slot : resampler->finish(frameDuration)) {
          assembler.push({slot.sourceIndex, slot.time},
                         assembler.needsPixels(assembler.nextPosition()) ? previous : nullptr);
        }
        drain(assembler.takeReady());
        sequenceStep = 1.0 / opt.targetFps;
      }
      drain(assembler.finish(sequenceStep, [&]() -> FramePixels {
        return resampler ? previous : convertCurrent();
      }));

      result.status = VideoStatus::Complete;
      result.decodedFrames = n;
      result.duration = lastPts - firstPts + frameDuration;
      result.fps = frameDuration > 0 ? 1.0 / frameDuration : info.avgFps;
      result.decodeErrors = dec.stats().decodeErrors;
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
        spdlog::info("{}: damaged stream failed with several codec threads ({}); decoding it again "
                     "single-threaded", video.path, e.what());
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

  const ExtractOptions opt;
  const size_t clipValues;  // per crop
  const bool bytes;
  const std::vector<int> spatial;

 public:
  size_t clipBytes() const { return clipValues * (bytes ? 1 : sizeof(float)); }
  BoundedQueue<WorkerItem> out;

 private:
  mutable std::mutex mutex;
  std::condition_variable wake;
  std::deque<Job> jobs;
  bool midVideo = false;
  bool stopping = false;
  std::mutex poolMutex;
  std::vector<std::vector<unsigned char>> pool;
  const bool idlePriority;
  std::thread thread;  // last: starts once everything above exists
};

VideoExtractor::VideoExtractor(FeatureModel& model, const ExtractOptions& options)
    : model_(model), opt_(options) {
  opt_.buckets.validate();
  if (opt_.targetFps < 0) throw Error("--fps must be positive");
  if (opt_.batch < 1) throw Error("--batch must be at least 1");
  if (opt_.crops != 1 && opt_.crops != 3) throw Error("--crops must be 1 or 3");
  const ClipShape shape = model.inputShape();
  if (shape.height != opt_.preprocess.cropSize || shape.width != opt_.preprocess.cropSize) {
    throw Error("internal: model input " + std::to_string(shape.height) + " but crop " +
                std::to_string(opt_.preprocess.cropSize));
  }
  // PySlowFast's three test crops are uniform_crop's left/top, centre, right/bottom.
  std::vector<int> spatial = opt_.crops == 3 ? std::vector<int>{0, 1, 2} : std::vector<int>{1};
  const size_t queueClips = opt_.queueClips > 0 ? size_t(opt_.queueClips) : size_t(2 * opt_.batch);
  bytes_ = opt_.normaliseOnDevice == ExtractOptions::Normalise::Auto
               ? model.uploadsBytes()
               : opt_.normaliseOnDevice == ExtractOptions::Normalise::Model;
  const bool idle = opt_.decodePriority == ExtractOptions::DecodePriority::Idle;
  worker_ = std::make_unique<Worker>(opt_, size_t(shape.numel()), bytes_, std::move(spatial), queueClips, idle);
  input_.resize(size_t(opt_.batch) * size_t(opt_.crops) * worker_->clipBytes());
}

VideoExtractor::~VideoExtractor() = default;

bool VideoExtractor::wantsWork() const { return worker_->wantsWork(); }

void VideoExtractor::submit(const VideoEntry& video, int64_t videoRow) {
  const int64_t ticket = nextTicket_++;
  Open& o = open_[ticket];
  o.videoId = video.videoId;
  o.result.videoRow = videoRow;
  worker_->submit(ticket, video);
}

void VideoExtractor::finishIfDone(int64_t ticket, std::vector<VideoResult>& finished) {
  auto it = open_.find(ticket);
  if (it == open_.end() || !it->second.decodeDone || it->second.inBatch > 0) return;
  VideoResult& r = it->second.result;
  if (r.status == VideoStatus::Failed) {
    r.segments.clear();
    r.features.clear();
    r.features.shrink_to_fit();
  }
  finished.push_back(std::move(r));
  open_.erase(it);
}

void VideoExtractor::runBatch(std::vector<VideoResult>& finished) {
  const int64_t n = int64_t(batchTickets_.size());
  if (n == 0) return;
  const int64_t dim = model_.featureDim();
  const int64_t rows = n * opt_.crops;  // rows [clip][crop] in the output
  std::vector<float> features(size_t(rows * dim));
  std::string error;
  const auto t0 = Clock::now();
  try {
    if (bytes_) {
      model_.extractBytes(input_.data(), rows, normalisationOf(opt_.preprocess), features.data());
    } else {
      model_.extract(reinterpret_cast<const float*>(input_.data()), rows, features.data());
    }
  } catch (const std::exception& e) {
    error = e.what();
  }
  timing_.modelSeconds += secondsSince(t0);
  clips_ += n;
  const size_t perClip = size_t(opt_.crops * dim);
  for (int64_t i = 0; i < n; ++i) {
    Open& o = open_.at(batchTickets_[size_t(i)]);
    --o.inBatch;
    if (o.result.status == VideoStatus::Failed) continue;
    if (!error.empty()) {
      spdlog::error("video {} failed: {}", o.videoId, error);
      o.result.status = VideoStatus::Failed;
      o.result.failureStage = "model";
      o.result.error = error;
      continue;
    }
    const float* src = features.data() + size_t(i) * perClip;
    o.result.features.insert(o.result.features.end(), src, src + perClip);
  }
  std::vector<int64_t> tickets = std::move(batchTickets_);
  batchTickets_.clear();
  for (int64_t t : tickets) finishIfDone(t, finished);
}

std::vector<VideoResult> VideoExtractor::step(std::chrono::milliseconds wait) {
  std::vector<VideoResult> finished;
  const auto t0 = Clock::now();
  const bool busy = !open_.empty();
  const auto deadline = t0 + wait;
  const size_t batch = size_t(opt_.batch);
  const size_t clipBytes = input_.size() / batch;  // all crops of one clip
  double starved = 0;
  for (;;) {
    if (batchTickets_.size() == batch) {
      // A video that ended since the last batch goes back first: its result is not held for the
      // length of another forward (the full batch waits for the next call).
      if (finished.empty()) runBatch(finished);
      break;
    }
    WorkerItem item;
    const auto waitFrom = Clock::now();
    if (!worker_->out.popUntil(item, deadline)) {
      starved += secondsSince(waitFrom);
      // No clip now: run a partial batch only when no more can come before the next submit.
      if (!batchTickets_.empty() && worker_->drained()) runBatch(finished);
      break;
    }
    starved += secondsSince(waitFrom);
    Open& o = open_.at(item.ticket);
    if (item.isClip) {
      if (o.result.status != VideoStatus::Failed) {
        std::memcpy(input_.data() + batchTickets_.size() * clipBytes, item.pixels.data(), clipBytes);
        batchTickets_.push_back(item.ticket);
        ++o.inBatch;
        o.result.segments.push_back(item.segment);
      }
      worker_->recycle(std::move(item.pixels));
    } else if (item.restart) {
      // Every clip the worker sent of this video before is either behind us (its features are in
      // the result) or in the batch being filled: both go.
      o.result.segments.clear();
      o.result.features.clear();
      size_t kept = 0;
      for (size_t i = 0; i < batchTickets_.size(); ++i) {
        if (batchTickets_[i] == item.ticket) continue;
        if (kept != i) std::memmove(input_.data() + kept * clipBytes, input_.data() + i * clipBytes, clipBytes);
        batchTickets_[kept++] = batchTickets_[i];
      }
      batchTickets_.resize(kept);
      o.inBatch = 0;
    } else {
      o.decodeDone = true;
      VideoResult& r = o.result;
      if (r.status != VideoStatus::Failed) {  // a model failure stays the reason
        r.status = item.end.status;
        r.error = item.end.error;
        r.failureStage = item.end.failureStage;
      }
      r.decodedFrames = item.end.decodedFrames;
      r.duration = item.end.duration;
      r.fps = item.end.fps;
      r.decodeErrors = item.end.decodeErrors;
      finishIfDone(item.ticket, finished);
    }
  }
  if (busy) {
    timing_.busySeconds += secondsSince(t0);
    timing_.starvedSeconds += starved;
  }
  return finished;
}

VideoResult VideoExtractor::run(const VideoEntry& video, int64_t videoRow,
                                const std::function<void()>& safePoint) {
  if (!idle()) throw Error("internal: VideoExtractor::run with videos in flight");
  submit(video, videoRow);
  for (;;) {
    std::vector<VideoResult> done = step(std::chrono::milliseconds(50));
    if (!done.empty()) return std::move(done.front());
    if (safePoint) safePoint();
  }
}

}  // namespace vidfeat
