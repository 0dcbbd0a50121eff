// Why the resize is in decode/ and not in clip/: see frame_convert.h.
#include "frame_convert.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#include <string>

#include "vidfeat/common/error.h"

namespace vidfeat {

namespace {

// Rotates packed RGB24 `src` (w x h, rows `srcStride` bytes apart) clockwise by `rotation`
// degrees into the tightly packed `dst`.
void rotateRgb(const uint8_t* src, int w, int h, size_t srcStride, int rotation, uint8_t* dst) {
  auto copyPixel = [&](int dx, int dy, int dstW, int sx, int sy) {
    const uint8_t* s = src + sy * srcStride + static_cast<size_t>(sx) * 3;
    uint8_t* d = dst + (static_cast<size_t>(dy) * dstW + dx) * 3;
    d[0] = s[0];
    d[1] = s[1];
    d[2] = s[2];
  };
  if (rotation == 90) {  // output h x w; its top-left is the source's bottom-left
    for (int dy = 0; dy < w; ++dy)
      for (int dx = 0; dx < h; ++dx) copyPixel(dx, dy, h, dy, h - 1 - dx);
  } else if (rotation == 270) {  // output h x w; its top-left is the source's top-right
    for (int dy = 0; dy < w; ++dy)
      for (int dx = 0; dx < h; ++dx) copyPixel(dx, dy, h, w - 1 - dy, dx);
  } else {  // 180
    for (int dy = 0; dy < h; ++dy)
      for (int dx = 0; dx < w; ++dx) copyPixel(dx, dy, w, w - 1 - dx, h - 1 - dy);
  }
}

// Pillow's bicubic kernel (a = -0.5) and its fixed-point precision (Resample.c).
double pilBicubic(double x) {
  constexpr double a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}
constexpr int kPilPrecisionBits = 32 - 8 - 2;

inline uint8_t pilClip8(int32_t v) {
  const int32_t shifted = v >> kPilPrecisionBits;  // arithmetic: floor
  return static_cast<uint8_t>(shifted < 0 ? 0 : (shifted > 255 ? 255 : shifted));
}

}  // namespace

void PilBicubicResizer::computeTaps(int in, int out, Taps& t) {
  if (t.in == in && t.out == out) return;
  const double scale = double(in) / out;
  const double filterScale = std::max(scale, 1.0);
  const double support = 2.0 * filterScale;
  t.in = in;
  t.out = out;
  t.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  t.first.assign(size_t(out), 0);
  t.count.assign(size_t(out), 0);
  t.weights.assign(size_t(out) * size_t(t.ksize), 0);
  std::vector<double> k(size_t(t.ksize));
  for (int i = 0; i < out; ++i) {
    const double center = (i + 0.5) * scale;
    const double ss = 1.0 / filterScale;
    // Pillow's "round the value": a truncating cast of x + 0.5, then clamped.
    int xmin = static_cast<int>(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = static_cast<int>(center + support + 0.5);
    if (xmax > in) xmax = in;
    xmax -= xmin;
    double sum = 0.0;
    for (int x = 0; x < xmax; ++x) {
      k[size_t(x)] = pilBicubic((x + xmin - center + 0.5) * ss);
      sum += k[size_t(x)];
    }
    int32_t* w = t.weights.data() + size_t(i) * size_t(t.ksize);
    for (int x = 0; x < xmax; ++x) {
      const double v = sum != 0.0 ? k[size_t(x)] / sum : k[size_t(x)];
      const double fixed = v * (1 << kPilPrecisionBits);
      w[x] = static_cast<int32_t>(v < 0 ? fixed - 0.5 : fixed + 0.5);
    }
    t.first[size_t(i)] = xmin;
    t.count[size_t(i)] = xmax;
  }
}

void PilBicubicResizer::resize(const uint8_t* src, int srcW, int srcH, size_t srcStride,
                               uint8_t* dst, int dstW, int dstH) {
  const bool horizontal = dstW != srcW, vertical = dstH != srcH;
  computeTaps(srcW, dstW, xTaps_);
  computeTaps(srcH, dstH, yTaps_);
  const int32_t half = 1 << (kPilPrecisionBits - 1);
  // Rows [row0, row1) of the source, resampled across into `out` (dstW * 3 bytes a row).
  auto across = [&](int row0, int row1, uint8_t* out) {
    for (int y = row0; y < row1; ++y) {
      const uint8_t* in = src + size_t(y) * srcStride;
      uint8_t* o = out + size_t(y - row0) * size_t(dstW) * 3;
      for (int i = 0; i < dstW; ++i) {
        const int32_t* w = xTaps_.weights.data() + size_t(i) * size_t(xTaps_.ksize);
        const uint8_t* p = in + size_t(xTaps_.first[size_t(i)]) * 3;
        int32_t s0 = half, s1 = half, s2 = half;
        for (int x = 0; x < xTaps_.count[size_t(i)]; ++x, p += 3) {
          s0 += p[0] * w[x];
          s1 += p[1] * w[x];
          s2 += p[2] * w[x];
        }
        o[3 * i] = pilClip8(s0);
        o[3 * i + 1] = pilClip8(s1);
        o[3 * i + 2] = pilClip8(s2);
      }
    }
  };
  if (!vertical) {
    if (horizontal) {
      across(0, srcH, dst);
    } else {
      for (int y = 0; y < srcH; ++y)
        std::memcpy(dst + size_t(y) * size_t(dstW) * 3, src + size_t(y) * srcStride,
                    size_t(srcW) * 3);
    }
    return;
  }
  // The vertical pass reads rows [rowFirst, rowLast) of its input: resample only those across.
  const uint8_t* in = src;
  size_t inStride = srcStride;
  int rowFirst = 0;
  if (horizontal) {
    rowFirst = yTaps_.first.front();
    const int rowLast = yTaps_.first.back() + yTaps_.count.back();
    temp_.resize(size_t(rowLast - rowFirst) * size_t(dstW) * 3);
    across(rowFirst, rowLast, temp_.data());
    in = temp_.data();
    inStride = size_t(dstW) * 3;
  }
  const size_t rowBytes = size_t(dstW) * 3;
  for (int j = 0; j < dstH; ++j) {
    const int32_t* w = yTaps_.weights.data() + size_t(j) * size_t(yTaps_.ksize);
    const uint8_t* base = in + size_t(yTaps_.first[size_t(j)] - rowFirst) * inStride;
    const int n = yTaps_.count[size_t(j)];
    uint8_t* o = dst + size_t(j) * rowBytes;
    for (size_t c = 0; c < rowBytes; ++c) {
      int32_t s = half;
      const uint8_t* p = base + c;
      for (int y = 0; y < n; ++y, p += inStride) s += *p * w[y];
      o[c] = pilClip8(s);
    }
  }
}

const AVFrame* planarYuv(const AVFrame* src, ffmpeg::UniqueAVFrame& planar) {
  const bool nv12 = src->format == AV_PIX_FMT_NV12, p010 = src->format == AV_PIX_FMT_P010LE;
  if (!nv12 && !p010) return src;
  const AVPixelFormat target = nv12 ? AV_PIX_FMT_YUV420P : AV_PIX_FMT_YUV420P10LE;
  if (!planar || planar->format != target || planar->width != src->width ||
      planar->height != src->height) {
    planar.reset(av_frame_alloc());
    if (!planar) return nullptr;
    planar->format = target;
    planar->width = src->width;
    planar->height = src->height;
    if (av_frame_get_buffer(planar.get(), 0) < 0) {
      planar.reset();
      return nullptr;
    }
  }
  const int w = src->width, h = src->height, cw = (w + 1) / 2, ch = (h + 1) / 2;
  for (int y = 0; y < h; ++y) {
    const uint8_t* in = src->data[0] + size_t(y) * size_t(src->linesize[0]);
    uint8_t* out = planar->data[0] + size_t(y) * size_t(planar->linesize[0]);
    if (nv12) {
      std::copy(in, in + w, out);
    } else {
      const auto* i16 = reinterpret_cast<const uint16_t*>(in);
      auto* o16 = reinterpret_cast<uint16_t*>(out);
      for (int x = 0; x < w; ++x) o16[x] = uint16_t(i16[x] >> 6);
    }
  }
  for (int y = 0; y < ch; ++y) {
    const uint8_t* in = src->data[1] + size_t(y) * size_t(src->linesize[1]);
    uint8_t* u = planar->data[1] + size_t(y) * size_t(planar->linesize[1]);
    uint8_t* v = planar->data[2] + size_t(y) * size_t(planar->linesize[2]);
    if (nv12) {
      for (int x = 0; x < cw; ++x) {
        u[x] = in[2 * x];
        v[x] = in[2 * x + 1];
      }
    } else {
      const auto* i16 = reinterpret_cast<const uint16_t*>(in);
      auto *u16 = reinterpret_cast<uint16_t*>(u), *v16 = reinterpret_cast<uint16_t*>(v);
      for (int x = 0; x < cw; ++x) {
        u16[x] = uint16_t(i16[2 * x] >> 6);
        v16[x] = uint16_t(i16[2 * x + 1] >> 6);
      }
    }
  }
  planar->color_range = src->color_range;
  planar->colorspace = src->colorspace;
  return planar.get();
}

void BilinearResizer::resize(const uint8_t* src, int srcW, int srcH, size_t srcStride, uint8_t* dst,
                             int dstW, int dstH) {
  if (srcW != srcW_ || srcH != srcH_ || dstW != dstW_ || dstH != dstH_) {
    computeTaps(srcW, dstW, xTaps_);
    computeTaps(srcH, dstH, yTaps_);
    srcW_ = srcW;
    srcH_ = srcH;
    dstW_ = dstW;
    dstH_ = dstH;
    rows_[0].assign(static_cast<size_t>(dstW) * 3 + 1, 0.f);  // + 1: horizontalRow's 4-lane store
    rows_[1].assign(static_cast<size_t>(dstW) * 3 + 1, 0.f);
  }
  rowIndex_[0] = rowIndex_[1] = -1;
  const size_t dstStride = static_cast<size_t>(dstW) * 3;
  for (int y = 0; y < dstH; ++y) {
    const Tap ty = yTaps_[y];
    const float* r0 = horizontalRow(src + ty.i0 * srcStride, ty.i0);
    const float* r1 = horizontalRow(src + ty.i1 * srcStride, ty.i1);
    blendRows(r0, r1, ty.w0, ty.w1, dst + y * dstStride, dstStride);
  }
}

// out[k] = clamp(r0[k] * w0 + r1[k] * w1 + 0.5, 0, 255), truncated: the same float operations in
// the same order whether four lanes at a time (SSE2, every x86-64) or one, so the bytes do not
// depend on the path (test DecodeResize.BilinearMatchesTheFormula).
void BilinearResizer::blendRows(const float* r0, const float* r1, float w0, float w1, uint8_t* out,
                                size_t n) {
  size_t k = 0;
#if defined(__SSE2__)
  const __m128 vw0 = _mm_set1_ps(w0), vw1 = _mm_set1_ps(w1), half = _mm_set1_ps(0.5f);
  const __m128 lo = _mm_setzero_ps(), hi = _mm_set1_ps(255.f);
  auto lane = [&](size_t at) {
    __m128 v =
        _mm_add_ps(_mm_mul_ps(_mm_loadu_ps(r0 + at), vw0), _mm_mul_ps(_mm_loadu_ps(r1 + at), vw1));
    v = _mm_min_ps(_mm_max_ps(_mm_add_ps(v, half), lo), hi);
    return _mm_cvttps_epi32(v);
  };
  for (; k + 16 <= n; k += 16) {
    const __m128i a = _mm_packs_epi32(lane(k), lane(k + 4));
    const __m128i b = _mm_packs_epi32(lane(k + 8), lane(k + 12));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + k), _mm_packus_epi16(a, b));
  }
#endif
  for (; k < n; ++k) {
    const float v = r0[k] * w0 + r1[k] * w1;
    out[k] = static_cast<uint8_t>(std::clamp(v + 0.5f, 0.f, 255.f));
  }
}

