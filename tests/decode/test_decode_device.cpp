// --decode-device cuda: NVDEC through FFmpeg's hwaccel, with the CPU fallback.
// - On a machine without a CUDA device (CI, this one) the fallback runs: every frame, its time and
//   its converted pixels equal CPU decoding. On a GPU machine the same test checks NVDEC's frames
//   (framesOnDevice > 0) against the CPU's, pixel for pixel.
// - NVDEC hands frames to the host as NV12 (P010) where CPU decoding gives yuv420p (yuv420p10le),
//   and libswscale converts the two layouts of the same samples to different RGB; the decoder
//   repacks them (ffmpeg::planarYuv) so that the RGB is CPU decoding's. Checked here on random
//   planes (no GPU needed).
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "../../src/decode/ffmpeg.h"
#include "test_support.h"
#include "vidfeat/common/error.h"
#include "vidfeat/decode/video_decoder.h"

namespace vidfeat {
namespace {

using testing::sharedVideo;

struct Frames {
  std::vector<double> pts;
  std::vector<std::vector<uint8_t>> rgb;
  DecodeStats stats;
};

// Every frame's time, and the pixels of every `every`-th frame at `w` x `h` (0: display size).
Frames decodeAll(const std::string& path, const std::string& device, int every, int w = 0, int h = 0) {
  DecodeOptions o;
  o.device = device;
  VideoDecoder d(path, o);
  if (w > 0) d.setOutputSize(w, h);
  Frames out;
  DecodedFrame f;
  while (d.next(f)) {
    out.pts.push_back(f.pts);
    if (f.index % every == 0) {
      out.rgb.emplace_back(size_t(d.outputWidth()) * d.outputHeight() * 3);
      d.convert(out.rgb.back().data());
    }
  }
  out.stats = d.stats();
  return out;
}

TEST(DecodeDevice, Names) {
  for (const char* ok : {"cpu", "cuda", "cuda:0", "cuda:3"}) EXPECT_NO_THROW(checkDecodeDevice(ok)) << ok;
  for (const char* bad : {"gpu", "cuda:", "cuda:x", "CUDA", "cuda:1:2", ""}) {
    try {
      checkDecodeDevice(bad);
      ADD_FAILURE() << "accepted '" << bad << "'";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("--decode-device"), std::string::npos) << e.what();
    }
  }
}

// h264 (NVDEC has it), a rotated h264 and VP9 in WebM; resized as the pipeline does and at
// display size.
TEST(DecodeDevice, CudaGivesTheCpuFrames) {
  struct Case {
    const char* video;
    int w, h;
  };
  for (const Case& c : {Case{"chaplin.mp4", 455, 256}, Case{"video_90.mov", 0, 0},
                        Case{"big_buck_bunny_432_433.webm", 0, 0}, Case{"v_GGSY1Qvo990.mp4", 341, 256}}) {
    SCOPED_TRACE(c.video);
    const std::string path = sharedVideo(c.video).string();
    const Frames cpu = decodeAll(path, "cpu", 7, c.w, c.h);
    const Frames cuda = decodeAll(path, "cuda", 7, c.w, c.h);
    ASSERT_FALSE(cpu.pts.empty());
    EXPECT_EQ(cpu.stats.framesOnDevice, 0);
    EXPECT_EQ(cuda.pts, cpu.pts);
    ASSERT_EQ(cuda.rgb.size(), cpu.rgb.size());
    for (size_t i = 0; i < cpu.rgb.size(); ++i) EXPECT_TRUE(cuda.rgb[i] == cpu.rgb[i]) << "frame " << i * 7;
    EXPECT_EQ(cuda.stats.decodeErrors, cpu.stats.decodeErrors);
    std::printf("[decode-device] %-28s %zu frames, %lld decoded by NVDEC\n", c.video, cpu.pts.size(),
                static_cast<long long>(cuda.stats.framesOnDevice));
  }
}

// A frame of `format` with its own buffers.
ffmpeg::UniqueAVFrame frameOf(AVPixelFormat format, int w, int h) {
  ffmpeg::UniqueAVFrame f(av_frame_alloc());
  f->format = format;
  f->width = w;
  f->height = h;
  EXPECT_EQ(av_frame_get_buffer(f.get(), 0), 0);
  return f;
}

// RGB24 of `f` with the decoder's colour conversion (1:1 size, SWS_BILINEAR, swscale's default
// matrix), tightly packed.
std::vector<uint8_t> toRgb(const AVFrame* f) {
  ffmpeg::UniqueSwsContext sws(sws_getContext(f->width, f->height, AVPixelFormat(f->format), f->width, f->height,
                                              AV_PIX_FMT_RGB24, SWS_BILINEAR, nullptr, nullptr, nullptr));
  EXPECT_TRUE(sws);
  const int stride = FFALIGN(f->width, 32) * 3;
  std::vector<uint8_t> padded(size_t(stride) * f->height + 64), rgb(size_t(f->width) * f->height * 3);
  uint8_t* dst[4] = {padded.data(), nullptr, nullptr, nullptr};
  int dstStride[4] = {stride, 0, 0, 0};
  EXPECT_EQ(sws_scale(sws.get(), f->data, f->linesize, 0, f->height, dst, dstStride), f->height);
  for (int y = 0; y < f->height; ++y) {
    std::copy_n(padded.data() + size_t(y) * stride, size_t(f->width) * 3, rgb.data() + size_t(y) * f->width * 3);
  }
  return rgb;
}

size_t differing(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
  size_t n = 0;
  for (size_t i = 0; i < a.size(); ++i) n += a[i] != b[i];
  return n;
}

// The same random samples as planar (CPU decoding's layout) and semi-planar (NVDEC's): the
// repacked semi-planar frame converts to exactly the planar frame's RGB, in 8 and 10 bits.
TEST(DecodeDevice, SemiPlanarFramesConvertLikeCpuDecoding) {
  std::mt19937 gen(3);
  for (bool tenBit : {false, true}) {
    std::uniform_int_distribution<int> sample(0, tenBit ? 1023 : 255);
    for (auto [w, h] : {std::pair{64, 48}, std::pair{568, 320}, std::pair{640, 360}, std::pair{342, 258}}) {
      SCOPED_TRACE(std::string(tenBit ? "10-bit " : "8-bit ") + std::to_string(w) + "x" + std::to_string(h));
      auto planar = frameOf(tenBit ? AV_PIX_FMT_YUV420P10LE : AV_PIX_FMT_YUV420P, w, h);
      auto semi = frameOf(tenBit ? AV_PIX_FMT_P010LE : AV_PIX_FMT_NV12, w, h);
      auto put = [&](AVFrame* f, int plane, int x, int y, int v) {
        uint8_t* row = f->data[plane] + size_t(y) * f->linesize[plane];
        if (tenBit) {
          reinterpret_cast<uint16_t*>(row)[x] = uint16_t(f == semi.get() ? v << 6 : v);
        } else {
          row[x] = uint8_t(v);
        }
      };
      for (int y = 0; y < h; ++y) {
        for (int x = 0; x < w; ++x) {
          const int v = sample(gen);
          put(planar.get(), 0, x, y, v);
          put(semi.get(), 0, x, y, v);
        }
      }
      for (int y = 0; y < (h + 1) / 2; ++y) {
        for (int x = 0; x < (w + 1) / 2; ++x) {
          const int u = sample(gen), v = sample(gen);
          put(planar.get(), 1, x, y, u);
          put(planar.get(), 2, x, y, v);
          put(semi.get(), 1, 2 * x, y, u);
          put(semi.get(), 1, 2 * x + 1, y, v);
        }
      }
      ffmpeg::UniqueAVFrame repacked;
      const AVFrame* converted = ffmpeg::planarYuv(semi.get(), repacked);
      ASSERT_NE(converted, nullptr);
      EXPECT_EQ(converted->format, planar->format);
      const auto expected = toRgb(planar.get());
      EXPECT_EQ(differing(toRgb(converted), expected), 0u) << "of " << expected.size() << " values";
      // Why the repack is there: swscale's own semi-planar conversion is not the planar one.
      std::printf("[decode-device] %s %dx%d: swscale on the semi-planar frame differs in %zu of %zu values\n",
                  tenBit ? "P010" : "NV12", w, h, differing(toRgb(semi.get()), expected), expected.size());
    }
  }
}

}  // namespace
}  // namespace vidfeat
