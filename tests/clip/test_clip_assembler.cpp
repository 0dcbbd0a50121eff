#include <gtest/gtest.h>

#include "vidfeat/clip/clip_assembler.h"

using namespace vidfeat;

namespace {

FramePixels pixelsOf(int64_t i) {
  return std::make_shared<const std::vector<uint8_t>>(1, static_cast<uint8_t>(i % 251));
}

struct StreamResult {
  std::vector<AssembledClip> clips;
  int64_t converted = 0;
  size_t maxHeld = 0;
};

// Streams n frames at 25 fps through an assembler, converting only the frames it asks for.
StreamResult stream(int64_t n, const BucketSpec& s, uint64_t seed = 7) {
  StreamResult run;
  ClipAssembler a(s, seed);
  for (int64_t i = 0; i < n; ++i) {
    bool need = a.needsPixels(i);
    run.converted += need;
    a.push({i, i / 25.0}, need ? pixelsOf(i) : nullptr);
    for (auto& c : a.takeReady()) run.clips.push_back(std::move(c));
  }
  for (auto& c : a.finish(1 / 25.0, [&] { return pixelsOf(n - 1); }))
    run.clips.push_back(std::move(c));
  return run;
}

}  // namespace

TEST(ClipAssembler, StreamingEqualsThePlan) {
  for (auto tail : {TailPolicy::Repeat, TailPolicy::Sample, TailPolicy::Drop}) {
    for (int stride : {0, 4, 24}) {
      for (int64_t n : {1, 5, 31, 32, 33, 64, 65, 100}) {
        BucketSpec s;
        s.numFrames = 4;
        s.samplingRate = 4;
        s.stride = stride;
        s.tail = tail;
        auto plan = planClips(n, s, 7);
        StreamResult run = stream(n, s);
        ASSERT_EQ(run.clips.size(), plan.size()) << "n=" << n << " stride=" << stride;
        for (size_t k = 0; k < plan.size(); ++k) {
          const auto& seg = run.clips[k].segment;
          EXPECT_EQ(seg.index, plan[k].index);
          EXPECT_EQ(seg.firstFrame, plan[k].start);
          EXPECT_EQ(seg.lastFrame, plan[k].spanEnd - 1);
          EXPECT_EQ(seg.paddedFrames, plan[k].padded);
          EXPECT_DOUBLE_EQ(seg.startTime, plan[k].start / 25.0);
          EXPECT_DOUBLE_EQ(seg.endTime, plan[k].spanEnd / 25.0);
          ASSERT_EQ(run.clips[k].frames.size(), 4u);
          for (size_t j = 0; j < 4; ++j) {
            EXPECT_EQ((*run.clips[k].frames[j])[0], plan[k].frames[j] % 251) << "clip " << k;
          }
        }
      }
    }
  }
}

TEST(ClipAssembler, ConvertsOnlyTheFramesClipsUse) {
  BucketSpec s;  // 8 x 8
  StreamResult run = stream(640, s);
  EXPECT_EQ(run.clips.size(), 10u);
  EXPECT_EQ(run.converted, 80);  // 8 of every 64 frames
}

TEST(ClipAssembler, LastFrameFetchedOnlyForRepeatPadding) {
  BucketSpec s;
  int asked = 0;
  ClipAssembler a(s, 0);
  for (int64_t i = 0; i < 70; ++i) a.push({i, double(i)}, a.needsPixels(i) ? pixelsOf(i) : nullptr);
  auto clips = a.finish(1.0, [&] {
    ++asked;
    return pixelsOf(69);
  });
  ASSERT_EQ(clips.size(), 2u);
  EXPECT_EQ(asked, 1);
  EXPECT_EQ(clips[1].segment.paddedFrames, 7);
  for (int j = 1; j < 8; ++j) EXPECT_EQ((*clips[1].frames[j])[0], 69);
  EXPECT_EQ((*clips[1].frames[0])[0], 64);
}

TEST(ClipAssembler, MemoryBoundedForLongVideos) {
  BucketSpec s;
  ClipAssembler a(s, 0);
  size_t clips = 0;
  for (int64_t i = 0; i < 100000; ++i) {
    a.push({i, i / 30.0}, a.needsPixels(i) ? pixelsOf(i) : nullptr);
    clips += a.takeReady().size();
  }
  EXPECT_EQ(clips, 100000u / 64);
  EXPECT_LE(a.heldFrames(), size_t(s.span() + 1));
}
