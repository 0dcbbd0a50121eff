#include <gtest/gtest.h>

#include <set>

#include "vidfeat/clip/bucket_plan.h"
#include "vidfeat/common/error.h"

using namespace vidfeat;

namespace {
BucketSpec spec(int T, int r, TailPolicy tail = TailPolicy::Repeat, int stride = 0) {
  BucketSpec s;
  s.numFrames = T;
  s.samplingRate = r;
  s.tail = tail;
  s.stride = stride;
  return s;
}
}  // namespace

TEST(BucketPlan, ExactMultipleHasNoTail) {
  auto s = spec(8, 8);
  for (int k = 1; k <= 3; ++k) {
    auto clips = planClips(k * 64, s, 0);
    ASSERT_EQ(clips.size(), size_t(k));
    for (int i = 0; i < k; ++i) {
      EXPECT_EQ(clips[i].index, i);
      EXPECT_EQ(clips[i].start, i * 64);
      EXPECT_EQ(clips[i].spanEnd, (i + 1) * 64);
      EXPECT_EQ(clips[i].padded, 0);
      EXPECT_FALSE(clips[i].tail);
      for (int j = 0; j < 8; ++j) EXPECT_EQ(clips[i].frames[j], i * 64 + j * 8);
    }
  }
}

TEST(BucketPlan, OneFrameMoreMakesAPaddedTail) {
  auto s = spec(8, 8);
  auto clips = planClips(2 * 64 + 1, s, 0);
  ASSERT_EQ(clips.size(), 3u);
  const auto& t = clips[2];
  EXPECT_TRUE(t.tail);
  EXPECT_EQ(t.start, 128);
  EXPECT_EQ(t.spanEnd, 129);
  EXPECT_EQ(t.padded, 7);
  for (auto f : t.frames) EXPECT_EQ(f, 128);  // repeat the last real frame
}

TEST(BucketPlan, ShorterThanOneClipStillYieldsOneSegment) {
  auto s = spec(8, 8);
  auto clips = planClips(20, s, 0);  // positions 0,8,16 real; 24..56 padding
  ASSERT_EQ(clips.size(), 1u);
  EXPECT_TRUE(clips[0].tail);
  EXPECT_EQ(clips[0].padded, 5);
  EXPECT_EQ(clips[0].frames, (std::vector<int64_t>{0, 8, 16, 19, 19, 19, 19, 19}));
  EXPECT_EQ(clips[0].spanEnd, 20);
  // drop: nothing
  EXPECT_TRUE(planClips(20, spec(8, 8, TailPolicy::Drop), 0).empty());
  EXPECT_TRUE(planClips(0, s, 0).empty());
}

TEST(BucketPlan, LastSampledPositionPresentMeansFull) {
  // n = 57: position 56 (the 8th sample) exists, so clip 0 is full though its span is cut.
  auto clips = planClips(57, spec(8, 8, TailPolicy::Drop), 0);
  ASSERT_EQ(clips.size(), 1u);
  EXPECT_FALSE(clips[0].tail);
  EXPECT_EQ(clips[0].padded, 0);
  EXPECT_EQ(clips[0].spanEnd, 57);
}

TEST(BucketPlan, DropPolicyDropsOnlyTheTail) {
  auto clips = planClips(2 * 64 + 30, spec(8, 8, TailPolicy::Drop), 0);
  ASSERT_EQ(clips.size(), 2u);
  EXPECT_FALSE(clips[1].tail);
}

TEST(BucketPlan, SamplePolicyIsSeededSortedAndWithinTheTail) {
  auto s = spec(8, 8, TailPolicy::Sample);
  auto a = planClips(64 + 30, s, 1234);
  auto b = planClips(64 + 30, s, 1234);
  auto c = planClips(64 + 30, s, 999);
  ASSERT_EQ(a.size(), 2u);
  EXPECT_EQ(a[1].frames, b[1].frames);  // reproducible
  EXPECT_NE(a[1].frames, c[1].frames);  // depends on the seed
  EXPECT_TRUE(std::is_sorted(a[1].frames.begin(), a[1].frames.end()));
  for (auto f : a[1].frames) {
    EXPECT_GE(f, 64);
    EXPECT_LT(f, 94);
  }
  EXPECT_EQ(a[1].padded, 4);  // nominal positions 64..120 step 8: 64,72,80,88 real
  EXPECT_EQ(a[0].frames, planClips(64 + 30, spec(8, 8), 0)[0].frames);  // full clips unchanged
}

TEST(BucketPlan, StrideGivesOverlapAndNoRedundantTail) {
  auto s = spec(4, 2, TailPolicy::Repeat, 4);  // span 8, step 4
  auto clips = planClips(16, s, 0);
  // full clips start at 0,4,8 (last sampled 6,10,14 < 16); span of clip 2 reaches 16: no tail
  ASSERT_EQ(clips.size(), 3u);
  EXPECT_EQ(clips[2].start, 8);
  EXPECT_EQ(clips[1].frames, (std::vector<int64_t>{4, 6, 8, 10}));
  auto more = planClips(17, s, 0);  // frame 16 not covered: a tail starting at 12
  ASSERT_EQ(more.size(), 4u);
  EXPECT_TRUE(more[3].tail);
  EXPECT_EQ(more[3].start, 12);
  EXPECT_EQ(more[3].frames, (std::vector<int64_t>{12, 14, 16, 16}));
}

TEST(BucketPlan, TailSeedDependsOnVideoAndSeedOnly) {
  EXPECT_EQ(tailSeedFor(1, "a/b"), tailSeedFor(1, "a/b"));
  EXPECT_NE(tailSeedFor(1, "a/b"), tailSeedFor(1, "a/c"));
  EXPECT_NE(tailSeedFor(1, "a/b"), tailSeedFor(2, "a/b"));
}

TEST(BucketPlan, PolicyNamesAndValidation) {
  EXPECT_EQ(parseTailPolicy("sample"), TailPolicy::Sample);
  EXPECT_STREQ(tailPolicyName(TailPolicy::Drop), "drop");
  EXPECT_THROW(parseTailPolicy("pad"), Error);
  EXPECT_THROW(spec(0, 8).validate(), Error);
}
