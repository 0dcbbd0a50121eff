// Clips by time (--clip-seconds, bucket_plan.h): the sequence the decode worker runs (FpsResampler
// with the window grid's phase, then ClipAssembler) against a plan computed by hand, with exact
// integer arithmetic, from the rule in docs/DESIGN.md "Clips by time": window k is
// [k*D, k*D + S), its T frames are the frames on screen at k*D + (i + 0.5) * S/T.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "vidfeat/clip/bucket_plan.h"
#include "vidfeat/clip/clip_assembler.h"
#include "vidfeat/clip/fps_resampler.h"
#include "vidfeat/common/error.h"

using namespace vidfeat;

namespace {

// A frame's pixels carry its decoded-frame index.
FramePixels tagged(int64_t index) {
  auto px = std::make_shared<std::vector<uint8_t>>(sizeof(int64_t));
  std::memcpy(px->data(), &index, sizeof index);
  return px;
}
int64_t tagOf(const FramePixels& px) {
  int64_t index = 0;
  std::memcpy(&index, px->data(), sizeof index);
  return index;
}

struct Clip {
  SegmentRecord segment;
  std::vector<int64_t> frames;  // decoded-frame index of each of the T frames
};

// What the decode worker does with a video whose frames have presentation times `times` (the
// last one lasting `lastDuration`): resample on the sequence's grid, assemble, finish.
std::vector<Clip> run(const BucketSpec& spec, const std::vector<double>& times,
                      double lastDuration) {
  const ClipSequence seq = clipSequence(spec, 0.0);
  EXPECT_TRUE(seq.byTime);
  FpsResampler resampler(seq.fps, seq.phase, FpsResampler::Gaps::Fail);
  ClipAssembler assembler(seq.buckets, 11);
  std::vector<Clip> out;
  auto drain = [&](std::vector<AssembledClip> clips) {
    for (auto& c : clips) {
      Clip clip{c.segment, {}};
      for (auto& f : c.frames) clip.frames.push_back(tagOf(f));
      out.push_back(std::move(clip));
    }
  };
  FramePixels previous;
  for (size_t i = 0; i < times.size(); ++i) {
    for (const auto& slot : resampler.push(int64_t(i), times[i])) {
      assembler.push({slot.sourceIndex, slot.time},
                     assembler.needsPixels(assembler.nextPosition()) ? previous : nullptr);
    }
    previous = tagged(int64_t(i));
    drain(assembler.takeReady());
  }
  for (const auto& slot : resampler.finish(lastDuration)) {
    assembler.push({slot.sourceIndex, slot.time},
                   assembler.needsPixels(assembler.nextPosition()) ? previous : nullptr);
  }
  drain(assembler.takeReady());
  drain(assembler.finish(1.0 / seq.fps, [&] { return previous; }));
  return out;
}

// Exact rationals for the hand-computed plan.
struct Q {
  int64_t n, d;
};

// The plan of a constant-rate video of `frames` frames at fps = num/den (frame j at j*den/num,
// the last lasting 1/fps), windows of S seconds every D (S = s.n/s.d, D = dd.n/dd.d), T frames,
// tail repeat or drop; with grid refinement r (the stride in sample intervals is step/r).
std::vector<Clip> handPlan(int64_t frames, int64_t num, int64_t den, Q s, Q dd, int T, int r,
                           bool repeat) {
  // Times in units u = 1 / (2*T*r*s.d*dd.d): the sample interval S/T is 2*r*s.n*dd.d units, a
  // grid step g = (S/T)/r is 2*s.n*dd.d units, half a sample interval r*s.n*dd.d units.
  const int64_t unitsPerSecond = 2LL * T * r * s.d * dd.d;
  const int64_t sample = 2LL * r * s.n * dd.d;
  const int64_t grid = 2LL * s.n * dd.d;
  const int64_t half = int64_t(r) * s.n * dd.d;
  const int64_t stride = 2LL * T * r * dd.n * s.d;  // D in units
  const int64_t window = 2LL * T * r * s.n * dd.d;  // S in units
  // A time x (units) is inside the video when x < frames/fps; its frame is floor(x * fps).
  auto inside = [&](int64_t x) { return x * num < frames * den * unitsPerSecond; };
  auto frameAt = [&](int64_t x) { return (x * num) / (den * unitsPerSecond); };
  auto slotTime = [&](int64_t j) { return j * grid + half; };  // the time slot j's frame is taken
  int64_t slots = 0;
  while (inside(slotTime(slots))) ++slots;
  std::vector<Clip> plan;
  for (int64_t k = 0;; ++k) {
    const int64_t start = k * stride;
    const int64_t last = start + half + (T - 1) * sample;
    Clip c;
    c.segment.index = int32_t(k);
    c.segment.startTime = double(start) / unitsPerSecond;
    // A segment ends at the window's end or, when the window reaches past the last slot, at
    // that slot's end; its last frame is the one its last slot shows.
    const int64_t spanEndSlot = std::min((start + window) / grid, slots);
    c.segment.endTime = double(spanEndSlot * grid) / unitsPerSecond;
    c.segment.lastFrame = frameAt(slotTime(spanEndSlot - 1));
    if (inside(last)) {  // full
      for (int i = 0; i < T; ++i) c.frames.push_back(frameAt(start + half + i * sample));
      c.segment.firstFrame = c.frames.front();
      plan.push_back(c);
      continue;
    }
    // The first window not full: the tail, when its first sample is inside and the previous
    // window did not already reach the last slot.
    if (!repeat || !inside(start + half)) break;
    if (k > 0 && (k - 1) * stride + window >= slots * grid) break;
    const int64_t lastSlotFrame = frameAt(slotTime(slots - 1));
    for (int i = 0; i < T; ++i) {
      const int64_t x = start + half + i * sample;
      if (inside(x)) {
        c.frames.push_back(frameAt(x));
      } else {
        c.frames.push_back(lastSlotFrame);
        ++c.segment.paddedFrames;
      }
    }
    c.segment.firstFrame = c.frames.front();
    plan.push_back(c);
    break;
  }
  return plan;
}

void expectEqual(const std::vector<Clip>& got, const std::vector<Clip>& want, double t0,
                 const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t k = 0; k < want.size(); ++k) {
    const auto& g = got[k].segment;
    const auto& w = want[k].segment;
    EXPECT_EQ(g.index, w.index) << what << " window " << k;
    EXPECT_NEAR(g.startTime, t0 + w.startTime, 1e-9) << what << " window " << k;
    EXPECT_NEAR(g.endTime, t0 + w.endTime, 1e-9) << what << " window " << k;
    EXPECT_EQ(g.firstFrame, w.firstFrame) << what << " window " << k;
    EXPECT_EQ(g.lastFrame, w.lastFrame) << what << " window " << k;
    EXPECT_EQ(g.paddedFrames, w.paddedFrames) << what << " window " << k;
    EXPECT_EQ(got[k].frames, want[k].frames) << what << " window " << k;
  }
}

