#pragma once
// --fps F: resamples a stream of frames to a target frame rate by presentation time before
// bucketing. Slot k has time t0 + k/F (t0 = first frame's time) and shows the frame on screen at
// that time: the last frame whose presentation time is <= the slot time. Works for variable
// frame rate input, since only presentation times are used.
//
// Bound: a gap of more than kMaxGapSeconds between consecutive frames (or a last frame said to
// last longer) is a break in the stream, not a frame held on screen: the earlier frame keeps one
// output interval of slots and the grid starts again at the next frame's time. So the slots are
// at most (frames + 1) * (kMaxGapSeconds * F + 1), whatever the timestamps say; a non-finite time
// is an Error.
//
// Clips by time (--clip-seconds, ClipSequence in bucket_plan.h) use the same grid with a phase:
// slot k keeps its time t0 + k/F (the segments' times) but shows the frame on screen at
// t0 + k/F + phase (the window's sample time). There a break cannot be bridged without moving
// every later window, so a gap over kMaxGapSeconds fails the video instead (Gaps::Fail).
#include <cstdint>
#include <vector>

namespace vidfeat {

constexpr double kMaxGapSeconds = 60.0;

class FpsResampler {
 public:
  enum class Gaps { Break, Fail };
  // Throws Error unless fps > 0 and 0 <= phase < kMaxGapSeconds.
  explicit FpsResampler(double fps, double phase = 0.0, Gaps gaps = Gaps::Break);

  struct Slot {
    int64_t sourceIndex;  // which decoded frame the slot shows
    double time;          // slot time in seconds (the frame is the one on screen at time + phase)
  };

  // Feeds the next decoded frame (increasing times). Returns the slots now known to show the
  // PREVIOUS frame (a frame's slots are settled when the next frame's time is known).
  std::vector<Slot> push(int64_t sourceIndex, double time);

  // End of stream: the slots showing the last frame, which stays on screen for `lastDuration`.
  std::vector<Slot> finish(double lastDuration);

 private:
  // Slots whose time + phase is < until go to the previous frame.
  std::vector<Slot> settle(double until);

  double fps_;
  double phase_;
  Gaps gaps_;
  bool started_ = false;
  double t0_ = 0.0;
  int64_t nextSlot_ = 0;
  int64_t prevIndex_ = -1;
  double prevTime_ = 0.0;
};

}  // namespace vidfeat
