#include "vidfeat/clip/fps_resampler.h"

#include <fmt/format.h>

#include <cmath>
#include <string>

#include "vidfeat/common/error.h"

namespace vidfeat {

namespace {
// Presentation times come from integer timestamps times a rational time base; a slot time that
// equals a frame time up to rounding belongs to that frame.
constexpr double kTimeEpsilon = 1e-6;
}  // namespace

FpsResampler::FpsResampler(double fps, double phase, Gaps gaps)
    : fps_(fps), phase_(phase), gaps_(gaps) {
  if (!(fps > 0.0) || !std::isfinite(fps)) {
    throw Error("--fps must be a positive number, got " + std::to_string(fps));
  }
  if (!(phase >= 0.0) || !(phase < kMaxGapSeconds)) {
    throw Error(
        fmt::format("resampling phase must be in [0, {:g}) s, got {:g}", kMaxGapSeconds, phase));
  }
}

std::vector<FpsResampler::Slot> FpsResampler::settle(double until) {
  std::vector<Slot> out;
  while (true) {
    double t = t0_ + double(nextSlot_) / fps_;
    if (t + phase_ >= until - kTimeEpsilon) break;
    out.push_back({prevIndex_, t});
    ++nextSlot_;
  }
  return out;
}

std::vector<FpsResampler::Slot> FpsResampler::push(int64_t sourceIndex, double time) {
  if (!std::isfinite(time)) throw Error("a frame's presentation time is not finite");
  std::vector<Slot> out;
  if (!started_) {
    started_ = true;
    t0_ = time;
  } else if (time - prevTime_ > kMaxGapSeconds) {
    if (gaps_ == Gaps::Fail) {
      throw Error(fmt::format(
          "presentation time jumps by {:g} s between frames {} and {} (more than {:g} s): clips "
          "by time (--clip-seconds) need a continuous timeline",
          time - prevTime_, prevIndex_, sourceIndex, kMaxGapSeconds));
    }
    // A break, not a hold: the previous frame keeps the slots of one output frame interval, then
    // the slot grid starts again at this frame (a 1e9 s jump made 3e10 slots).
    out = settle(prevTime_ + 1.0 / fps_);
    t0_ = time;
    nextSlot_ = 0;
  } else {
    out = settle(time);
  }
  prevIndex_ = sourceIndex;
  prevTime_ = time;
  return out;
}

std::vector<FpsResampler::Slot> FpsResampler::finish(double lastDuration) {
  if (!started_) return {};
  if (!(lastDuration <= kMaxGapSeconds)) lastDuration = 1.0 / fps_;  // NaN too
  return settle(prevTime_ + lastDuration);
}

}  // namespace vidfeat