BucketSpec bySeconds(double S, double D, int T, TailPolicy tail = TailPolicy::Repeat) {
  BucketSpec b;
  b.numFrames = T;
  b.samplingRate = 2;  // the model's; does not apply by time
  b.clipSeconds = S;
  b.clipStrideSeconds = D;
  b.tail = tail;
  return b;
}

struct Rate {
  int64_t num, den;
  int64_t timeBase;  // pts units per second, as a container stores them
};
const Rate kRates[] = {
    {24, 1, 12288}, {25, 1, 12800}, {30000, 1001, 30000}, {30, 1, 15360}, {60, 1, 15360}};

}  // namespace

TEST(ClipSeconds, TheSequenceOfEachSetting) {
  ClipSequence a = clipSequence(bySeconds(2, 0, 32), 0);
  EXPECT_TRUE(a.byTime);
  EXPECT_DOUBLE_EQ(a.fps, 16.0);
  EXPECT_DOUBLE_EQ(a.phase, 1.0 / 32);
  EXPECT_EQ(a.buckets.numFrames, 32);
  EXPECT_EQ(a.buckets.samplingRate, 1);
  EXPECT_EQ(a.buckets.step(), 32);
  ClipSequence b = clipSequence(bySeconds(2, 1, 8), 0);  // stride of 4 sample intervals
  EXPECT_EQ(b.buckets.samplingRate, 1);
  EXPECT_EQ(b.buckets.step(), 4);
  ClipSequence c = clipSequence(bySeconds(2, 0.5, 1), 0);  // a quarter of a sample interval
  EXPECT_EQ(c.buckets.samplingRate, 4);
  EXPECT_EQ(c.buckets.step(), 1);
  EXPECT_DOUBLE_EQ(c.fps, 2.0);
  EXPECT_DOUBLE_EQ(c.phase, 1.0);
  // Frame-based clips are untouched.
  BucketSpec frames;
  ClipSequence d = clipSequence(frames, 10);
  EXPECT_FALSE(d.byTime);
  EXPECT_DOUBLE_EQ(d.fps, 10.0);
  EXPECT_EQ(d.buckets.step(), frames.step());
}

