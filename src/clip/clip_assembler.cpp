#include "vidfeat/clip/clip_assembler.h"

#include "vidfeat/common/error.h"

namespace vidfeat {

ClipAssembler::ClipAssembler(const BucketSpec& spec, uint64_t tailSeed)
    : spec_(spec), tailSeed_(tailSeed) {
  spec_.validate();
}

bool ClipAssembler::needsPixels(int64_t position) const {
  const int64_t step = spec_.step();
  const int64_t r = spec_.samplingRate;
  const int64_t lastOffset = int64_t(spec_.numFrames - 1) * r;
  // Sample picks any frame of the tail, which is unknown until the end: keep every frame from
  // the first pending clip on (at most one span plus one step).
  if (spec_.tail == TailPolicy::Sample) return position >= nextClip_ * step;
  // Is `position` a sampled position start + j*r of some clip k >= nextClip_?
  int64_t kMax = position / step;
  for (int64_t k = kMax; k >= nextClip_; --k) {
    int64_t off = position - k * step;
    if (off > lastOffset) break;
    if (off % r == 0) return true;
  }
  return false;
}

void ClipAssembler::push(const SequenceFrame& frame, FramePixels pixels) {
  const int64_t pos = count_++;
  meta_[pos] = frame;
  lastTime_ = frame.time;
  if (pixels) pixels_[pos] = std::move(pixels);
  // Full clip k is ready once the frame after its span exists (that frame's time ends the span).
  while (true) {
    ClipPlan plan = fullClip(nextClip_, spec_);
    if (plan.spanEnd >= count_) break;
    ready_.push_back(build(plan, meta_.at(plan.spanEnd).time));
    ++nextClip_;
    dropUnneeded();
  }
}

std::vector<AssembledClip> ClipAssembler::takeReady() {
  std::vector<AssembledClip> out;
  out.swap(ready_);
  return out;
}

std::vector<AssembledClip> ClipAssembler::finish(double frameDuration,
                                                 const std::function<FramePixels()>& lastPixels) {
  std::vector<AssembledClip> out = takeReady();
  if (count_ == 0) return out;
  const int64_t n = count_;
  const double endOfLast = lastTime_ + frameDuration;
  if (lastPixels && spec_.tail == TailPolicy::Repeat && !pixels_.count(n - 1)) {
    // Repeat padding or a full clip may need the last frame; fetch it once, only if so.
    ClipPlan tail;
    bool needLast = tailClip(n, spec_, tailSeed_, tail) && tail.padded > 0;
    if (needLast) {
      FramePixels px = lastPixels();
      if (px) pixels_[n - 1] = std::move(px);
    }
  }
  int64_t full = fullClipCount(n, spec_);
  for (; nextClip_ < full; ++nextClip_) {
    ClipPlan plan = fullClip(nextClip_, spec_);
    plan.spanEnd = std::min(plan.spanEnd, n);
    out.push_back(build(plan, plan.spanEnd < n ? meta_.at(plan.spanEnd).time : endOfLast));
  }
  ClipPlan tail;
  if (tailClip(n, spec_, tailSeed_, tail)) {
    out.push_back(build(tail, endOfLast));
    nextClip_ = tail.index + 1;
  }
  meta_.clear();
  pixels_.clear();
  return out;
}

AssembledClip ClipAssembler::build(const ClipPlan& plan, double endTime) {
  AssembledClip clip;
  clip.segment.index = plan.index;
  clip.segment.firstFrame = meta_.at(plan.start).sourceIndex;
  clip.segment.lastFrame = meta_.at(plan.spanEnd - 1).sourceIndex;
  clip.segment.startTime = meta_.at(plan.start).time;
  clip.segment.endTime = endTime;
  clip.segment.paddedFrames = plan.padded;
  clip.frames.reserve(plan.frames.size());
  for (int64_t pos : plan.frames) {
    auto it = pixels_.find(pos);
    if (it == pixels_.end()) {
      throw Error("internal: clip " + std::to_string(plan.index) + " needs frame " +
                  std::to_string(pos) + " whose pixels were not kept");
    }
    clip.frames.push_back(it->second);
  }
  return clip;
}

void ClipAssembler::dropUnneeded() {
  const int64_t keepFrom = nextClip_ * spec_.step();
  meta_.erase(meta_.begin(), meta_.lower_bound(keepFrom));
  pixels_.erase(pixels_.begin(), pixels_.lower_bound(keepFrom));
  // Between clip starts (stride > span) nothing is needed either.
  for (auto it = pixels_.begin(); it != pixels_.end();) {
    it = needsPixels(it->first) ? std::next(it) : pixels_.erase(it);
  }
}

}  // namespace vidfeat
