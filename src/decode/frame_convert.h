#pragma once
// The decoder's pixel work (private to src/decode): a decoded frame, in whatever pixel format
// FFmpeg gives, to the packed RGB24 a clip takes, at the model's scale and in display orientation.
//
// Resizing lives here, in decode/, not in clip/: VideoDecoder::convert() resizes each frame it
// converts straight after colour conversion, so the clip assembler only ever holds frames at the
// model's scale (a 3840x2160 frame is 24 MB of RGB at its decoded size, 0.35 MB at 455x256), and
// a room of the data path (decode -> clip -> model -> store) must not call into a later one.
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "ffmpeg.h"
#include "vidfeat/common/resize_filter.h"

namespace vidfeat {

// NVDEC hands frames to the host semi-planar (NV12; P010 for 10 bits: the value in the top 10 bits
// of 16) where CPU decoding gives planar yuv420p / yuv420p10le, and libswscale does not convert the
// two layouts of the same samples to the same RGB (NV12: 57% of the RGB values differ on random
// 640x360 planes, as swscale takes another route for it; P010 happens to agree). So a semi-planar
// frame is first repacked, exactly, into the planar format CPU decoding would give, in `planar`
// (reused); the result is `src` itself for any other format, nullptr when out of memory.
const AVFrame* planarYuv(const AVFrame* src, ffmpeg::UniqueAVFrame& planar);

// Exact separable bilinear resize of packed RGB24 with torch.nn.functional.interpolate's
// mode="bilinear", align_corners=False, antialias=False mapping: source coordinate
// (dst + 0.5) * in / out - 0.5, clamped at 0, two taps, edge pixel repeated. Interpolation is
// done in float and rounded once, so the result is within 0.5 levels of torch on the same RGB
// input. libswscale cannot do this in one pass (see FrameConverter::convert). Keeps its taps
// and two row buffers from one call to the next of the same sizes.
class BilinearResizer {
 public:
  void resize(const uint8_t* src, int srcW, int srcH, size_t srcStride, uint8_t* dst, int dstW,
              int dstH);
  // used[r] = 1 for each source row r that resize() reads when scaling srcH rows to dstH (the
  // two taps of every output row), 0 for the others; `used` gets srcH entries.
  static void rowsRead(int srcH, int dstH, std::vector<uint8_t>& used);

 private:
  struct Tap {
    int i0, i1;
    float w0, w1;
  };

  static void computeTaps(int in, int out, std::vector<Tap>& taps);
  static void blendRows(const float* r0, const float* r1, float w0, float w1, uint8_t* out,
                        size_t n);
  const float* horizontalRow(const uint8_t* row, int srcRow);

  int srcW_ = 0, srcH_ = 0, dstW_ = 0, dstH_ = 0;
  std::vector<Tap> xTaps_, yTaps_;
  std::vector<float> rows_[2];
  int rowIndex_[2] = {-1, -1};
  int nextSlot_ = 0;
};

// Pillow's Image.resize(size, Image.BICUBIC) of packed RGB24, byte for byte (Pillow's
// libImaging/Resample.c arithmetic): the cubic a = -0.5 with support 2 widened by the reduction
// factor (antialiased), each output pixel's taps normalised to sum 1 and rounded to 22-bit fixed
// point, a horizontal pass into uint8 (rounded, clamped), then a vertical one; an axis whose size
// does not change is not resampled. Keeps its taps and the intermediate image between calls.
class PilBicubicResizer {
 public:
  void resize(const uint8_t* src, int srcW, int srcH, size_t srcStride, uint8_t* dst, int dstW,
              int dstH);

  // Taps of one axis: output pixel i reads `count[i]` inputs from `first[i]` with weights
  // weights[i * ksize ...], in fixed point (1 << 22 is 1.0).
  struct Taps {
    int in = 0, out = 0, ksize = 0;
    std::vector<int> first, count;
    std::vector<int32_t> weights;
  };
  static void computeTaps(int in, int out, Taps& taps);

 private:
  Taps xTaps_, yTaps_;
  std::vector<uint8_t> temp_;
};

// Colour conversion, resize and rotation of a video's decoded frames; keeps its libswscale
// context and buffers from frame to frame. Not thread-safe: one per VideoDecoder.
class FrameConverter {
 public:
  explicit FrameConverter(std::string path) : path_(std::move(path)) {}

  // `frame` (in host memory) into `rgb`: outHeight rows of outWidth * 3 bytes, in display
  // orientation after a clockwise rotation by `rotation` degrees (0, 90, 180, 270). Throws
  // InputError naming the file when libswscale cannot convert the frame's pixel format.
  // The resize is `filter`'s: TorchBilinear resizes before rotating (it is the same either way),
  // PilBicubic after (Pillow sees the picture upright; its passes round between them).
  void convert(const AVFrame* frame, int rotation, int outWidth, int outHeight, uint8_t* rgb,
               ResizeFilter filter = ResizeFilter::TorchBilinear);
  // Off: every row is colour-converted, also those the resize never reads (tests compare both).
  void setRowSelection(bool on) { selectRows_ = on; }

 private:
  // Converts only the row pairs the resize reads (see convert); false when the frame's format
  // or size is not one this is proven byte-equal for, and nothing was converted.
  bool convertRowsRead(const AVFrame* f, int targetH, uint8_t* native, size_t stride);

  std::string path_;
  bool selectRows_ = true;
  ffmpeg::UniqueSwsContext sws_;
  ffmpeg::UniqueSwsContext pairSws_;  // width x 2 rows: one 4:2:0 row pair at a time
  std::vector<uint8_t> rowsUsed_;
  int rowsUsedFor_[2] = {0, 0};      // {source rows, output rows} of rowsUsed_
  std::vector<uint8_t> nativeRgb_;   // colour-converted frame at its decoded size, padded rows
  std::vector<uint8_t> resizedRgb_;  // resized, before rotation
  BilinearResizer resizer_;
  PilBicubicResizer pilResizer_;
  std::vector<uint8_t> rotatedRgb_;  // PilBicubic: upright at the decoded size, before resizing
};

}  // namespace vidfeat
