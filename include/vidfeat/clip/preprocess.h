#pragma once
// PySlowFast's test-time preprocessing of a clip: uint8 RGB -> /255 -> (x - DATA.MEAN) / DATA.STD,
// short side scaled, centre crop, layout C x T x H x W. The scaling is not done here: the decoder
// delivers frames already scaled (VideoDecoder::setOutputSize / convert: libswscale converts to
// RGB at the decoded size, then a bilinear resize equal to torch's interpolate with
// align_corners=False, src/decode/frame_convert.cpp); shortSideScaledSize gives that size.
//
// Scaling is linear, so resizing the uint8 frames before normalising equals PySlowFast's
// normalise-then-resize up to uint8 rounding (< 0.5/255).
#include <array>
#include <cstdint>
#include <utility>
#include <vector>

#include "vidfeat/common/resize_filter.h"

namespace vidfeat {

class Config;

struct PreprocessSpec {
  int shortSide = 256;   // frames are scaled so their shorter side is this long
  int cropSize = 256;    // DATA.TEST_CROP_SIZE
  int spatialIndex = 1;  // uniform_crop: 0 left/top, 1 centre, 2 right/bottom
  std::array<float, 3> mean{0.45f, 0.45f, 0.45f};
  std::array<float, 3> std{0.225f, 0.225f, 0.225f};
  // DATA.REVERSE_INPUT_CHANNEL (Charades, SSv2 configs): after normalising with the RGB-ordered
  // MEAN/STD, the channels are output as B, G, R (PySlowFast's pack_pathway_output).
  bool reverseChannels = false;
  // DATA.TEST_RESIZE: bilinear (PySlowFast: TorchBilinear, shortSideScaledSize, cropOffset) or
  // pil_bicubic (torchvision on a PIL image: PilBicubic, torchvisionResizedSize,
  // torchvisionCropOffset).
  ResizeFilter resize = ResizeFilter::TorchBilinear;

  // From DATA.TRAIN_JITTER_SCALES[0] (the seed's scale), DATA.TEST_CROP_SIZE, DATA.MEAN, DATA.STD,
  // DATA.REVERSE_INPUT_CHANNEL, DATA.TEST_RESIZE.
  static PreprocessSpec fromConfig(const Config& cfg);

  // The size frames of width x height are scaled to, and the crop's top-left corner in it, by
  // this spec's rules.
  std::pair<int, int> scaledSize(int width, int height) const;
  std::pair<int, int> cropAt(int width, int height) const;
};

// Size after PySlowFast's short-side scaling (random_short_side_scale_jitter with a fixed size):
// the short side becomes `size`, the long side floor(long / short * size).
std::pair<int, int> shortSideScaledSize(int width, int height, int size);

// Top-left corner of the crop (uniform_crop): {x, y}.
std::pair<int, int> cropOffset(int width, int height, int size, int spatialIndex);

// torchvision's Resize(size) with an int size: the short side becomes `size`, the long side
// int(size * long / short) (exact integer division here; PySlowFast's floor(long / short * size)
// can differ by float rounding).
std::pair<int, int> torchvisionResizedSize(int width, int height, int size);
// torchvision's CenterCrop: {int(round((width - size) / 2)), int(round((height - size) / 2))},
// Python's round (halves to even).
std::pair<int, int> torchvisionCropOffset(int width, int height, int size);

// uint8 -> model input, per output channel plane k (after DATA.REVERSE_INPUT_CHANNEL):
// value = float(byte) * scale[k] + shift[k], that is (x / 255 - MEAN) / STD folded into one
// multiply and one add, each rounded to float (packClip on the CPU, FeatureModel::extractBytes on
// a device: the same two roundings, so the same floats).
struct ClipNormalisation {
  std::array<float, 3> scale{1.0f, 1.0f, 1.0f};
  std::array<float, 3> shift{0.0f, 0.0f, 0.0f};
};
ClipNormalisation normalisationOf(const PreprocessSpec& spec);

// Packs T frames of packed RGB24 (width x height, already scaled) into `out`, a float buffer of
// 3 x T x crop x crop (C, T, H, W), normalised. Throws Error when a frame is smaller than the crop.
void packClip(const std::vector<const uint8_t*>& frames, int width, int height,
              const PreprocessSpec& spec, float* out);

// packClip without the normalisation: the crop as bytes, 3 x T x crop x crop, channel planes in
// output order (for FeatureModel::extractBytes, which normalises on the device).
void cropClip(const std::vector<const uint8_t*>& frames, int width, int height,
              const PreprocessSpec& spec, uint8_t* out);

}  // namespace vidfeat
