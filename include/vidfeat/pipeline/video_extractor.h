#pragma once
// Videos through the data path: decode -> clips -> preprocessing -> model, into VideoResults
// ready for the store. A video that cannot be opened or decoded becomes a Failed result with the
// reason; it never throws for a bad video.
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "vidfeat/clip/bucket_plan.h"
#include "vidfeat/clip/preprocess.h"
#include "vidfeat/common/video_record.h"

namespace vidfeat {

class DecodeWorker;
class FeatureModel;

// The clips one model takes from a video: its frames per window and its geometry.
struct StreamSpec {
  BucketSpec buckets;
  PreprocessSpec preprocess;
};

struct ExtractOptions {
  BucketSpec buckets;  // the first (or only) model's clips
  PreprocessSpec preprocess;
  // The other models of a run of several (--model A --model B), each with its own frames,
  // geometry and normalisation from the same decode. Their windows must be the first model's
  // (clips by time, the same --clip-seconds and stride): a window is kept when every model has
  // it, and its feature row is the models' features side by side, in this order.
  std::vector<StreamSpec> moreStreams;
  double targetFps = 0.0;  // --fps: resample by presentation time first; 0 = native rate
  uint64_t tailSeed = 0;   // seeds the sample tail policy (mixed with the video id)
  int batch = 1;           // clips per forward (of one or several videos)
  int queueClips = 0;      // ready clips the decode worker may hold ahead; 0 = 2 x batch
  int crops = 1;           // --crops: 1 (centre) or 3 (PySlowFast's left/centre/right test crops)
  int decodeThreads = 0;   // codec threads, 0 = FFmpeg's choice
  std::string decodeDevice = "cpu";  // --decode-device: cpu, cuda or cuda:N (DecodeOptions::device)
  double timeoutSeconds = 0.0;       // --video-timeout: fail a video still running after this long
  // Where clips are normalised: Auto = on the model's device when it is not the CPU (uint8 crops
  // uploaded, FeatureModel::extractBytes), else by the decode worker (packClip). Both give the
  // same floats; tests force either.
  enum class Normalise { Auto, Worker, Model } normaliseOnDevice = Normalise::Auto;
  // The decode worker's CPU scheduling (--decode-priority): Normal, or Idle (Linux SCHED_IDLE: it
  // runs on cores the model leaves idle and the model's threads preempt it at once; a model starved
  // of clips leaves the cores idle, so decoding still gets the time it needs). On this 2-core
  // machine, SLOWFAST 8x8 on the CPU, the two measured alike within the machine's noise (steady
  // 0.80-0.97 s per clip idle, 0.83-0.90 normal, interleaved runs), so Normal stays the default.
  enum class DecodePriority { Normal, Idle } decodePriority = DecodePriority::Normal;

  // Throws Error naming the option (--batch, --crops, --queue, --fps, the clip settings) for a
  // value the pipeline cannot run with. The CLI calls it before it builds anything; the
  // extractor's constructor relies on the same checks.
  void validate() const;
};

// "normal" / "idle" (--decode-priority); Error naming the option otherwise.
ExtractOptions::DecodePriority parseDecodePriority(const std::string& name);

// The per-rank pipeline (docs/DESIGN.md, "Inside a rank"): a decode worker thread turns each
// submitted video into preprocessed clips (decode -> clips -> crops, normalised) and hands them
// through a bounded queue to the caller's thread, which batches clips (of one or several videos)
// through the model and completes each video's VideoResult. Decoding runs while the model works
// and waits only when the queue is full, so memory is bounded by the queue whatever the video
// length. Only the caller's thread touches the model and MPI.
class VideoExtractor {
 public:
  VideoExtractor(FeatureModel& model, const ExtractOptions& options);
  // Several models from one decode: models[0] takes options.buckets / preprocess, models[i]
  // options.moreStreams[i - 1]; a result's feature row is their features side by side.
  VideoExtractor(const std::vector<FeatureModel*>& models, const ExtractOptions& options);
  ~VideoExtractor();  // stops the worker, dropping unfinished videos
  VideoExtractor(const VideoExtractor&) = delete;
  VideoExtractor& operator=(const VideoExtractor&) = delete;

  // True when the worker has no video waiting and is not in the middle of one: the moment to
  // submit the next (taking work earlier would hold it back from other ranks).
  bool wantsWork() const;
  // Queues `video` (its row in the store is `videoRow`) for decoding.
  void submit(const VideoEntry& video, int64_t videoRow);
  // Moves clips from the worker into batches and runs at most one batch; waits up to `wait` for
  // clips when none are ready. Returns the videos finished meanwhile (complete or failed; a bad
  // video never throws).
  std::vector<VideoResult> step(std::chrono::milliseconds wait);
  // Nothing submitted is unfinished.
  bool idle() const { return open_.empty(); }

  // Extracts one video start to finish (tests, single-video tools); `safePoint` is called between
  // steps.
  VideoResult run(const VideoEntry& video, int64_t videoRow,
                  const std::function<void()>& safePoint = {});

  struct Timing {
    double busySeconds = 0;     // wall time with at least one video in flight
    double modelSeconds = 0;    // inside the model's forward
    double starvedSeconds = 0;  // waiting for clips while videos were in flight (decode-bound)
  };
  const Timing& timing() const { return timing_; }
  // Clips run through the model since construction (for throughput figures).
  int64_t clipsProcessed() const { return clips_; }

 private:
  struct Open {
    std::string videoId;
    VideoResult result;       // segments as clips arrive, features as their batches run
    bool decodeDone = false;  // the worker has sent the video's end
    int inBatch = 0;          // clips waiting in the current batch
  };
  void runBatch(std::vector<VideoResult>& finished);
  void finishIfDone(int64_t ticket, std::vector<VideoResult>& finished);

  std::vector<FeatureModel*> models_;
  ExtractOptions opt_;
  std::unique_ptr<DecodeWorker> worker_;  // src/pipeline/decode_worker.h
  std::map<int64_t, Open> open_;          // by ticket: submitted, not yet returned
  int64_t nextTicket_ = 0;
  // The batch being filled: all crops of a clip per entry, and whose clip each entry is.
  bool bytes_ = false;  // clips travel as uint8 crops, normalised by the model (extractBytes)
  std::vector<unsigned char> input_;
  std::vector<unsigned char> gathered_;  // several models: one model's part of the batch
  std::vector<int64_t> batchTickets_;
  int64_t clips_ = 0;
  Timing timing_;
};

}  // namespace vidfeat
