#include "vidfeat/clip/bucket_plan.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
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
  if (!(clipSeconds >= 0) || !std::isfinite(clipSeconds)) {
    throw Error("--clip-seconds must be a positive number of seconds, got " +
                std::to_string(clipSeconds));
  }
  if (!(clipStrideSeconds >= 0) || !std::isfinite(clipStrideSeconds)) {
    throw Error("--clip-stride-seconds must be a positive number of seconds, got " +
                std::to_string(clipStrideSeconds));
  }
  if (clipStrideSeconds > 0 && !byTime()) {
    throw Error("--clip-stride-seconds needs --clip-seconds (frame-based clips use --stride)");
  }
  if (byTime() && stride > 0) {
    throw Error(
        "--stride counts frames and --clip-seconds cuts by time: give --clip-stride-seconds "
        "instead of --stride");
  }
}

namespace {
std::string seconds(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.10g", s);
  return buf;
}
}  // namespace

ClipSequence clipSequence(const BucketSpec& spec, double targetFps) {
  spec.validate();
  ClipSequence seq;
  seq.buckets = spec;
  if (!spec.byTime()) {
    seq.fps = targetFps > 0 ? targetFps : 0.0;
    return seq;
  }
  if (targetFps > 0) {
    throw Error(
        "--fps and --clip-seconds both given: --clip-seconds already takes each window's "
        "NUM_FRAMES frames by presentation time, whatever the frame rate; drop --fps");
  }
  const double S = spec.clipSeconds, D = spec.windowStride();
  const int T = spec.numFrames;
  const double sampleInterval = S / T;
  // The stride in sample intervals, q = D*T/S, must be a fraction step/r with a small r: the
  // grid then has r slots per sample interval and clips start every `step` slots.
  const double q = D / sampleInterval;
  int r = 0;
  int64_t step = 0;
  for (int cand = 1; cand <= kMaxGridRefinement; ++cand) {
    const double x = q * cand;
    const double rounded = std::round(x);
    if (rounded >= 1 && std::fabs(x - rounded) <= 1e-9 * std::max(1.0, x)) {
      r = cand;
      step = int64_t(rounded);
      break;
    }
  }
  if (r == 0) {
    throw Error("--clip-stride-seconds " + seconds(D) + " is not a simple fraction (at most 1/" +
                std::to_string(kMaxGridRefinement) + ") of the sample interval --clip-seconds / " +
                "NUM_FRAMES = " + seconds(S) + "/" + std::to_string(T) + " = " +
                seconds(sampleInterval) + " s");
  }
  const double fps = double(T) * r / S;
  if (fps > kMaxSlotsPerSecond) {
    throw Error("--clip-seconds " + seconds(S) + " with NUM_FRAMES " + std::to_string(T) +
                (r > 1 ? " and --clip-stride-seconds " + seconds(D) : std::string()) + " samples " +
                seconds(fps) + " times a second; at most " + seconds(kMaxSlotsPerSecond) +
                " (give longer windows)");
  }
  if (step > int64_t(1) << 30) {
    throw Error("--clip-stride-seconds " + seconds(D) + " is too long for --clip-seconds " +
                seconds(S));
  }
  seq.byTime = true;
  seq.fps = fps;
  seq.phase = sampleInterval / 2;
  seq.buckets.samplingRate = r;
  seq.buckets.stride = int(step);
  seq.buckets.clipSeconds = 0;  // the spec of slot positions is frame-based
  seq.buckets.clipStrideSeconds = 0;
  return seq;
}

std::string timeWindowsDescription(const BucketSpec& spec) {
  if (!spec.byTime()) return {};
  return "one row per " + seconds(spec.clipSeconds) + " s window of presentation time every " +
         seconds(spec.windowStride()) + " s (--clip-seconds), its " +
         std::to_string(spec.numFrames) + " frames at window start + (i + 0.5) x " +
         seconds(spec.clipSeconds / spec.numFrames) + " s";
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
