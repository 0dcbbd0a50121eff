// BilinearResizer against the formula it implements, byte for byte; and FrameConverter's row
// selection (src/decode/frame_convert.cpp): converting only the 4:2:0 row
// pairs the bilinear resize reads gives the same bytes as converting the whole frame, for random
// planes (every value and chroma pattern), both ranges, odd widths and the sizes vidfeat scales.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <vector>

#include "../../src/decode/ffmpeg.h"
#include "../../src/decode/frame_convert.h"

namespace vidfeat {
namespace {

ffmpeg::UniqueAVFrame randomFrame(AVPixelFormat format, int w, int h, uint32_t seed) {
  ffmpeg::UniqueAVFrame f(av_frame_alloc());
  f->format = format;
  f->width = w;
  f->height = h;
  EXPECT_GE(av_frame_get_buffer(f.get(), 0), 0);
  std::mt19937 rng(seed);
  for (int p = 0; p < 3; ++p) {
    const int rows = p == 0 ? h : (h + 1) / 2, cols = p == 0 ? w : (w + 1) / 2;
    for (int y = 0; y < rows; ++y)
      for (int x = 0; x < cols; ++x)
        f->data[p][size_t(y) * size_t(f->linesize[p]) + size_t(x)] = uint8_t(rng());
  }
  return f;
}

std::vector<uint8_t> convert(const AVFrame* f, int outW, int outH, bool select) {
  FrameConverter c("random");
  c.setRowSelection(select);
  std::vector<uint8_t> rgb(size_t(outW) * size_t(outH) * 3);
  // Twice: the second call runs on the cached contexts and row map.
  c.convert(f, 0, outW, outH, rgb.data());
  std::vector<uint8_t> again(rgb.size());
  c.convert(f, 0, outW, outH, again.data());
  EXPECT_EQ(rgb, again);
  return rgb;
}

// The resize written out as the formula it implements (torch's bilinear, align_corners=False,
// in float, horizontal then vertical, rounded once), one output value at a time: the float
// operations themselves, for byte equality (decode_helpers.h's torchBilinear is torch's in
// double, the reference of the decode tests).
std::vector<uint8_t> bilinearByTheFormula(const std::vector<uint8_t>& src, int w, int h, int ow,
                                          int oh) {
  auto tap = [](int in, int out, int d, int& i0, int& i1, float& w1) {
    double s = std::max(0.0, (d + 0.5) * double(in) / out - 0.5);
    i0 = std::min(int(s), in - 1);
    i1 = std::min(i0 + 1, in - 1);
    w1 = float(s - i0);
  };
  std::vector<uint8_t> out(size_t(ow) * size_t(oh) * 3);
  for (int y = 0; y < oh; ++y) {
    int y0, y1;
    float wy;
    tap(h, oh, y, y0, y1, wy);
    for (int x = 0; x < ow; ++x) {
      int x0, x1;
      float wx;
      tap(w, ow, x, x0, x1, wx);
      for (int c = 0; c < 3; ++c) {
        auto at = [&](int yy, int xx) {
          return src[(size_t(yy) * size_t(w) + size_t(xx)) * 3 + c];
        };
        const float top = at(y0, x0) * (1.f - wx) + at(y0, x1) * wx;
        const float bottom = at(y1, x0) * (1.f - wx) + at(y1, x1) * wx;
        const float v = top * (1.f - wy) + bottom * wy;
        out[(size_t(y) * size_t(ow) + size_t(x)) * 3 + c] =
            uint8_t(std::clamp(v + 0.5f, 0.f, 255.f));
      }
    }
  }
  return out;
}

TEST(DecodeResize, BilinearMatchesTheFormula) {
  // Byte-equal to the formula for random images, down and up, output rows of every length mod
  // 16 (the vectorised part and the scalar tail), one resizer reused across sizes.
  BilinearResizer resizer;
  std::mt19937 rng(11);
  const int sizes[][4] = {{640, 360, 455, 256}, {1920, 1080, 455, 256}, {320, 240, 341, 256},
                          {97, 61, 33, 17},     {64, 48, 32, 24},       {31, 17, 64, 40},
                          {5, 3, 1, 1},         {256, 256, 256, 256}};
  for (const auto& z : sizes) {
    const int w = z[0], h = z[1], ow = z[2], oh = z[3];
    std::vector<uint8_t> src(size_t(w) * size_t(h) * 3);
    for (auto& v : src) v = uint8_t(rng());
    std::vector<uint8_t> got(size_t(ow) * size_t(oh) * 3);
    resizer.resize(src.data(), w, h, size_t(w) * 3, got.data(), ow, oh);
    EXPECT_EQ(got, bilinearByTheFormula(src, w, h, ow, oh))
        << w << "x" << h << " -> " << ow << "x" << oh;
  }
}

TEST(DecodeResize, RowSelectionIsByteEqual) {
  struct Case {
    int w, h, outW, outH;
  };
  const Case cases[] = {{1920, 1080, 455, 256}, {1280, 720, 455, 256}, {640, 360, 455, 256},
                        {568, 320, 455, 256},   {567, 362, 341, 256},  {320, 240, 224, 168},
                        {1920, 1080, 224, 224}, {64, 48, 32, 24}};
  uint32_t seed = 1;
  for (AVPixelFormat format : {AV_PIX_FMT_YUV420P, AV_PIX_FMT_YUVJ420P}) {
    for (const Case& c : cases) {
      ffmpeg::UniqueAVFrame f = randomFrame(format, c.w, c.h, seed++);
      const std::vector<uint8_t> whole = convert(f.get(), c.outW, c.outH, false);
      const std::vector<uint8_t> selected = convert(f.get(), c.outW, c.outH, true);
      size_t differ = 0;
      for (size_t k = 0; k < whole.size(); ++k) differ += whole[k] != selected[k];
      EXPECT_EQ(differ, 0u) << av_get_pix_fmt_name(format) << " " << c.w << "x" << c.h << " -> "
                            << c.outW << "x" << c.outH;
    }
  }
}

// The rows a downscale reads: two per output row at most, the first and last among them.
TEST(DecodeResize, RowsReadByADownscale) {
  std::vector<uint8_t> used;
  BilinearResizer::rowsRead(1080, 256, used);
  ASSERT_EQ(used.size(), 1080u);
  size_t n = 0;
  for (uint8_t u : used) n += u;
  EXPECT_LE(n, 512u);
  EXPECT_GE(n, 256u);
  // Output row 0 reads rows 1 and 2 (source coordinate 0.5 * 1080 / 256 - 0.5 = 1.61), not row 0;
  // the last output row reads rows 1077 and 1078 (source 1077.39).
  EXPECT_EQ(used[0], 0);
  EXPECT_EQ(used[1], 1);
  EXPECT_EQ(used[2], 1);
  EXPECT_EQ(used[1077], 1);
  EXPECT_EQ(used[1078], 1);
  EXPECT_EQ(used[1079], 0);
  BilinearResizer::rowsRead(360, 256, used);
  n = 0;
  for (uint8_t u : used) n += u;
  EXPECT_GT(n, 300u);  // 360 -> 256 reads nearly every row: the selection saves little there
}

}  // namespace
}  // namespace vidfeat
