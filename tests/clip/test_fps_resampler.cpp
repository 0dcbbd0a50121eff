#include <gtest/gtest.h>

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
