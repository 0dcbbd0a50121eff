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

  int64_t span() const { return int64_t(numFrames) * samplingRate; }
  int64_t step() const { return stride > 0 ? stride : span(); }
  void validate() const;  // throws Error naming the bad value
};

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
