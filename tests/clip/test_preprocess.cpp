#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "vidfeat/clip/preprocess.h"
#include "vidfeat/common/error.h"
#include "vidfeat/config/config.h"

using namespace vidfeat;

TEST(Preprocess, ShortSideScaleFollowsPySlowFast) {
  // floor(long / short * size), computed by hand
  EXPECT_EQ(shortSideScaledSize(640, 360, 256), std::make_pair(455, 256));  // 455.11
  EXPECT_EQ(shortSideScaledSize(320, 240, 256), std::make_pair(341, 256));  // 341.33
  EXPECT_EQ(shortSideScaledSize(320, 568, 256), std::make_pair(256, 454));  // 454.4
  EXPECT_EQ(shortSideScaledSize(256, 300, 256), std::make_pair(256, 300));  // already there
  EXPECT_EQ(shortSideScaledSize(1, 1, 182), std::make_pair(182, 182));
}

TEST(Preprocess, CropOffsetsFollowUniformCrop) {
  EXPECT_EQ(cropOffset(341, 256, 256, 1), std::make_pair(43, 0));  // ceil(85 / 2)
  EXPECT_EQ(cropOffset(341, 256, 256, 0), std::make_pair(0, 0));
  EXPECT_EQ(cropOffset(341, 256, 256, 2), std::make_pair(85, 0));
  EXPECT_EQ(cropOffset(256, 454, 256, 1), std::make_pair(0, 99));
  EXPECT_EQ(cropOffset(256, 454, 256, 2), std::make_pair(0, 198));
}

TEST(Preprocess, TorchvisionResizeAndCenterCropRules) {
  // Resize(224): short side 224, long side int(224 * long / short), by hand.
  EXPECT_EQ(torchvisionResizedSize(640, 360, 224), std::make_pair(398, 224));    // 398.2
  EXPECT_EQ(torchvisionResizedSize(1920, 1080, 224), std::make_pair(398, 224));  // 398.2
  EXPECT_EQ(torchvisionResizedSize(360, 640, 224), std::make_pair(224, 398));
  EXPECT_EQ(torchvisionResizedSize(400, 300, 224), std::make_pair(298, 224));  // 298.67
  EXPECT_EQ(torchvisionResizedSize(1, 1, 224), std::make_pair(224, 224));
  // 700 / 3 * 224 = 52266.67 / ... : PySlowFast's floor(long / short * size) and torchvision's
  // int(size * long / short) agree here; the rounding rule below is where they part.
  EXPECT_EQ(torchvisionResizedSize(700, 300, 224), std::make_pair(522, 224));
  // CenterCrop: int(round((w - 224) / 2)), Python's round: halves to even.
  EXPECT_EQ(torchvisionCropOffset(398, 224, 224), std::make_pair(87, 0));  // 87.0
  EXPECT_EQ(torchvisionCropOffset(399, 224, 224), std::make_pair(88, 0));  // 87.5 -> 88
  EXPECT_EQ(torchvisionCropOffset(397, 224, 224), std::make_pair(86, 0));  // 86.5 -> 86
  EXPECT_EQ(torchvisionCropOffset(224, 401, 224), std::make_pair(0, 88));  // 88.5 -> 88
  EXPECT_EQ(cropOffset(397, 224, 224, 1), std::make_pair(87, 0));          // PySlowFast: ceil(86.5)
}

TEST(Preprocess, TestResizeKeyChoosesTheRules) {
  auto cfg = Config::load(std::string(VIDFEAT_SOURCE_DIR) + "/configs/CLIP/ViT-B-32.yaml");
  const auto clip = PreprocessSpec::fromConfig(cfg);
  EXPECT_EQ(clip.resize, ResizeFilter::PilBicubic);
  EXPECT_EQ(clip.shortSide, 224);
  EXPECT_EQ(clip.scaledSize(640, 360), std::make_pair(398, 224));
  EXPECT_EQ(clip.cropAt(397, 224), std::make_pair(86, 0));
  EXPECT_FLOAT_EQ(clip.mean[0], 0.48145466f);
  EXPECT_FLOAT_EQ(clip.std[2], 0.27577711f);
  auto pysf = PreprocessSpec::fromConfig(
      Config::load(std::string(VIDFEAT_SOURCE_DIR) + "/configs/Kinetics/SLOWFAST_8x8_R50.yaml"));
  EXPECT_EQ(pysf.resize, ResizeFilter::TorchBilinear);
  EXPECT_EQ(pysf.cropAt(429, 256), std::make_pair(87, 0));  // ceil(86.5)
  try {
    PreprocessSpec::fromConfig(
        Config::load(std::string(VIDFEAT_SOURCE_DIR) + "/configs/CLIP/ViT-B-32.yaml",
                     {"DATA.TEST_RESIZE=lanczos"}));
    FAIL() << "DATA.TEST_RESIZE lanczos accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("DATA.TEST_RESIZE"), std::string::npos) << e.what();
  }
}

