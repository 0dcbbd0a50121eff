#include "vidfeat/clip/bucket_plan.h"

#include <algorithm>
#include <random>

#include "vidfeat/common/error.h"

namespace vidfeat {

TailPolicy parseTailPolicy(const std::string& name) {
  if (name == "repeat") return TailPolicy::Repeat;
  if (name == "sample") return TailPolicy::Sample;
  if (name == "drop") return TailPolicy::Drop;
  throw Error("unknown tail policy '" + name + "' (expected repeat, sample or drop)");
}

const char* tailPolicyName(TailPolicy policy) {
  switch (policy) {
    case TailPolicy::Repeat:
      return "repeat";
    case TailPolicy::Sample:
      return "sample";
    case TailPolicy::Drop:
      return "drop";
  }
  return "?";
}

void BucketSpec::validate() const {
  if (numFrames < 1) throw Error("DATA.NUM_FRAMES must be >= 1, got " + std::to_string(numFrames));
  if (samplingRate < 1) {
    throw Error("DATA.SAMPLING_RATE must be >= 1, got " + std::to_string(samplingRate));
  }
  if (stride < 0) throw Error("--stride must be >= 0, got " + std::to_string(stride));
}

int64_t fullClipCount(int64_t n, const BucketSpec& spec) {
  int64_t lastOffset = int64_t(spec.numFrames - 1) * spec.samplingRate;
  if (n <= lastOffset) return 0;
  return (n - 1 - lastOffset) / spec.step() + 1;
}

ClipPlan fullClip(int64_t k, const BucketSpec& spec) {
  ClipPlan c;
  c.index = static_cast<int32_t>(k);
  c.start = k * spec.step();
  c.spanEnd = c.start + spec.span();
  c.frames.resize(spec.numFrames);
  for (int j = 0; j < spec.numFrames; ++j) c.frames[j] = c.start + int64_t(j) * spec.samplingRate;
  return c;
}

bool tailClip(int64_t n, const BucketSpec& spec, uint64_t seed, ClipPlan& out) {
  if (n <= 0 || spec.tail == TailPolicy::Drop) return false;
  int64_t k = fullClipCount(n, spec);
  int64_t start = k * spec.step();
  if (start >= n) return false;  // the full clips' starts already passed the end
  // With overlapping clips the last full clip's span may already reach the end.
  if (k > 0 && (k - 1) * spec.step() + spec.span() >= n) return false;

  out = ClipPlan{};
  out.index = static_cast<int32_t>(k);
  out.start = start;
  out.spanEnd = n;
  out.tail = true;
  out.frames.resize(spec.numFrames);
  for (int j = 0; j < spec.numFrames; ++j) {
    int64_t pos = start + int64_t(j) * spec.samplingRate;
    if (pos >= n) ++out.padded;
    out.frames[j] = std::min(pos, n - 1);
  }
  if (spec.tail == TailPolicy::Sample) {
    // Seeded picks among the tail's real frames, in temporal order. mt19937_64 and the explicit
    // modulo keep the picks identical across platforms and standard libraries.
    std::mt19937_64 rng(seed ^ (0x9e3779b97f4a7c15ULL * uint64_t(k + 1)));
    int64_t m = n - start;
    for (auto& f : out.frames) f = start + int64_t(rng() % uint64_t(m));
    std::sort(out.frames.begin(), out.frames.end());
  }
  return true;
}

std::vector<ClipPlan> planClips(int64_t n, const BucketSpec& spec, uint64_t seed) {
  std::vector<ClipPlan> clips;
  int64_t full = fullClipCount(n, spec);
  for (int64_t k = 0; k < full; ++k) {
    clips.push_back(fullClip(k, spec));
    clips.back().spanEnd = std::min<int64_t>(clips.back().spanEnd, n);
  }
  ClipPlan tail;
  if (tailClip(n, spec, seed, tail)) clips.push_back(std::move(tail));
  return clips;
}

uint64_t tailSeedFor(uint64_t seed, const std::string& videoId) {
  uint64_t h = 1469598103934665603ULL;  // FNV-1a
  for (unsigned char c : videoId) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  // splitmix64 finaliser so nearby seeds give unrelated streams
  uint64_t z = h ^ (seed + 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

}  // namespace vidfeat
