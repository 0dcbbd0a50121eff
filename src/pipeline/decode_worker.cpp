#include "decode_worker.h"

#include <pthread.h>
#include <sched.h>

#include <cstring>
#include <deque>
#include <memory>
#include <optional>
#include <tuple>
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

DecodeWorker::DecodeWorker(const ExtractOptions& opt, std::vector<size_t> clipValues, bool bytes,
                           std::vector<int> spatial, size_t queueClips, bool idlePriority)
    : opt_(opt),
      clipValues_(std::move(clipValues)),
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

size_t DecodeWorker::itemBytes() const {
  size_t total = 0;
  for (size_t i = 0; i < clipValues_.size(); ++i) total += cropBytes(i) * spatial_.size();
  return total;
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
  if (pool_.empty()) return std::vector<unsigned char>(itemBytes());
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
    // One stream per model (the first is the decoder's own output size): its frame size and
    // filter, its clip sequence and assembler, its --fps / clips-by-time resampler, and its clips
    // waiting for the other streams' clips of the same window.
    struct Stream {
      const BucketSpec* buckets;
      const PreprocessSpec* preprocess;
      int w = 0, h = 0;
      ClipSequence sequence;
      std::optional<ClipAssembler> assembler;
      std::optional<FpsResampler> resampler;
      FramePixels previous;  // a frame's slots are known only when the next frame arrives
      std::deque<AssembledClip> ready;
    };
    std::vector<Stream> streams(1 + opt_.moreStreams.size());
    for (size_t i = 0; i < streams.size(); ++i) {
      Stream& st = streams[i];
      st.buckets = i == 0 ? &opt_.buckets : &opt_.moreStreams[i - 1].buckets;
      st.preprocess = i == 0 ? &opt_.preprocess : &opt_.moreStreams[i - 1].preprocess;
      std::tie(st.w, st.h) = st.preprocess->scaledSize(info.displayWidth, info.displayHeight);
      // The sequence clips are cut from: the decoded frames, or a time grid (--fps,
      // --clip-seconds).
      st.sequence = clipSequence(*st.buckets, opt_.targetFps);
      st.assembler.emplace(st.sequence.buckets, tailSeedFor(opt_.tailSeed, video.videoId));
      if (st.sequence.fps > 0) {
        st.resampler.emplace(
            st.sequence.fps, st.sequence.phase,
            st.sequence.byTime ? FpsResampler::Gaps::Fail : FpsResampler::Gaps::Break);
      }
    }
    dec.setOutputSize(streams[0].w, streams[0].h, opt_.preprocess.resize);
    auto convertCurrent = [&](size_t i) -> FramePixels {
      const Stream& st = streams[i];
      auto px = std::make_shared<std::vector<uint8_t>>(size_t(st.w) * size_t(st.h) * 3);
      if (i == 0) {
        dec.convert(px->data());
      } else {
        dec.convertTo(px->data(), st.w, st.h, st.preprocess->resize);
      }
      return px;
    };
    // Clips on a time grid learn which frames they take one frame late (a frame is on screen
    // until the next one's time). On the CPU the decoder keeps the frame before the current one,
    // so only the frames a slot takes are converted; NVDEC's frames are surfaces of a bounded
    // pool, so there every frame is converted as it comes (the same pixels either way).
    bool anyGrid = false;
    for (const Stream& st : streams) anyGrid |= st.resampler.has_value();
    const bool lateConvert = anyGrid && opt_.decodeDevice == "cpu";
    if (lateConvert) dec.setKeepPrevious(true);
    auto convertPrevious = [&](size_t i) -> FramePixels {
      const Stream& st = streams[i];
      auto px = std::make_shared<std::vector<uint8_t>>(size_t(st.w) * size_t(st.h) * 3);
      dec.convertPreviousTo(px->data(), st.w, st.h, st.preprocess->resize);
      return px;
    };

    // A window goes out once every stream has its clip: the first stream's segment, each
    // stream's crops one after the other in the item's pixels.
    auto drain = [&]() {
      for (;;) {
        for (const Stream& st : streams)
          if (st.ready.empty()) return;
        WorkerItem item;
        item.ticket = job.ticket;
        item.isClip = true;
        item.segment = streams[0].ready.front().segment;
        item.pixels = takeBuffer();
        size_t offset = 0;
        for (size_t i = 0; i < streams.size(); ++i) {
          Stream& st = streams[i];
          const AssembledClip& c = st.ready.front();
          std::vector<const uint8_t*> frames;
          frames.reserve(c.frames.size());
          for (const auto& f : c.frames) frames.push_back(f->data());
          for (size_t k = 0; k < spatial_.size(); ++k) {
            PreprocessSpec crop = *st.preprocess;
            crop.spatialIndex = spatial_[k];
            unsigned char* at = item.pixels.data() + offset;
            if (bytes_) {
              cropClip(frames, st.w, st.h, crop, at);
            } else {
              packClip(frames, st.w, st.h, crop, reinterpret_cast<float*>(at));
            }
            offset += cropBytes(i);
          }
          st.ready.pop_front();
        }
        emit(std::move(item));
      }
    };
    auto collect = [&](Stream& st, std::vector<AssembledClip> clips) {
      for (auto& c : clips) st.ready.push_back(std::move(c));
    };

    DecodedFrame f;
    int64_t n = 0;
    double firstPts = 0, lastPts = 0;
    while (dec.next(f)) {
      checkDamage();
      if (n == 0) firstPts = f.pts;
      lastPts = f.pts;
      ++n;
      for (size_t i = 0; i < streams.size(); ++i) {
        Stream& st = streams[i];
        ClipAssembler& assembler = *st.assembler;
        if (st.resampler && lateConvert) {
          // The slots of the frame before this one: converted once, if a clip takes it.
          FramePixels taken;
          for (const auto& slot : st.resampler->push(f.index, f.pts)) {
            const bool need = assembler.needsPixels(assembler.nextPosition());
            if (need && !taken) taken = convertPrevious(i);
            assembler.push({slot.sourceIndex, slot.time}, need ? taken : nullptr);
          }
        } else if (st.resampler) {
          for (const auto& slot : st.resampler->push(f.index, f.pts)) {
            assembler.push({slot.sourceIndex, slot.time},
                           assembler.needsPixels(assembler.nextPosition()) ? st.previous : nullptr);
          }
          // Which slots this frame gets is known only later, so it is converted now.
          st.previous = convertCurrent(i);
        } else {
          const bool need = assembler.needsPixels(assembler.nextPosition());
          assembler.push({f.index, f.pts}, need ? convertCurrent(i) : nullptr);
        }
        collect(st, assembler.takeReady());
      }
      drain();
    }
    checkDamage();
    if (n == 0) throw InputError(video.path, "no frame could be decoded");

    // Duration of the last frame: the mean frame interval, or the stream's rate for one frame.
    double frameDuration =
        n > 1 ? (lastPts - firstPts) / double(n - 1) : (info.avgFps > 0 ? 1.0 / info.avgFps : 0.0);
    for (size_t i = 0; i < streams.size(); ++i) {
      Stream& st = streams[i];
      ClipAssembler& assembler = *st.assembler;
      double sequenceStep = frameDuration;
      if (st.resampler) {
        // The last frame's slots: the decoder's current frame (converted once, when taken).
        FramePixels last = lateConvert ? nullptr : st.previous;
        for (const auto& slot : st.resampler->finish(frameDuration)) {
          const bool need = assembler.needsPixels(assembler.nextPosition());
          if (need && !last) last = convertCurrent(i);
          assembler.push({slot.sourceIndex, slot.time}, need ? last : nullptr);
        }
        if (lateConvert) st.previous = last;  // the tail policy's last frame, if one was taken
        collect(st, assembler.takeReady());
        sequenceStep = 1.0 / st.sequence.fps;
      }
      collect(st, assembler.finish(sequenceStep, [&]() -> FramePixels {
        if (!st.resampler) return convertCurrent(i);
        if (!st.previous) st.previous = convertCurrent(i);  // late conversion: not taken yet
        return st.previous;
      }));
    }
    drain();
    // Windows only some models have (the last, partial one, whose samples one model still has
    // and another has not) are not kept: a row holds every model's feature.
    for (size_t i = 1; i < streams.size(); ++i) {
      if (streams[i].ready.size() != streams[0].ready.size()) {
        spdlog::debug("{}: the last window is not one every model has; not kept", video.path);
      }
    }

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
