#include <gtest/gtest.h>

#include <chrono>
#include <cmath>

#include "vidfeat/clip/fps_resampler.h"
#include "vidfeat/common/error.h"

using vidfeat::FpsResampler;

namespace {
std::vector<FpsResampler::Slot> resample(FpsResampler& r, const std::vector<double>& times,
                                         double lastDuration) {
  std::vector<FpsResampler::Slot> all;
  for (size_t i = 0; i < times.size(); ++i) {
    auto s = r.push(int64_t(i), times[i]);
    all.insert(all.end(), s.begin(), s.end());
  }
  auto s = r.finish(lastDuration);
  all.insert(all.end(), s.begin(), s.end());
  return all;
}
}  // namespace

TEST(FpsResampler, ThirtyToTenTakesEveryThirdFrame) {
  // 90 frames at 30 fps with a 1.5 s start offset, times as FFmpeg gives them (pts * time base).
  std::vector<double> times;
  for (int i = 0; i < 90; ++i) times.push_back(1.5 + (i * 512) / 15360.0);
  FpsResampler r(10.0);
  auto slots = resample(r, times, 1 / 30.0);
  ASSERT_EQ(slots.size(), 30u);
  for (size_t k = 0; k < slots.size(); ++k) {
    EXPECT_EQ(slots[k].sourceIndex, int64_t(3 * k));
    EXPECT_NEAR(slots[k].time, 1.5 + k / 10.0, 1e-9);
  }
}

TEST(FpsResampler, UpsamplingRepeatsFrames) {
  FpsResampler r(4.0);
  auto slots = resample(r, {0.0, 0.5, 1.0}, 0.5);  // 2 fps -> 4 fps: each frame twice
  ASSERT_EQ(slots.size(), 6u);
  std::vector<int64_t> idx;
  for (auto& s : slots) idx.push_back(s.sourceIndex);
  EXPECT_EQ(idx, (std::vector<int64_t>{0, 0, 1, 1, 2, 2}));
}

TEST(FpsResampler, VariableFrameRateUsesPresentationTimes) {
  FpsResampler r(10.0);
  // a frame held for 0.35 s, then fast frames
  auto slots = resample(r, {0.0, 0.35, 0.36, 0.37, 0.5}, 0.1);
  std::vector<int64_t> idx;
  for (auto& s : slots) idx.push_back(s.sourceIndex);
  // slots at 0, .1, .2, .3 -> frame 0; .4 -> frame 3 (0.37 <= .4 < .5); .5 -> frame 4
  EXPECT_EQ(idx, (std::vector<int64_t>{0, 0, 0, 0, 3, 4}));
}

TEST(FpsResampler, RejectsNonPositiveRates) {
  EXPECT_THROW(FpsResampler(0.0), vidfeat::Error);
  EXPECT_THROW(FpsResampler(-5.0), vidfeat::Error);
}

// Issue 15: a 1e9 s timestamp jump made 3e10 slots (bad_alloc at 2.3 GB). A gap over
// kMaxGapSeconds is a break: the frame before it keeps one output interval, the grid restarts.
TEST(FpsResampler, GapOverTheBoundIsABreakNotSlotsToFill) {
  FpsResampler r(30.0);
  const auto start = std::chrono::steady_clock::now();
  // 3 frames at 30 fps, a jump of 1e9 s, 3 more; the mean interval (what the extractor gives
  // finish() as the last frame's duration) is 2e8 s.
  auto slots = resample(r, {0.0, 1 / 30.0, 2 / 30.0, 1e9, 1e9 + 1 / 30.0, 1e9 + 2 / 30.0}, 2e8);
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 0.1);
  std::vector<int64_t> idx;
  for (auto& s : slots) idx.push_back(s.sourceIndex);
  EXPECT_EQ(idx, (std::vector<int64_t>{0, 1, 2, 3, 4, 5}));
  EXPECT_NEAR(slots[3].time, 1e9, 1e-6);  // the grid restarts at the frame after the break
  EXPECT_NEAR(slots[5].time, 1e9 + 2 / 30.0, 1e-6);
}

TEST(FpsResampler, GapWithinTheBoundIsStillAHold) {
  FpsResampler r(2.0);
  // A still frame for 50 s (< kMaxGapSeconds): shown in every slot until the next frame.
  auto slots = resample(r, {0.0, 50.0}, 0.5);
  ASSERT_EQ(slots.size(), 101u);
  for (size_t k = 0; k < 100; ++k) EXPECT_EQ(slots[k].sourceIndex, 0);
  EXPECT_EQ(slots[100].sourceIndex, 1);
  EXPECT_GT(vidfeat::kMaxGapSeconds, 50.0);
}

TEST(FpsResampler, NonFiniteTimeIsAnError) {
  FpsResampler r(10.0);
  r.push(0, 0.0);
  EXPECT_THROW(r.push(1, std::nan("")), vidfeat::Error);
}
