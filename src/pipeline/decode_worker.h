#pragma once
// The decode worker of a VideoExtractor (private to src/pipeline): a thread that turns each
// submitted video into preprocessed clips, decode -> --fps resampling -> clip assembly -> crops,
// and hands them to the extractor's thread through a bounded queue (docs/DESIGN.md, "Inside a
// rank"). The batching side is video_extractor.cpp.
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "vidfeat/pipeline/bounded_queue.h"
#include "vidfeat/pipeline/video_extractor.h"

namespace vidfeat {

// What the worker hands over: one preprocessed clip of a video, or the video's end (its status
// and decode figures; segments and features stay empty).
struct WorkerItem {
  int64_t ticket = -1;
  bool isClip = false;
  SegmentRecord segment;  // clip
  // clip: crops x C x T x H x W, as normalised floats (packClip), or as bytes (cropClip) when the
  // model normalises on its device (FeatureModel::uploadsBytes); with several models, each
  // model's in turn (DecodeWorker::itemBytes)
  std::vector<unsigned char> pixels;
  VideoResult end;              // end of the video
  int64_t framesConverted = 0;  // end: of end.decodedFrames, those scaled to RGB for a clip
  // The video is decoded again from the start: what came of it so far (clips, features,
  // segments) is dropped (docs/DESIGN.md, "Determinism").
  bool restart = false;
};

// Thread safety: every public member may be called from the extractor's thread while the worker
// thread runs; the worker's own state is behind its mutexes, the queue is thread-safe.
class DecodeWorker {
 public:
  // `clipValues`: values of one crop of a clip, per model (its input shape; one entry, or one per
  // stream of ExtractOptions::moreStreams after the first); `bytes`: clips as uint8 crops
  // (cropClip) instead of normalised floats (packClip); `spatial`: the uniform_crop index of each
  // crop; `queueClips`: the queue's capacity; `idlePriority`: the thread runs SCHED_IDLE
  // (--decode-priority idle). The thread starts here.
  DecodeWorker(const ExtractOptions& opt, std::vector<size_t> clipValues, bool bytes,
               std::vector<int> spatial, size_t queueClips, bool idlePriority);
  ~DecodeWorker();  // stops the thread, dropping the video in flight and those not started
  DecodeWorker(const DecodeWorker&) = delete;
  DecodeWorker& operator=(const DecodeWorker&) = delete;

  // Queues `video` under `ticket`; its clips and then its end come out of queue() in order.
  void submit(int64_t ticket, const VideoEntry& video);
  // No video waiting and none being decoded.
  bool wantsWork() const;
  // Nothing queued, nothing being decoded, nothing waiting in the queue: no clip will come until
  // the next submit.
  bool drained() const;
  // Clip buffers go back to the worker once their floats are in a batch (no allocation per clip).
  void recycle(std::vector<unsigned char> buffer);
  // Bytes of one crop of model `stream`'s clip.
  size_t cropBytes(size_t stream) const {
    return clipValues_[stream] * (bytes_ ? 1 : sizeof(float));
  }
  // Bytes of an item's pixels: for each model in order, its crops one after the other.
  size_t itemBytes() const;
  BoundedQueue<WorkerItem>& queue() { return out_; }

 private:
  struct Job {
    int64_t ticket;
    VideoEntry video;
  };

  std::vector<unsigned char> takeBuffer();
  void emit(WorkerItem item);
  void loop();
  // `framesConverted`: set to the frames of the (last) decode that were converted to RGB.
  VideoResult decode(const Job& job, int64_t& framesConverted);
  VideoResult decodeOnce(const Job& job, int codecThreads, bool mayRestart,
                         int64_t& framesConverted);

  const ExtractOptions opt_;
  const std::vector<size_t> clipValues_;  // per crop, per model
  const bool bytes_;
  const std::vector<int> spatial_;
  BoundedQueue<WorkerItem> out_;

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Job> jobs_;
  bool midVideo_ = false;
  bool stopping_ = false;
  std::mutex poolMutex_;
  std::vector<std::vector<unsigned char>> pool_;
  const bool idlePriority_;
  std::thread thread_;  // last: starts once everything above exists
};

}  // namespace vidfeat
