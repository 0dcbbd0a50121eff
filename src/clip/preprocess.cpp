#include "vidfeat/clip/preprocess.h"

#include <cmath>
#include <string>

#include "vidfeat/common/error.h"
#include "vidfeat/config/config.h"

namespace vidfeat {

PreprocessSpec PreprocessSpec::fromConfig(const Config& cfg) {
  PreprocessSpec s;
  auto scales = cfg.get<std::vector<int>>("DATA.TRAIN_JITTER_SCALES");
  if (scales.empty()) throw Error("config key DATA.TRAIN_JITTER_SCALES is empty");
  s.shortSide = scales[0];
  s.cropSize = cfg.get<int>("DATA.TEST_CROP_SIZE");
  auto mean = cfg.get<std::vector<double>>("DATA.MEAN");
  auto std = cfg.get<std::vector<double>>("DATA.STD");
  if (mean.size() != 3) throw Error("config key DATA.MEAN must have 3 values");
  if (std.size() != 3) throw Error("config key DATA.STD must have 3 values");
  for (int c = 0; c < 3; ++c) {
    s.mean[c] = static_cast<float>(mean[c]);
    s.std[c] = static_cast<float>(std[c]);
    if (s.std[c] == 0.0f) throw Error("config key DATA.STD must not contain 0");
  }
  s.reverseChannels = cfg.get<bool>("DATA.REVERSE_INPUT_CHANNEL");
  const auto resize = cfg.get<std::string>("DATA.TEST_RESIZE");
  if (resize == "bilinear") {
    s.resize = ResizeFilter::TorchBilinear;
  } else if (resize == "pil_bicubic") {
    s.resize = ResizeFilter::PilBicubic;
  } else {
    throw Error("config key DATA.TEST_RESIZE '" + resize +
                "' is not supported (bilinear, pil_bicubic)");
  }
  if (s.cropSize < 1) throw Error("config key DATA.TEST_CROP_SIZE must be >= 1");
  if (s.shortSide < s.cropSize) {
    throw Error("DATA.TRAIN_JITTER_SCALES[0] (" + std::to_string(s.shortSide) +
                ") must be >= DATA.TEST_CROP_SIZE (" + std::to_string(s.cropSize) + ")");
  }
  return s;
}

std::pair<int, int> shortSideScaledSize(int width, int height, int size) {
  if ((width <= height && width == size) || (height <= width && height == size)) {
    return {width, height};
  }
  if (width < height) {
    return {size, static_cast<int>(std::floor(double(height) / width * size))};
  }
  return {static_cast<int>(std::floor(double(width) / height * size)), size};
}

std::pair<int, int> torchvisionResizedSize(int width, int height, int size) {
  const int64_t shortSide = std::min(width, height), longSide = std::max(width, height);
  const int scaledLong = static_cast<int>(int64_t(size) * longSide / shortSide);
  return width <= height ? std::make_pair(size, scaledLong) : std::make_pair(scaledLong, size);
}

std::pair<int, int> torchvisionCropOffset(int width, int height, int size) {
  auto half = [](int d) {  // round(d / 2), halves to even
    const int q = d / 2;
    return (d % 2 == 0 || q % 2 == 0) ? q : q + 1;
  };
  return {half(width - size), half(height - size)};
}

std::pair<int, int> PreprocessSpec::scaledSize(int width, int height) const {
  return resize == ResizeFilter::PilBicubic ? torchvisionResizedSize(width, height, shortSide)
                                            : shortSideScaledSize(width, height, shortSide);
}

std::pair<int, int> PreprocessSpec::cropAt(int width, int height) const {
  return resize == ResizeFilter::PilBicubic ? torchvisionCropOffset(width, height, cropSize)
                                            : cropOffset(width, height, cropSize, spatialIndex);
}

std::pair<int, int> cropOffset(int width, int height, int size, int spatialIndex) {
  int y = static_cast<int>(std::ceil((height - size) / 2.0));
  int x = static_cast<int>(std::ceil((width - size) / 2.0));
  if (height > width) {
    if (spatialIndex == 0) y = 0;
    if (spatialIndex == 2) y = height - size;
  } else {
    if (spatialIndex == 0) x = 0;
    if (spatialIndex == 2) x = width - size;
  }
  return {x, y};
}

ClipNormalisation normalisationOf(const PreprocessSpec& spec) {
  ClipNormalisation n;
  for (int k = 0; k < 3; ++k) {
    const int c = spec.reverseChannels ? 2 - k : k;  // the RGB channel output plane k holds
    n.scale[size_t(k)] = 1.0f / (255.0f * spec.std[size_t(c)]);
    n.shift[size_t(k)] = -spec.mean[size_t(c)] / spec.std[size_t(c)];
  }
  return n;
}

namespace {

// The crop of T frames, one output value per (plane, t, y, x): put(plane, index, byte).
template <typename Put>
void forEachCropValue(const std::vector<const uint8_t*>& frames, int width, int height,
                      const PreprocessSpec& spec, Put&& put) {
  const int s = spec.cropSize;
  if (width < s || height < s) {
    throw Error("frame " + std::to_string(width) + "x" + std::to_string(height) +
                " is smaller than the crop " + std::to_string(s));
  }
  auto [x0, y0] = spec.cropAt(width, height);
  const size_t T = frames.size();
  const size_t plane = size_t(s) * s;
  for (size_t t = 0; t < T; ++t) {
    const uint8_t* src = frames[t];
    size_t base[3];
    for (int c = 0; c < 3; ++c) {
      const size_t k = size_t(spec.reverseChannels ? 2 - c : c);  // output plane of RGB channel c
      base[c] = (k * T + t) * plane;
    }
    for (int y = 0; y < s; ++y) {
      const uint8_t* row = src + (size_t(y0 + y) * width + x0) * 3;
      for (int x = 0; x < s; ++x) {
        for (int c = 0; c < 3; ++c) put(c, base[c] + size_t(y) * s + x, row[3 * x + c]);
      }
    }
  }
}

}  // namespace

void packClip(const std::vector<const uint8_t*>& frames, int width, int height,
              const PreprocessSpec& spec, float* out) {
  // x/255 then (x - mean)/std, folded into one multiply-add per channel.
  const ClipNormalisation n = normalisationOf(spec);
  float scale[3], shift[3];  // indexed by RGB channel
  for (int c = 0; c < 3; ++c) {
    const size_t k = size_t(spec.reverseChannels ? 2 - c : c);
    scale[c] = n.scale[k];
    shift[c] = n.shift[k];
  }
  forEachCropValue(frames, width, height, spec,
                   [&](int c, size_t at, uint8_t v) { out[at] = float(v) * scale[c] + shift[c]; });
}

void cropClip(const std::vector<const uint8_t*>& frames, int width, int height,
              const PreprocessSpec& spec, uint8_t* out) {
  forEachCropValue(frames, width, height, spec, [&](int, size_t at, uint8_t v) { out[at] = v; });
}

}  // namespace vidfeat