TEST(Preprocess, PackMatchesDirectFormula) {
  const int W = 7, H = 5, T = 3;
  PreprocessSpec spec;
  spec.cropSize = 4;
  spec.mean = {0.1f, 0.5f, 0.9f};
  spec.std = {0.2f, 0.3f, 0.4f};
  std::mt19937 rng(3);
  std::vector<std::vector<uint8_t>> frames(T, std::vector<uint8_t>(W * H * 3));
  std::vector<const uint8_t*> ptrs;
  for (auto& f : frames) {
    for (auto& v : f) v = static_cast<uint8_t>(rng() % 256);
    ptrs.push_back(f.data());
  }
  std::vector<float> out(3 * T * 4 * 4);
  packClip(ptrs, W, H, spec, out.data());
  // centre crop of 7x5 at 4: x0 = ceil(1.5) = 2, y0 = ceil(0.5) = 1
  for (int c = 0; c < 3; ++c)
    for (int t = 0; t < T; ++t)
      for (int y = 0; y < 4; ++y)
        for (int x = 0; x < 4; ++x) {
          double v = frames[t][((y + 1) * W + (x + 2)) * 3 + c];
          double want = (v / 255.0 - spec.mean[c]) / spec.std[c];
          EXPECT_NEAR(out[((c * T + t) * 4 + y) * 4 + x], want, 1e-5);
        }
}

TEST(Preprocess, ReverseInputChannelOutputsBgrAfterRgbNormalisation) {
  PreprocessSpec spec;
  spec.cropSize = 1;
  spec.mean = {0.1f, 0.5f, 0.9f};
  spec.std = {0.2f, 0.3f, 0.4f};
  const uint8_t px[3] = {10, 20, 30};
  float rgb[3], bgr[3];
  packClip({px}, 1, 1, spec, rgb);
  spec.reverseChannels = true;
  packClip({px}, 1, 1, spec, bgr);
  for (int c = 0; c < 3; ++c) EXPECT_FLOAT_EQ(bgr[c], rgb[2 - c]);
  EXPECT_NEAR(bgr[0], (30 / 255.0 - 0.9) / 0.4, 1e-5);  // B, normalised as channel 2
  Config charades = Config::fromYaml("DATA:\n  REVERSE_INPUT_CHANNEL: True\n");
  EXPECT_TRUE(PreprocessSpec::fromConfig(charades).reverseChannels);
  EXPECT_FALSE(PreprocessSpec::fromConfig(Config()).reverseChannels);
}

TEST(Preprocess, SpecFromConfigAndErrors) {
  Config cfg =
      Config::fromYaml("DATA:\n  TRAIN_JITTER_SCALES: [182, 228]\n  TEST_CROP_SIZE: 160\n");
  auto s = PreprocessSpec::fromConfig(cfg);
  EXPECT_EQ(s.shortSide, 182);
  EXPECT_EQ(s.cropSize, 160);
  EXPECT_FLOAT_EQ(s.mean[0], 0.45f);
  EXPECT_FLOAT_EQ(s.std[2], 0.225f);
  Config bad =
      Config::fromYaml("DATA:\n  TRAIN_JITTER_SCALES: [128, 160]\n  TEST_CROP_SIZE: 256\n");
  EXPECT_THROW(PreprocessSpec::fromConfig(bad), Error);
  std::vector<uint8_t> tiny(3 * 3 * 3);
  PreprocessSpec spec;
  std::vector<float> out(3 * 256 * 256);
  EXPECT_THROW(packClip({tiny.data()}, 3, 3, spec, out.data()), Error);
}
