#pragma once
// Streams a video's frames into clips without ever holding the whole video: frames arrive one by
// one, a clip is handed out as soon as its frames (and the time its span ends) are known, and
// pixels are kept only while a pending clip may still use them. Memory is bounded by about one
// clip span of frames whatever the video length.
//
// Not thread-safe; one assembler per video.
#include <functional>
#include <map>
#include <memory>
#include <vector>

#include "vidfeat/clip/bucket_plan.h"
#include "vidfeat/common/segment.h"

namespace vidfeat {

// Pixels of one frame, shared between overlapping clips (packed RGB24 after resizing).
using FramePixels = std::shared_ptr<const std::vector<uint8_t>>;

// A frame of the sequence being bucketed (the decoded frames, or their resampling at --fps).
struct SequenceFrame {
  int64_t sourceIndex = 0;  // decoded-frame index it shows
  double time = 0.0;        // seconds: its presentation time (or the resampling slot's time)
};

struct AssembledClip {
  SegmentRecord segment;
  std::vector<FramePixels> frames;  // numFrames entries, in temporal order
};

class ClipAssembler {
 public:
  ClipAssembler(const BucketSpec& spec, uint64_t tailSeed);

  // Position the next pushed frame will have in the sequence.
  int64_t nextPosition() const { return count_; }

  // Whether a clip may use the pixels of the frame at `position` (known before decoding or
  // converting it): only those frames need converting.
  bool needsPixels(int64_t position) const;

  // Adds the next frame. `pixels` may be null when needsPixels() was false.
  void push(const SequenceFrame& frame, FramePixels pixels);

  // Clips completed since the last call, in order.
  std::vector<AssembledClip> takeReady();

  // End of the sequence. `frameDuration` (seconds) closes the last span's end time;
  // `lastPixels` is asked for at most once, only when padding needs the last frame's pixels and
  // they were not kept. Returns the remaining clips (full ones, then the tail).
  std::vector<AssembledClip> finish(double frameDuration,
                                    const std::function<FramePixels()>& lastPixels);

  int64_t framesSeen() const { return count_; }
  // Frames whose metadata is held now (bounded by about one span).
  size_t heldFrames() const { return meta_.size(); }

 private:
  AssembledClip build(const ClipPlan& plan, double endTime);
  void dropUnneeded();

  BucketSpec spec_;
  uint64_t tailSeed_;
  int64_t count_ = 0;                      // frames pushed
  int64_t nextClip_ = 0;                   // index of the first clip not yet handed out
  double lastTime_ = 0.0;                  // time of the last pushed frame
  std::map<int64_t, SequenceFrame> meta_;  // positions from the next clip's start on
  std::map<int64_t, FramePixels> pixels_;
  std::vector<AssembledClip> ready_;
};

}  // namespace vidfeat