TEST(ClipSeconds, ContradictoryOptionsAreRefusedByName) {
  auto message = [](const BucketSpec& b, double fps) -> std::string {
    try {
      clipSequence(b, fps);
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  };
  EXPECT_NE(message(bySeconds(2, 0, 32), 30).find("--fps"), std::string::npos);
  BucketSpec strided = bySeconds(2, 0, 32);
  strided.stride = 16;
  EXPECT_NE(message(strided, 0).find("--stride"), std::string::npos);
  BucketSpec strideOnly;
  strideOnly.clipStrideSeconds = 1;
  EXPECT_NE(message(strideOnly, 0).find("--clip-stride-seconds needs --clip-seconds"),
            std::string::npos);
  EXPECT_NE(message(bySeconds(-1, 0, 32), 0).find("--clip-seconds"), std::string::npos);
  EXPECT_NE(message(bySeconds(2, 3.14159, 32), 0).find("not a simple fraction"), std::string::npos);
  EXPECT_NE(message(bySeconds(0.01, 0, 32), 0).find("times a second"), std::string::npos);
}

// Hand-computed: 25 fps, 2 s windows of 8 frames: samples at 0.125, 0.375, ... 1.875 s.
TEST(ClipSeconds, TwentyFiveFpsByHand) {
  std::vector<double> times;
  for (int j = 0; j < 110; ++j) times.push_back(j * 512 / 12800.0);  // 4.4 s
  auto clips = run(bySeconds(2, 0, 8), times, 1 / 25.0);
  ASSERT_EQ(clips.size(), 3u);
  EXPECT_EQ(clips[0].frames, (std::vector<int64_t>{3, 9, 15, 21, 28, 34, 40, 46}));
  EXPECT_EQ(clips[1].frames, (std::vector<int64_t>{53, 59, 65, 71, 78, 84, 90, 96}));
  // The tail [4, 6): its samples 4.125 and 4.375 s are inside the 4.4 s video, the rest are not.
  EXPECT_EQ(clips[2].frames, (std::vector<int64_t>{103, 109, 109, 109, 109, 109, 109, 109}));
  EXPECT_EQ(clips[2].segment.paddedFrames, 6);
  EXPECT_DOUBLE_EQ(clips[1].segment.startTime, 2.0);
  EXPECT_DOUBLE_EQ(clips[1].segment.endTime, 4.0);
  EXPECT_DOUBLE_EQ(clips[2].segment.startTime, 4.0);
  EXPECT_DOUBLE_EQ(clips[2].segment.endTime, 4.5);  // the end of the grid step of 4.375 s
}

// Hand-computed: 29.97 fps (frame j at j*1001/30000 s) differs from 30 fps after the first window.
TEST(ClipSeconds, NtscFpsByHand) {
  std::vector<double> ntsc, thirty;
  for (int j = 0; j < 130; ++j) {
    ntsc.push_back(j * 1001 / 30000.0);
    thirty.push_back(j * 512 / 15360.0);
  }
  auto a = run(bySeconds(2, 0, 8), ntsc, 1001 / 30000.0);
  auto b = run(bySeconds(2, 0, 8), thirty, 1 / 30.0);
  ASSERT_GE(a.size(), 2u);
  ASSERT_GE(b.size(), 2u);
  EXPECT_EQ(a[0].frames, (std::vector<int64_t>{3, 11, 18, 26, 33, 41, 48, 56}));
  EXPECT_EQ(b[0].frames, (std::vector<int64_t>{3, 11, 18, 26, 33, 41, 48, 56}));
  // 2.125 s: frame 63 at 29.97 (63.69), 63 at 30 (63.75); 3.875 s: 116 (116.1) and 116 (116.25);
  // 2.375 s: 71 (71.18) and 71 (71.25); 3.625 s: 108 (108.6) and 108 (108.75)
  EXPECT_EQ(a[1].frames, (std::vector<int64_t>{63, 71, 78, 86, 93, 101, 108, 116}));
  EXPECT_EQ(b[1].frames, (std::vector<int64_t>{63, 71, 78, 86, 93, 101, 108, 116}));
  // 4.125 s..: 123 at 29.97 (123.6), 123 at 30 (123.75); the 130-frame video ends at 4.338 s at
  // 29.97 and 4.333 s at 30: both a tail of one real sample.
  ASSERT_EQ(a.size(), 3u);
  ASSERT_EQ(b.size(), 3u);
  EXPECT_EQ(a[2].segment.paddedFrames, 7);
  EXPECT_EQ(b[2].segment.paddedFrames, 7);
}

// Every rate, several window settings and both ends of a video against the hand-computed plan.
TEST(ClipSeconds, EveryRateAgainstTheHandPlan) {
  struct Setting {
    Q s, d;
    int T, r;
  };
  const Setting settings[] = {
      {{2, 1}, {2, 1}, 32, 1},  // SlowFast 8x8 on 2 s windows (QVHighlights, TACoS)
      {{1, 1}, {1, 1}, 32, 1},  // ... on 1 s windows (Charades-STA)
      {{2, 1}, {1, 1}, 8, 1},   // overlapping windows, a stride of 4 sample intervals
      {{2, 1}, {1, 2}, 1, 4},   // one frame per window (its centre), windows every 0.5 s
      {{3, 2}, {3, 2}, 4, 1},   // 1.5 s windows
  };
  size_t compared = 0;
  for (const Rate& rate : kRates) {
    for (const Setting& st : settings) {
      for (int64_t frames : {1, 7, 61, 120, 121, 437}) {
        for (bool repeat : {true, false}) {
          std::vector<double> times;
          // Times as FFmpeg gives them: pts (exact multiples of the frame duration in the
          // container's time base) x the time base, with a start offset.
          const double t0 = 0.5;
          const int64_t ticks = rate.timeBase * rate.den / rate.num;  // per frame
          for (int64_t j = 0; j < frames; ++j)
            times.push_back(t0 + double(j * ticks) / rate.timeBase);
          const BucketSpec spec = bySeconds(double(st.s.n) / st.s.d, double(st.d.n) / st.d.d, st.T,
                                            repeat ? TailPolicy::Repeat : TailPolicy::Drop);
          auto got = run(spec, times, double(rate.den) / rate.num);
          auto want = handPlan(frames, rate.num, rate.den, st.s, st.d, st.T, st.r, repeat);
          compared += want.size();
          expectEqual(got, want, t0,
                      std::to_string(rate.num) + "/" + std::to_string(rate.den) + " fps, " +
                          std::to_string(frames) + " frames, S=" + std::to_string(st.s.n) + "/" +
                          std::to_string(st.s.d) + " D=" + std::to_string(st.d.n) + "/" +
                          std::to_string(st.d.d) + " T=" + std::to_string(st.T) +
                          (repeat ? " repeat" : " drop"));
        }
      }
    }
  }
  EXPECT_GT(compared, 1000u);  // windows compared: the sweep is not empty
}

// Variable frame rate, by hand: 1 s windows of 4 frames, samples at .125, .375, .625, .875 s.
TEST(ClipSeconds, VariableFrameRateByHand) {
  const std::vector<double> times{0.0, 0.2, 0.3, 0.7, 1.0, 1.05, 1.6, 1.9};
  const double meanInterval = 1.9 / 7;  // what the extractor gives as the last frame's duration
  auto clips = run(bySeconds(1, 0, 4), times, meanInterval);  // the video ends at 2.1714 s
  ASSERT_EQ(clips.size(), 3u);
  EXPECT_EQ(clips[0].frames, (std::vector<int64_t>{0, 2, 2, 3}));
  EXPECT_EQ(clips[1].frames, (std::vector<int64_t>{5, 5, 6, 6}));
  EXPECT_EQ(clips[2].frames, (std::vector<int64_t>{7, 7, 7, 7}));  // 2.125 s, then padding
  EXPECT_EQ(clips[2].segment.paddedFrames, 3);
  EXPECT_DOUBLE_EQ(clips[0].segment.startTime, 0.0);
  EXPECT_DOUBLE_EQ(clips[0].segment.endTime, 1.0);
  EXPECT_DOUBLE_EQ(clips[1].segment.endTime, 2.0);
  EXPECT_DOUBLE_EQ(clips[2].segment.endTime, 2.25);
  EXPECT_EQ(clips[1].segment.firstFrame, 5);
  EXPECT_EQ(clips[1].segment.lastFrame, 6);
  // --tail sample: 4 seeded picks among the tail's one real slot (padded_frames still counts
  // the positions past the end, as for frame-based clips).
  auto sampled = run(bySeconds(1, 0, 4, TailPolicy::Sample), times, meanInterval);
  ASSERT_EQ(sampled.size(), 3u);
  EXPECT_EQ(sampled[2].frames, (std::vector<int64_t>{7, 7, 7, 7}));
  EXPECT_EQ(sampled[2].segment.paddedFrames, 3);
}

// A jump of more than kMaxGapSeconds cannot be bridged by windows: the video fails, saying why.
TEST(ClipSeconds, ATimestampBreakFailsTheVideo) {
  try {
    run(bySeconds(2, 0, 8), {0.0, 0.04, 0.08, 500.0, 500.04}, 0.04);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--clip-seconds"), std::string::npos) << e.what();
  }
}

TEST(ClipSeconds, TheDescriptionNamesTheWindows) {
  EXPECT_EQ(timeWindowsDescription(bySeconds(2, 0, 32)),
            "one row per 2 s window of presentation time every 2 s (--clip-seconds), its 32 "
            "frames at window start + (i + 0.5) x 0.0625 s");
  EXPECT_EQ(timeWindowsDescription(BucketSpec{}), "");
}