void BilinearResizer::rowsRead(int srcH, int dstH, std::vector<uint8_t>& used) {
  std::vector<Tap> taps;
  computeTaps(srcH, dstH, taps);
  used.assign(static_cast<size_t>(srcH), 0);
  for (const Tap& t : taps) used[static_cast<size_t>(t.i0)] = used[static_cast<size_t>(t.i1)] = 1;
}

void BilinearResizer::computeTaps(int in, int out, std::vector<Tap>& taps) {
  taps.resize(out);
  const double scale = static_cast<double>(in) / out;
  for (int d = 0; d < out; ++d) {
    double s = std::max(0.0, (d + 0.5) * scale - 0.5);
    int i0 = std::min(static_cast<int>(s), in - 1);
    int i1 = std::min(i0 + 1, in - 1);
    float w1 = static_cast<float>(s - i0);
    taps[d] = Tap{i0, i1, 1.f - w1, w1};
  }
}

// The horizontally resampled source row `srcRow`; consecutive output rows mostly share their
// two source rows, so the last two results are kept.
const float* BilinearResizer::horizontalRow(const uint8_t* row, int srcRow) {
  for (int slot = 0; slot < 2; ++slot) {
    if (rowIndex_[slot] == srcRow) return rows_[slot].data();
  }
  int slot = nextSlot_;
  nextSlot_ ^= 1;
  float* out = rows_[slot].data();
  const Tap* taps = xTaps_.data();
#if defined(__SSE2__)
  const size_t rowBytes = static_cast<size_t>(srcW_) * 3;
  const __m128i zero = _mm_setzero_si128();
#endif
  for (int x = 0; x < dstW_; ++x) {
    const Tap t = taps[x];  // a copy: the stores through `out` may not alias it
#if defined(__SSE2__)
    // Both taps' pixels in one 8-byte load (i1 == i0 + 1 but at the right edge, and not within
    // 8 bytes of the row's end): the same products and sums as below, three lanes used; the
    // fourth lands on the next pixel's first value, which that pixel writes after (or in the
    // buffer's one float of slack).
    if (t.i1 == t.i0 + 1 && static_cast<size_t>(t.i0) * 3 + 8 <= rowBytes) {
      const __m128i bytes =
          _mm_loadl_epi64(reinterpret_cast<const __m128i*>(row + static_cast<size_t>(t.i0) * 3));
      const __m128i words = _mm_unpacklo_epi8(bytes, zero);
      const __m128 a = _mm_cvtepi32_ps(_mm_unpacklo_epi16(words, zero));  // p0 r g b, p1 r
      const __m128 b = _mm_cvtepi32_ps(_mm_unpackhi_epi16(words, zero));  // p1 g b, -, -
      __m128 p1 = _mm_shuffle_ps(a, b, _MM_SHUFFLE(1, 0, 3, 3));          // p1r p1r p1g p1b
      p1 = _mm_shuffle_ps(p1, p1, _MM_SHUFFLE(3, 3, 2, 0));               // p1r p1g p1b p1b
      _mm_storeu_ps(out + x * 3, _mm_add_ps(_mm_mul_ps(a, _mm_set1_ps(t.w0)),
                                            _mm_mul_ps(p1, _mm_set1_ps(t.w1))));
      continue;
    }
#endif
    const uint8_t* p0 = row + t.i0 * 3;
    const uint8_t* p1 = row + t.i1 * 3;
    out[x * 3] = p0[0] * t.w0 + p1[0] * t.w1;
    out[x * 3 + 1] = p0[1] * t.w0 + p1[1] * t.w1;
    out[x * 3 + 2] = p0[2] * t.w0 + p1[2] * t.w1;
  }
  rowIndex_[slot] = srcRow;
  return out;
}

