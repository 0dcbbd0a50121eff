// The batching side of the per-rank pipeline: clips from the decode worker (decode_worker.cpp)
// into batches of --batch clips through the model, and each video's result completed.
#include "vidfeat/pipeline/video_extractor.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "decode_worker.h"
#include "vidfeat/common/error.h"
#include "vidfeat/common/log.h"
#include "vidfeat/model/feature_model.h"

namespace vidfeat {

namespace {

using Clock = std::chrono::steady_clock;

double secondsSince(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

}  // namespace

VideoExtractor::VideoExtractor(FeatureModel& model, const ExtractOptions& options)
    : VideoExtractor(std::vector<FeatureModel*>{&model}, options) {}

VideoExtractor::VideoExtractor(const std::vector<FeatureModel*>& models,
                               const ExtractOptions& options)
    : models_(models), opt_(options) {
  opt_.validate();
  if (models_.size() != 1 + opt_.moreStreams.size()) {
    throw Error("internal: " + std::to_string(models_.size()) + " models for " +
                std::to_string(1 + opt_.moreStreams.size()) + " clip streams");
  }
  std::vector<size_t> clipValues;
  for (size_t i = 0; i < models_.size(); ++i) {
    const ClipShape shape = models_[i]->inputShape();
    const int crop =
        i == 0 ? opt_.preprocess.cropSize : opt_.moreStreams[i - 1].preprocess.cropSize;
    if (shape.height != crop || shape.width != crop) {
      throw Error("internal: model input " + std::to_string(shape.height) + " but crop " +
                  std::to_string(crop));
    }
    clipValues.push_back(size_t(shape.numel()));
  }
  // PySlowFast's three test crops are uniform_crop's left/top, centre, right/bottom.
  std::vector<int> spatial = opt_.crops == 3 ? std::vector<int>{0, 1, 2} : std::vector<int>{1};
  const size_t queueClips = opt_.queueClips > 0 ? size_t(opt_.queueClips) : size_t(2 * opt_.batch);
  // One rank's models share its device, so they agree on uploadsBytes().
  bytes_ = opt_.normaliseOnDevice == ExtractOptions::Normalise::Auto
               ? models_[0]->uploadsBytes()
               : opt_.normaliseOnDevice == ExtractOptions::Normalise::Model;
  const bool idle = opt_.decodePriority == ExtractOptions::DecodePriority::Idle;
  worker_ = std::make_unique<DecodeWorker>(opt_, std::move(clipValues), bytes_, std::move(spatial),
                                           queueClips, idle);
  input_.resize(size_t(opt_.batch) * worker_->itemBytes());
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
  int64_t dim = 0;  // of a row: the models' features side by side
  for (const FeatureModel* m : models_) dim += m->featureDim();
  const int64_t rows = n * opt_.crops;  // rows [clip][crop] in the output
  std::vector<float> features(size_t(rows * dim));
  std::string error;
  const auto t0 = Clock::now();
  // Runs `model` on `rows` clips at `in` (for model `i`), into `out`.
  auto forward = [&](FeatureModel& model, size_t i, const unsigned char* in, float* out) {
    if (bytes_) {
      const PreprocessSpec& p = i == 0 ? opt_.preprocess : opt_.moreStreams[i - 1].preprocess;
      model.extractBytes(in, rows, normalisationOf(p), out);
    } else {
      model.extract(reinterpret_cast<const float*>(in), rows, out);
    }
  };
  try {
    if (models_.size() == 1) {
      forward(*models_[0], 0, input_.data(), features.data());
    } else {
      // Each model's part of every clip into one batch of its own, then its features into
      // their columns (crops is 1 here).
      const size_t item = worker_->itemBytes();
      size_t offset = 0;
      int64_t column = 0;
      std::vector<float> part;
      for (size_t i = 0; i < models_.size(); ++i) {
        const size_t bytes = worker_->cropBytes(i);
        gathered_.resize(size_t(n) * bytes);
        for (int64_t c = 0; c < n; ++c)
          std::memcpy(gathered_.data() + size_t(c) * bytes,
                      input_.data() + size_t(c) * item + offset, bytes);
        const int64_t d = models_[i]->featureDim();
        part.resize(size_t(n * d));
        forward(*models_[i], i, gathered_.data(), part.data());
        for (int64_t c = 0; c < n; ++c)
          std::copy_n(part.data() + c * d, d, features.data() + c * dim + column);
        offset += bytes;
        column += d;
      }
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
    if (!worker_->queue().popUntil(item, deadline)) {
      starved += secondsSince(waitFrom);
      // No clip now: run a partial batch only when no more can come before the next submit.
      if (!batchTickets_.empty() && worker_->drained()) runBatch(finished);
      break;
    }
    starved += secondsSince(waitFrom);
    Open& o = open_.at(item.ticket);
    if (item.isClip) {
      if (o.result.status != VideoStatus::Failed) {
        std::memcpy(input_.data() + batchTickets_.size() * clipBytes, item.pixels.data(),
                    clipBytes);
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
        if (kept != i)
          std::memmove(input_.data() + kept * clipBytes, input_.data() + i * clipBytes, clipBytes);
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
