#pragma once
// Cutting a sequence of frames into clips ("temporal buckets"), the seed's methodology made
// explicit.
//
// A clip has T = numFrames frames taken every r = samplingRate frames, so it spans L = T*r
// frames; clip k starts at k*step (step = stride, default L: back-to-back buckets). Clip k is full
// when its last sampled position start + (T-1)*r exists. After the full clips, one tail clip
// covers the frames no full clip reached (if any), following the tail policy:
//   repeat  positions past the end take the last real frame (default);
//   sample  T frames picked at random (seeded, sorted) among the tail's real frames;
//   drop    no tail clip.
// A video shorter than one clip therefore yields one (tail) segment unless the policy is drop.
//
// Clips by time (--clip-seconds S, --clip-stride-seconds D, default S): window k is
// [t0 + k*D, t0 + k*D + S) seconds of presentation time, t0 the first frame's time; its T frames
// are the frames on screen (the last frame whose presentation time is <= the sample time) at the
// sample times t0 + k*D + (i + 0.5) * S/T, i = 0..T-1: evenly across the window, the same
// temporal extent whatever the frame rate. clipSequence() realises this on the frame positions
// above: a grid of slots every g = S/(T*r) seconds (r = 1 unless D is not a whole number of
// sample intervals S/T), slot j showing the frame on screen at t0 + j*g + S/(2T); a clip is T
// slots every r, clips every D/g slots. A window is full when all its sample times fall before
// the video's end; the last partial window (its first sample before the end) follows the tail
// policy on slots. docs/DESIGN.md, "Clips by time".
#include <cstdint>
#include <string>
#include <vector>

namespace vidfeat {

enum class TailPolicy { Repeat, Sample, Drop };

TailPolicy parseTailPolicy(const std::string& name);  // throws Error for an unknown name
const char* tailPolicyName(TailPolicy policy);

struct BucketSpec {
  int numFrames = 8;     // T (DATA.NUM_FRAMES)
  int samplingRate = 8;  // r (DATA.SAMPLING_RATE)
  int stride = 0;        // frames between clip starts; 0 = T*r
  TailPolicy tail = TailPolicy::Repeat;
  double clipSeconds = 0.0;        // --clip-seconds S: clips by time; 0 = frame-based clips
  double clipStrideSeconds = 0.0;  // --clip-stride-seconds D: 0 = S

  bool byTime() const { return clipSeconds > 0; }
  double windowStride() const { return clipStrideSeconds > 0 ? clipStrideSeconds : clipSeconds; }

  int64_t span() const { return int64_t(numFrames) * samplingRate; }
  int64_t step() const { return stride > 0 ? stride : span(); }
  void validate() const;  // throws Error naming the bad value
};

// The sequence the clips are cut from and the frame-position spec that cuts it.
struct ClipSequence {
  BucketSpec buckets;   // what ClipAssembler runs: as given, or (by time) T slots every r, step D/g
  double fps = 0.0;     // slots per second: --fps F, 1/g by time; 0 = the decoded frames themselves
  double phase = 0.0;   // by time: S/(2T), from a slot's time to the time its frame is taken at
  bool byTime = false;  // a timestamp break (FpsResampler) then fails the video
};

// Bounds of clips by time: the grid refinement r and the slots per second.
constexpr int kMaxGridRefinement = 64;
constexpr double kMaxSlotsPerSecond = 1000.0;

// The sequence for `spec` (with `targetFps`, --fps, 0 = native). Throws Error naming the options
// for contradictory settings: --fps or --stride with --clip-seconds, --clip-stride-seconds without
// it, a stride that is no simple fraction of S/T, more than kMaxSlotsPerSecond slots a second.
ClipSequence clipSequence(const BucketSpec& spec, double targetFps);

// What a feature row is by time, for the output's feature_name (and so for resume's check):
// "one row per 2 s window of presentation time every 2 s (--clip-seconds), its 32 frames at
// window start + (i + 0.5) x 0.0625 s". Empty for frame-based clips.
std::string timeWindowsDescription(const BucketSpec& spec);

struct ClipPlan {
  int32_t index = 0;
  int64_t start = 0;            // first frame of the span
  int64_t spanEnd = 0;          // one past the last frame of the span that exists
  std::vector<int64_t> frames;  // T frame positions fed to the model, in order
  int32_t padded = 0;           // positions with no real frame (start + j*r >= n)
  bool tail = false;            // the partial last bucket
};

// Number of full clips in a sequence of n frames.
int64_t fullClipCount(int64_t n, const BucketSpec& spec);

// The plan of full clip k (independent of n once it is full).
ClipPlan fullClip(int64_t k, const BucketSpec& spec);

// The tail clip of a sequence of n frames, if the policy and n call for one. `seed` drives the
// sample policy (same seed, same picks, on any rank).
bool tailClip(int64_t n, const BucketSpec& spec, uint64_t seed, ClipPlan& out);

// Every clip of a sequence of n frames: the full clips then the tail clip.
std::vector<ClipPlan> planClips(int64_t n, const BucketSpec& spec, uint64_t seed);

// A stable 64-bit seed for a video's tail sampling: mixes the user's seed with the video id, so
// the picks do not depend on which rank or in which order the video is processed.
uint64_t tailSeedFor(uint64_t seed, const std::string& videoId);

}  // namespace vidfeat