// A downscale reads at most two source rows per output row (1080 -> 256: at most 512 of 1080),
// so only the 4:2:0 row pairs holding a row it reads are converted, each as its own 2-row image.
// libswscale's unscaled yuv420p -> RGB24 converter takes each output row from its luma row and
// the chroma row it shares with its pair, nothing else, so a pair converted alone is the same
// bytes as in the whole-frame conversion (test DecodeResize.RowSelectionIsByteEqual); other
// formats, odd heights and upscales take the whole-frame route.
bool FrameConverter::convertRowsRead(const AVFrame* f, int targetH, uint8_t* native,
                                     size_t stride) {
  const bool yuv420 = f->format == AV_PIX_FMT_YUV420P || f->format == AV_PIX_FMT_YUVJ420P;
  if (!yuv420 || f->height % 2 != 0 || f->height < 4 || targetH >= f->height) return false;
  if (rowsUsedFor_[0] != f->height || rowsUsedFor_[1] != targetH) {
    BilinearResizer::rowsRead(f->height, targetH, rowsUsed_);
    rowsUsedFor_[0] = f->height;
    rowsUsedFor_[1] = targetH;
  }
  pairSws_.reset(sws_getCachedContext(pairSws_.release(), f->width, 2,
                                      static_cast<AVPixelFormat>(f->format), f->width, 2,
                                      AV_PIX_FMT_RGB24, SWS_BILINEAR, nullptr, nullptr, nullptr));
  if (!pairSws_) return false;
  int dstLinesize[4] = {static_cast<int>(stride), 0, 0, 0};
  for (int pair = 0; pair < f->height / 2; ++pair) {
    const int y = 2 * pair;
    if (!rowsUsed_[size_t(y)] && !rowsUsed_[size_t(y) + 1]) continue;
    const uint8_t* src[4] = {f->data[0] + size_t(y) * size_t(f->linesize[0]),
                             f->data[1] + size_t(pair) * size_t(f->linesize[1]),
                             f->data[2] + size_t(pair) * size_t(f->linesize[2]), nullptr};
    uint8_t* dst[4] = {native + size_t(y) * stride, nullptr, nullptr, nullptr};
    int rc = sws_scale(pairSws_.get(), src, f->linesize, 0, 2, dst, dstLinesize);
    if (rc != 2) {
      throw InputError(
          path_, "colour conversion failed: " + ffmpeg::errorString(rc < 0 ? rc : AVERROR_BUG));
    }
  }
  return true;
}

