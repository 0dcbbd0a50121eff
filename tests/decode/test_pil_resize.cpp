// CLIP's preprocessing scale (DATA.TEST_RESIZE pil_bicubic) against Pillow itself, byte for byte:
// PilBicubicResizer on random RGB images of the shapes vidfeat scales (down by up to 8x, up, one
// axis only, 1x1), and VideoDecoder's convert() with ResizeFilter::PilBicubic on every good file of
// the generated corpus (rotated ones included: Pillow sees the picture upright) against the same
// file decoded at display size and resized by Pillow. Pillow runs in Debian's python3 (python3-pil,
// installed by tools/setup.sh), reading and writing binary PPM.
#include <gtest/gtest.h>

#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "../../src/decode/frame_convert.h"
#include "decode_helpers.h"
#include "pillow.h"
#include "test_support.h"

namespace vidfeat {
namespace {

namespace fs = std::filesystem;
using decodetest::differing;
using decodetest::Image;
using decodetest::pillowResize;

TEST(PilBicubic, EqualsPillowOnRandomImages) {
  struct Case {
    int inW, inH, outW, outH;
  };
  // 640x360 -> 398x224 (torchvision's size for CLIP), 1920x1080 and 1280x720 (8.6x and 5.7x
  // down: wide taps), upscales, odd sizes, one axis unchanged each way, a single pixel.
  const std::vector<Case> cases = {
      {640, 360, 398, 224}, {1920, 1080, 398, 224}, {1280, 720, 398, 224},
      {100, 60, 373, 224},  {333, 517, 224, 347},   {300, 224, 240, 224},
      {224, 300, 224, 250}, {1, 1, 224, 224},       {225, 224, 224, 224}};
  std::mt19937 rng(5);
  for (const auto& c : cases) {
    SCOPED_TRACE(std::to_string(c.inW) + "x" + std::to_string(c.inH) + " -> " +
                 std::to_string(c.outW) + "x" + std::to_string(c.outH));
    Image in{c.inW, c.inH, {}};
    in.rgb.resize(size_t(c.inW) * size_t(c.inH) * 3);
    // Half noise (every value, taps that clip at 0 and 255), half smooth (rounding near .5).
    for (size_t i = 0; i < in.rgb.size(); ++i)
      in.rgb[i] = (i / 3) % size_t(c.inW) < size_t(c.inW) / 2
                      ? uint8_t(rng())
                      : uint8_t((i / 3 / size_t(c.inW) * 7 + (i / 3) % size_t(c.inW) * 3) % 256);
    const auto ref = pillowResize({in}, c.outW, c.outH,
                                  std::to_string(c.inW) + "x" + std::to_string(c.inH) + "_" +
                                      std::to_string(c.outW) + "x" + std::to_string(c.outH));
    ASSERT_EQ(ref[0].w, c.outW);
    PilBicubicResizer resizer;
    std::vector<uint8_t> ours(size_t(c.outW) * size_t(c.outH) * 3);
    for (int pass = 0; pass < 2; ++pass) {  // the second with the taps cached
      resizer.resize(in.rgb.data(), c.inW, c.inH, size_t(c.inW) * 3, ours.data(), c.outW, c.outH);
      EXPECT_EQ(differing(ours, ref[0].rgb), 0u) << "pass " << pass;
    }
  }
}

// A noise pattern has no taps that sum to exactly 1.0: the fixed-point weights must be Pillow's.
TEST(PilBicubic, TapsAreNormalisedFixedPoint) {
  PilBicubicResizer::Taps t;
  PilBicubicResizer::computeTaps(1920, 398, t);
  ASSERT_EQ(int(t.first.size()), 398);
  EXPECT_EQ(t.ksize, int(std::ceil(2.0 * 1920 / 398)) * 2 + 1);
  for (int i = 0; i < 398; ++i) {
    int64_t sum = 0;
    for (int x = 0; x < t.count[size_t(i)]; ++x)
      sum += t.weights[size_t(i) * size_t(t.ksize) + size_t(x)];
    EXPECT_NEAR(double(sum), double(1 << 22), double(t.count[size_t(i)]));  // each rounded once
    EXPECT_GE(t.first[size_t(i)], 0);
    EXPECT_LE(t.first[size_t(i)] + t.count[size_t(i)], 1920);
  }
}

TEST(PilBicubicDecode, CorpusFramesEqualPillowOnTheUprightPicture) {
  int checked = 0;
  std::set<int> rotations;
  for (const testing::CorpusEntry& e : testing::corpus()) {
    if (e.kind != "good" || e.displayWidth < 2 || e.displayHeight < 2) continue;
    SCOPED_TRACE(e.name);
    // Every third frame at display size, and the same frames resized by the decoder.
    const int w = e.displayWidth > e.displayHeight ? 224 * e.displayWidth / e.displayHeight : 224;
    const int h = e.displayWidth > e.displayHeight ? 224 : 224 * e.displayHeight / e.displayWidth;
    std::vector<Image> upright;
    std::vector<std::vector<uint8_t>> ours;
    {
      VideoDecoder full(e.path().string()), scaled(e.path().string());
      scaled.setOutputSize(w, h, ResizeFilter::PilBicubic);
      DecodedFrame f, g;
      for (int64_t i = 0; full.next(f) && scaled.next(g); ++i) {
        if (i % 3 || upright.size() >= 4) continue;
        upright.push_back(
            {full.outputWidth(), full.outputHeight(), decodetest::convertFrame(full)});
        ours.push_back(decodetest::convertFrame(scaled));
      }
    }
    ASSERT_FALSE(upright.empty());
    const auto ref = pillowResize(upright, w, h, e.name);
    for (size_t i = 0; i < ref.size(); ++i)
      EXPECT_EQ(differing(ours[i], ref[i].rgb), 0u) << "frame " << 3 * i;
    rotations.insert(e.rotation);
    ++checked;
  }
  EXPECT_GE(checked, 5);
  EXPECT_EQ(rotations, (std::set<int>{0, 90, 180, 270}));
}

}  // namespace
}  // namespace vidfeat
