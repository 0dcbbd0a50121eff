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
#include "test_support.h"

namespace vidfeat {
namespace {

namespace fs = std::filesystem;

struct Image {
  int w = 0, h = 0;
  std::vector<uint8_t> rgb;
};

void writePpm(const fs::path& p, const Image& im) {
  std::ofstream f(p, std::ios::binary);
  f << "P6\n" << im.w << " " << im.h << "\n255\n";
  f.write(reinterpret_cast<const char*>(im.rgb.data()), std::streamsize(im.rgb.size()));
}

Image readPpm(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::string magic;
  int maxval = 0;
  Image im;
  f >> magic >> im.w >> im.h >> maxval;
  f.get();
  EXPECT_EQ(magic, "P6");
  EXPECT_EQ(maxval, 255);
  im.rgb.resize(size_t(im.w) * size_t(im.h) * 3);
  f.read(reinterpret_cast<char*>(im.rgb.data()), std::streamsize(im.rgb.size()));
  EXPECT_TRUE(f) << p;
  return im;
}

// Pillow's Image.resize((w, h), Image.BICUBIC) of each input file, as torchvision's Resize calls
// it.
std::vector<Image> pillowResize(const std::vector<Image>& inputs, int w, int h,
                                const std::string& tag) {
  std::string safe = tag;  // corpus names have spaces and dashes; the folder is a shell argument
  for (char& ch : safe)
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  const fs::path dir = testing::binaryDir() / ("pil_resize_" + safe);
  fs::create_directories(dir);
  std::string list;
  for (size_t i = 0; i < inputs.size(); ++i) {
    writePpm(dir / (std::to_string(i) + ".ppm"), inputs[i]);
    list += (i ? "," : "") + std::to_string(i);
  }
  const std::string script =
      "import sys\nfrom PIL import Image\nd, w, h = sys.argv[1], int(sys.argv[2]), "
      "int(sys.argv[3])\nfor n in sys.argv[4].split(','):\n"
      "    Image.open(f'{d}/{n}.ppm').resize((w, h), Image.BICUBIC)"
      ".save(f'{d}/{n}.out.ppm')\n";
  std::ofstream(dir / "resize.py") << script;
  const std::string cmd = "/usr/bin/python3 " + (dir / "resize.py").string() + " " + dir.string() +
                          " " + std::to_string(w) + " " + std::to_string(h) + " " + list;
  const int rc = std::system(cmd.c_str());
  EXPECT_EQ(rc, 0) << cmd << " (Debian's python3-pil: tools/setup.sh installs it)";
  std::vector<Image> out;
  for (size_t i = 0; i < inputs.size(); ++i)
    out.push_back(readPpm(dir / (std::to_string(i) + ".out.ppm")));
  return out;
}

size_t differing(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
  if (a.size() != b.size()) return std::max(a.size(), b.size());
  size_t n = 0;
  for (size_t i = 0; i < a.size(); ++i) n += a[i] != b[i];
  return n;
}

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