// Route: one libswscale pass converts the frame to RGB24 at its decoded size, then our own
// separable bilinear resize (BilinearResizer) brings it to the output size, then the rotation.
// The features must match PySlowFast, which takes PyAV's native-size RGB and resizes it with
// torch bilinear (align_corners=False, no antialias). Resizing inside swscale in the same pass
// cannot meet 1/255 of that, whatever the flags (measured, max abs error in levels, chaplin.mp4
// 640x360 -> 455x256 / v_GGSY1Qvo990.mp4 320x240 -> 341x256): SWS_BILINEAR 38.5 / 12.1 (it
// widens the filter when downscaling, and interpolates chroma differently from the native-size
// path), SWS_FAST_BILINEAR 108 / 18.9 (corner-aligned mapping, 7-bit weights), with
// SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT | SWS_FULL_CHR_H_INP 39.3 / 12.1 (bilinear) and
// 107 / 24.8 (fast bilinear). The two-step route is within 0.5 levels by construction.
//
// Colour conversion flags are PyAV's defaults (SWS_BILINEAR, which is irrelevant at 1:1 size,
// and swscale's default BT.601 matrix whatever the frame's colorspace says) so that the RGB is
// the one PySlowFast sees.
void FrameConverter::convert(const AVFrame* f, int rotation, int outWidth, int outHeight,
                             uint8_t* rgb, ResizeFilter filter) {
  const bool swap = rotation == 90 || rotation == 270;
  const int targetW = swap ? outHeight : outWidth;  // size before rotation
  const int targetH = swap ? outWidth : outHeight;
  const bool resize = targetW != f->width || targetH != f->height;
  const bool rotate = rotation != 0;

  // swscale's SIMD RGB writers store whole 8/16-pixel blocks and run past the end of a row
  // (valgrind: writes after a tightly sized buffer for 568-wide video_90.mov), so they never
  // write into the caller's buffer: rows go into our own buffer, padded to 32 pixels plus a
  // tail, and are copied or resampled from there.
  const size_t stride = static_cast<size_t>(FFALIGN(f->width, 32)) * 3;
  nativeRgb_.resize(stride * f->height + 64);
  uint8_t* native = nativeRgb_.data();
  sws_.reset(sws_getCachedContext(sws_.release(), f->width, f->height,
                                  static_cast<AVPixelFormat>(f->format), f->width, f->height,
                                  AV_PIX_FMT_RGB24, SWS_BILINEAR, nullptr, nullptr, nullptr));
  if (!sws_) {
    const char* name = av_get_pix_fmt_name(static_cast<AVPixelFormat>(f->format));
    throw InputError(
        path_, std::string("cannot convert pixel format ") + (name ? name : "unknown") + " to RGB");
  }
  const bool pil = filter == ResizeFilter::PilBicubic;
  if (!(resize && !pil && selectRows_ && convertRowsRead(f, targetH, native, stride))) {
    uint8_t* dstData[4] = {native, nullptr, nullptr, nullptr};
    int dstLinesize[4] = {static_cast<int>(stride), 0, 0, 0};
    int rc = sws_scale(sws_.get(), f->data, f->linesize, 0, f->height, dstData, dstLinesize);
    if (rc != f->height) {
      throw InputError(
          path_, "colour conversion failed: " + ffmpeg::errorString(rc < 0 ? rc : AVERROR_BUG));
    }
  }

  if (pil && resize) {
    if (!rotate) {
      pilResizer_.resize(native, f->width, f->height, stride, rgb, outWidth, outHeight);
      return;
    }
    rotatedRgb_.resize(static_cast<size_t>(f->width) * f->height * 3);
    rotateRgb(native, f->width, f->height, stride, rotation, rotatedRgb_.data());
    const int uprightW = swap ? f->height : f->width, uprightH = swap ? f->width : f->height;
    pilResizer_.resize(rotatedRgb_.data(), uprightW, uprightH, static_cast<size_t>(uprightW) * 3,
                       rgb, outWidth, outHeight);
    return;
  }
  if (!resize && !rotate) {
    const size_t row = static_cast<size_t>(f->width) * 3;
    for (int y = 0; y < f->height; ++y) std::memcpy(rgb + y * row, native + y * stride, row);
  } else if (!rotate) {
    resizer_.resize(native, f->width, f->height, stride, rgb, targetW, targetH);
  } else if (!resize) {
    rotateRgb(native, f->width, f->height, stride, rotation, rgb);
  } else {
    resizedRgb_.resize(static_cast<size_t>(targetW) * targetH * 3);
    resizer_.resize(native, f->width, f->height, stride, resizedRgb_.data(), targetW, targetH);
    rotateRgb(resizedRgb_.data(), targetW, targetH, static_cast<size_t>(targetW) * 3, rotation,
              rgb);
  }
}

}  // namespace vidfeat
