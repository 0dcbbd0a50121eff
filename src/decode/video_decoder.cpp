#include "vidfeat/decode/video_decoder.h"

#include <chrono>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <map>
#include <mutex>
#include <new>
#include <set>
#include <stdexcept>
#include <utility>
#include <vector>

#include "ffmpeg.h"
#include "vidfeat/common/error.h"

namespace vidfeat {

namespace {

using ffmpeg::errorString;

// Frames held back to put decoder output into presentation order. FFmpeg's decoders already
// reorder (h264's has_b_frames delay); this window only catches residual disorder, e.g. a decoder
// that under-estimated its reorder depth at the start of a stream. unordered.mov (packets stored
// out of presentation order) already comes out of libavcodec with increasing pts, so the window
// never has to move a frame there. Kept small because each held frame pins a decoded picture
// (12 MB for 4K yuv420p).
constexpr size_t kReorderDepth = 4;

// A stream that yields nothing but errors for this long is not worth decoding further.
constexpr int kMaxConsecutiveErrors = 1000;

// Clockwise display rotation (0/90/180/270) from the stream's display matrix.
// av_display_rotation_get returns the counter-clockwise angle the matrix rotates by, so the
// clockwise angle a player applies is its negation (video_90.mov: -90 -> 90 clockwise).
// Mirroring in the matrix is ignored.
int streamRotation(const AVStream* stream) {
  const int32_t* matrix = ffmpeg::displayMatrix(stream);
  if (matrix == nullptr) return 0;
  double ccw = av_display_rotation_get(matrix);
  if (std::isnan(ccw)) return 0;
  long quarterTurns = std::lround(-ccw / 90.0);
  return static_cast<int>(((quarterTurns % 4) + 4) % 4) * 90;
}

// One warning per `key` per process (the NVDEC fallbacks: every video would repeat them).
void warnOnce(const std::string& key, const std::string& message) {
  static std::mutex mutex;
  static std::set<std::string> said;
  std::lock_guard<std::mutex> lock(mutex);
  if (said.insert(key).second) spdlog::warn("{}", message);
}

// "cpu" -> -1, "cuda" -> 0, "cuda:N" -> N; anything else -2.
int cudaIndex(const std::string& device) {
  if (device == "cpu") return -1;
  if (device == "cuda") return 0;
  if (device.rfind("cuda:", 0) != 0 || device.size() == 5 || device.size() > 8) return -2;
  for (size_t i = 5; i < device.size(); ++i) {
    if (device[i] < '0' || device[i] > '9') return -2;
  }
  return std::stoi(device.substr(5));
}

// The process's CUDA device context for NVDEC on GPU `index`, created at first use and shared by
// every decoder (creating one costs a CUDA context); nullptr, with FFmpeg's reason in `why`, when
// it cannot be created (no driver, no GPU, an FFmpeg without CUDA). Borrowed: a decoder takes its
// own reference (av_buffer_ref). A failure is remembered, not retried for every video.
AVBufferRef* cudaDeviceContext(int index, std::string& why) {
  static std::mutex mutex;
  static std::map<int, ffmpeg::UniqueAVBufferRef> devices;
  static std::map<int, std::string> failures;
  std::lock_guard<std::mutex> lock(mutex);
  if (auto it = devices.find(index); it != devices.end()) return it->second.get();
  if (auto it = failures.find(index); it != failures.end()) {
    why = it->second;
    return nullptr;
  }
  AVBufferRef* raw = nullptr;
  const int rc = av_hwdevice_ctx_create(&raw, AV_HWDEVICE_TYPE_CUDA, std::to_string(index).c_str(), nullptr, 0);
  if (rc < 0 || raw == nullptr) {
    why = failures[index] = errorString(rc < 0 ? rc : AVERROR_UNKNOWN);
    return nullptr;
  }
  return (devices[index] = ffmpeg::UniqueAVBufferRef(raw)).get();
}

// Error messages FFmpeg's decoders log, counted per VideoDecoder. Some damage leaves no other
// trace: an H.264 stream with part of a GOP cut out logs "co located POCs unavailable" and
// "mmco: unref short failure", returns every packet and frame without an error code or a corrupt
// flag, and its frame-threaded pictures still differ from run to run. A hook in vidfeat's
// process-wide av_log callback (ffmpeg::installLogging; FFmpeg has no other hook) finds the
// decoder from the logging codec context's `opaque`, which FFmpeg copies into its frame-thread
// contexts too, among the live decoders registered here.
struct LoggedErrors {
  std::mutex mutex;
  std::map<const void*, std::atomic<int64_t>*> live;  // codec context opaque -> counter
};
LoggedErrors& loggedErrors() {
  static LoggedErrors* r = new LoggedErrors;  // never destroyed: FFmpeg may log at exit
  return *r;
}

void countDecoderError(void* avcl, int level) {
  if (level <= AV_LOG_ERROR && avcl != nullptr && *static_cast<const AVClass* const*>(avcl) == avcodec_get_class()) {
    const void* owner = static_cast<const AVCodecContext*>(avcl)->opaque;
    if (owner != nullptr) {
      LoggedErrors& r = loggedErrors();
      std::lock_guard<std::mutex> lock(r.mutex);
      if (auto it = r.live.find(owner); it != r.live.end()) it->second->fetch_add(1, std::memory_order_relaxed);
    }
  }
}

double toDouble(AVRational r) { return (r.num > 0 && r.den > 0) ? av_q2d(r) : 0.0; }

// Exact separable bilinear resize of packed RGB24 with torch.nn.functional.interpolate's
// mode="bilinear", align_corners=False, antialias=False mapping: source coordinate
// (dst + 0.5) * in / out - 0.5, clamped at 0, two taps, edge pixel repeated. Interpolation is
// done in float and rounded once, so the result is within 0.5 levels of torch on the same RGB
// input. libswscale cannot do this in one pass (see convert()).
class BilinearResizer {
 public:
  void resize(const uint8_t* src, int srcW, int srcH, size_t srcStride, uint8_t* dst, int dstW,
              int dstH) {
    if (srcW != srcW_ || srcH != srcH_ || dstW != dstW_ || dstH != dstH_) {
      computeTaps(srcW, dstW, xTaps_);
      computeTaps(srcH, dstH, yTaps_);
      srcW_ = srcW;
      srcH_ = srcH;
      dstW_ = dstW;
      dstH_ = dstH;
      rows_[0].assign(static_cast<size_t>(dstW) * 3, 0.f);
      rows_[1].assign(static_cast<size_t>(dstW) * 3, 0.f);
    }
    rowIndex_[0] = rowIndex_[1] = -1;
    const size_t dstStride = static_cast<size_t>(dstW) * 3;
    for (int y = 0; y < dstH; ++y) {
      const Tap& ty = yTaps_[y];
      const float* r0 = horizontalRow(src + ty.i0 * srcStride, ty.i0);
      const float* r1 = horizontalRow(src + ty.i1 * srcStride, ty.i1);
      uint8_t* out = dst + y * dstStride;
      for (size_t k = 0; k < dstStride; ++k) {
        float v = r0[k] * ty.w0 + r1[k] * ty.w1;
        out[k] = static_cast<uint8_t>(std::clamp(v + 0.5f, 0.f, 255.f));
      }
    }
  }

 private:
  struct Tap {
    int i0, i1;
    float w0, w1;
  };

  static void computeTaps(int in, int out, std::vector<Tap>& taps) {
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
  const float* horizontalRow(const uint8_t* row, int srcRow) {
    for (int slot = 0; slot < 2; ++slot) {
      if (rowIndex_[slot] == srcRow) return rows_[slot].data();
    }
    int slot = nextSlot_;
    nextSlot_ ^= 1;
    float* out = rows_[slot].data();
    for (int x = 0; x < dstW_; ++x) {
      const Tap& t = xTaps_[x];
      const uint8_t* p0 = row + t.i0 * 3;
      const uint8_t* p1 = row + t.i1 * 3;
      for (int c = 0; c < 3; ++c) out[x * 3 + c] = p0[c] * t.w0 + p1[c] * t.w1;
    }
    rowIndex_[slot] = srcRow;
    return out;
  }

  int srcW_ = 0, srcH_ = 0, dstW_ = 0, dstH_ = 0;
  std::vector<Tap> xTaps_, yTaps_;
  std::vector<float> rows_[2];
  int rowIndex_[2] = {-1, -1};
  int nextSlot_ = 0;
};

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

}  // namespace

void checkDecodeDevice(const std::string& device) {
  if (cudaIndex(device) < -1) throw Error("--decode-device must be cpu, cuda or cuda:N, got '" + device + "'");
}

struct VideoDecoder::Impl {
  // A decoded frame waiting in the reorder window.
  struct Pending {
    int64_t pts;  // stream time-base units
    int64_t seq;  // decoder output order, breaks pts ties
    ffmpeg::UniqueAVFrame frame;
  };

  std::string path;
  DecodeOptions options;
  StreamInfo info;
  DecodeStats stats;
  std::atomic<int64_t> errorsLogged{0};  // by FFmpeg's threads too (countDecoderError)
  bool registered = false;

  ~Impl() {
    // Before the codec context (and its threads) goes: a message logged after this is not counted.
    if (registered) {
      LoggedErrors& r = loggedErrors();
      std::lock_guard<std::mutex> lock(r.mutex);
      r.live.erase(this);
    }
  }
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();

  bool pastDeadline() const { return std::chrono::steady_clock::now() > deadline; }
  void checkDeadline() const {
    if (pastDeadline()) {
      throw DecodeTimeout(path, "gave up after " + std::to_string(options.timeoutSeconds) +
                                    " s (--video-timeout)");
    }
  }
  // FFmpeg polls this during blocking demuxer I/O; non-zero aborts the operation.
  static int interrupt(void* self) { return static_cast<const Impl*>(self)->pastDeadline() ? 1 : 0; }

  ffmpeg::UniqueAVFormatContext format;
  ffmpeg::UniqueAVCodecContext codec;
  ffmpeg::UniqueAVPacket packet;
  ffmpeg::UniqueAVFrame received;  // scratch for avcodec_receive_frame
  AVStream* stream = nullptr;
  AVRational timeBase{0, 1};
  int64_t fallbackDuration = 0;  // one frame at the average rate, time-base units

  bool packetPending = false;  // `packet` was refused with EAGAIN and must be sent again
  bool flushSent = false;      // end of input reached, the decoder is draining
  bool drained = false;        // the decoder returned AVERROR_EOF
  int consecutiveErrors = 0;

  std::vector<Pending> window;  // sorted by (pts, seq)
  int64_t seq = 0;
  int64_t lastReceivedPts = AV_NOPTS_VALUE;
  int64_t lastReceivedDuration = 0;
  int64_t lastEmittedPts = AV_NOPTS_VALUE;
  ffmpeg::UniqueAVFrame current;  // frame last returned by next(), for convert()

  // NVDEC (DecodeOptions::device cuda): the pixel format of frames in GPU memory while the
  // hardware decodes (AV_PIX_FMT_NONE on the CPU), and the host copy convert() makes of one.
  AVPixelFormat hwFormat = AV_PIX_FMT_NONE;
  ffmpeg::UniqueAVFrame hostFrame;
  ffmpeg::UniqueAVFrame planarFrame;  // hostFrame repacked planar (ffmpeg::planarYuv)

  int outWidth = 0;
  int outHeight = 0;
  ffmpeg::UniqueSwsContext sws;
  std::vector<uint8_t> nativeRgb;   // colour-converted frame at its decoded size, padded rows
  std::vector<uint8_t> resizedRgb;  // resized, before rotation
  BilinearResizer resizer;

  [[noreturn]] void fail(const std::string& what, int rc) const {
    throw InputError(path, what + ": " + errorString(rc));
  }

  void open() {
    if (options.timeoutSeconds < 0) options.timeoutSeconds = defaultVideoTimeoutSeconds(path);
    if (options.timeoutSeconds > 0) {
      deadline = std::chrono::steady_clock::now() +
                 std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                     std::chrono::duration<double>(options.timeoutSeconds));
    }
    AVFormatContext* raw = avformat_alloc_context();
    if (raw == nullptr) fail("cannot allocate a demuxer", AVERROR(ENOMEM));
    raw->interrupt_callback.callback = &Impl::interrupt;
    raw->interrupt_callback.opaque = this;
    int rc = ffmpeg::openInput(&raw, path);  // local files, whitelisted containers only
    if (rc < 0) {
      checkDeadline();
      throw InputError(path, ffmpeg::openError(path, rc));  // avformat_open_input freed `raw` itself
    }
    format.reset(raw);

    rc = avformat_find_stream_info(format.get(), nullptr);
    if (rc < 0) fail("cannot read stream information", rc);

    const AVCodec* decoder = nullptr;
    rc = av_find_best_stream(format.get(), AVMEDIA_TYPE_VIDEO, -1, -1, &decoder, 0);
    if (rc == AVERROR_STREAM_NOT_FOUND) fail("no video stream", rc);
    if (rc == AVERROR_DECODER_NOT_FOUND) fail("no decoder for its video stream", rc);
    if (rc < 0) fail("cannot select the video stream", rc);
    stream = format->streams[rc];
    // Cover art in an audio file is a one-picture "video" stream, not a video.
    if (stream->disposition & AV_DISPOSITION_ATTACHED_PIC) {
      throw InputError(path, "no video stream (only an attached picture)");
    }
    timeBase = stream->time_base;

    codec.reset(avcodec_alloc_context3(decoder));
    if (!codec) throw std::bad_alloc();
    rc = avcodec_parameters_to_context(codec.get(), stream->codecpar);
    if (rc < 0) fail("cannot set up the video decoder", rc);
    // Lets the decoder compute best_effort_timestamp and durations in the stream's units.
    codec->pkt_timebase = timeBase;
    codec->thread_count = std::max(0, options.threads);
    codec->thread_type = FF_THREAD_FRAME | FF_THREAD_SLICE;
    // The decoder's error messages are counted (stats.errorsLogged); `opaque` finds this decoder.
    ffmpeg::installLogging(&countDecoderError);
    codec->opaque = this;
    {
      LoggedErrors& r = loggedErrors();
      std::lock_guard<std::mutex> lock(r.mutex);
      r.live[this] = &errorsLogged;
      registered = true;
    }
    if (cudaIndex(options.device) >= 0) setupHardware(decoder);
    // A stream may change its frame size mid-way (a new SPS): the decoder refuses to allocate a
    // picture over the limit, whatever the header said.
    codec->max_pixels = kMaxFramePixels;
    checkFrameSize(stream->codecpar->width, stream->codecpar->height);  // before the decoder refuses it, unclearly
    rc = avcodec_open2(codec.get(), decoder, nullptr);
    if (rc < 0) fail("cannot open the " + std::string(decoder->name) + " decoder", rc);

    packet.reset(av_packet_alloc());
    received.reset(av_frame_alloc());
    if (!packet || !received) throw std::bad_alloc();

    readInfo();
    outWidth = info.displayWidth;
    outHeight = info.displayHeight;
  }

  // The header's frame size, before anything is sized by it (kMaxFramePixels, kMaxAspectRatio).
  void checkFrameSize(int w, int h) const {
    const std::string size = std::to_string(w) + "x" + std::to_string(h);
    if (w <= 0 || h <= 0) throw InputError(path, "the stream header gives no frame size (" + size + ")");
    if (int64_t(w) * h > kMaxFramePixels) {
      throw InputError(path, "frame size " + size + " is over the limit of " + std::to_string(kMaxFramePixels) +
                                 " pixels (8192x8192)");
    }
    if (int64_t(std::max(w, h)) > int64_t(kMaxAspectRatio) * std::min(w, h)) {
      throw InputError(path, "frame size " + size + " has an aspect ratio over " +
                                 std::to_string(kMaxAspectRatio) + ":1");
    }
  }

  // Asks FFmpeg to decode with NVDEC: the decoder's CUDA hwaccel, the process's device context,
  // and getFormat() to pick the GPU format when the stream allows it. Falls back to the CPU (a
  // warning once per reason) when any of it is missing.
  void setupHardware(const AVCodec* decoder) {
    checkDecodeDevice(options.device);
    const AVCodecHWConfig* config = nullptr;
    for (int i = 0;; ++i) {
      const AVCodecHWConfig* c = avcodec_get_hw_config(decoder, i);
      if (c == nullptr) break;
      if ((c->methods & AV_CODEC_HW_CONFIG_METHOD_HW_DEVICE_CTX) && c->device_type == AV_HWDEVICE_TYPE_CUDA) {
        config = c;
        break;
      }
    }
    if (config == nullptr) {
      warnOnce(std::string("nvdec-codec:") + decoder->name,
               std::string("--decode-device ") + options.device + ": FFmpeg's " + decoder->name +
                   " decoder has no NVDEC (CUDA) support; decoding those videos on the CPU (first: " + path + ")");
      return;
    }
    std::string why;
    AVBufferRef* device = cudaDeviceContext(std::max(0, cudaIndex(options.device)), why);
    if (device == nullptr) {
      warnOnce("nvdec-device:" + options.device, "--decode-device " + options.device +
                                                      ": no CUDA device for NVDEC (" + why +
                                                      "); decoding on the CPU");
      return;
    }
    codec->hw_device_ctx = av_buffer_ref(device);
    if (codec->hw_device_ctx == nullptr) throw std::bad_alloc();
    hwFormat = config->pix_fmt;
    codec->get_format = &Impl::getFormat;
    // Surfaces held outside the decoder: the reorder window and the current frame.
    codec->extra_hw_frames = int(kReorderDepth) + 2;
    // The GPU decodes; CPU frame threads would only multiply the surfaces held (NVDEC has at most
    // 32) and could make the hwaccel refuse the stream.
    codec->thread_count = 1;
    hostFrame.reset(av_frame_alloc());
    if (!hostFrame) throw std::bad_alloc();
  }

  // FFmpeg's get_format: the GPU format when offered, else (NVDEC refused the stream: its
  // profile, bit depth or size; FFmpeg calls again without the GPU format after a failed hwaccel
  // set-up) the decoder's first software format, with a warning.
  static AVPixelFormat getFormat(AVCodecContext* ctx, const AVPixelFormat* formats) {
    auto* self = static_cast<Impl*>(ctx->opaque);
    for (const AVPixelFormat* f = formats; *f != AV_PIX_FMT_NONE; ++f) {
      if (*f == self->hwFormat) return *f;
    }
    for (const AVPixelFormat* f = formats; *f != AV_PIX_FMT_NONE; ++f) {
      const AVPixFmtDescriptor* d = av_pix_fmt_desc_get(*f);
      if (d != nullptr && !(d->flags & AV_PIX_FMT_FLAG_HWACCEL)) {
        warnOnce(std::string("nvdec-stream:") + avcodec_get_name(ctx->codec_id) + ":" +
                     (av_get_pix_fmt_name(*f) ? av_get_pix_fmt_name(*f) : "?"),
                 "--decode-device " + self->options.device + ": NVDEC cannot decode " + self->path + " (" +
                     avcodec_get_name(ctx->codec_id) + ", " + std::to_string(ctx->width) + "x" +
                     std::to_string(ctx->height) + "); such streams are decoded on the CPU");
        return *f;
      }
    }
    return AV_PIX_FMT_NONE;
  }

  void readInfo() {
    const AVCodecParameters* par = stream->codecpar;
    info.codec = avcodec_get_name(par->codec_id);
    info.codedWidth = par->width;
    info.codedHeight = par->height;
    info.rotation = streamRotation(stream);
    const bool swap = info.rotation == 90 || info.rotation == 270;
    info.displayWidth = swap ? par->height : par->width;
    info.displayHeight = swap ? par->width : par->height;
    info.avgFps = toDouble(stream->avg_frame_rate);
    if (stream->start_time != AV_NOPTS_VALUE)
      info.startTime = stream->start_time * av_q2d(timeBase);
    if (stream->duration != AV_NOPTS_VALUE && stream->duration > 0) {
      info.durationHint = stream->duration * av_q2d(timeBase);
    } else if (format->duration != AV_NOPTS_VALUE && format->duration > 0) {
      info.durationHint = static_cast<double>(format->duration) / AV_TIME_BASE;
    }
    info.frameCountHint = stream->nb_frames > 0 ? stream->nb_frames : -1;

    AVRational rate = av_guess_frame_rate(format.get(), stream, nullptr);
    if (rate.num > 0 && rate.den > 0) fallbackDuration = av_rescale_q(1, av_inv_q(rate), timeBase);
    if (fallbackDuration <= 0) fallbackDuration = 1;
  }

  // A broken packet or frame: skipped, counted, and decoding goes on. Out of memory is not a
  // property of the file and is rethrown.
  void noteDecodeError(int rc, const char* where) {
    if (rc == AVERROR(ENOMEM)) throw std::bad_alloc();
    ++stats.decodeErrors;
    spdlog::debug("{}: {} failed, skipped: {}", path, where, errorString(rc));
    if (++consecutiveErrors > kMaxConsecutiveErrors) {
      throw InputError(path, std::to_string(kMaxConsecutiveErrors) +
                                 " decode errors in a row, last: " + errorString(rc));
    }
  }

  // Sends the next packet of our stream to the decoder, or the flush signal at end of input.
  void feedDecoder() {
    for (;;) {
      if (!packetPending) {
        int rc = av_read_frame(format.get(), packet.get());
        if (rc < 0) {
          // Like ffmpeg and ffprobe, a read error ends the input; what was read is still drained.
          if (rc != AVERROR_EOF) noteDecodeError(rc, "reading a packet");
          rc = avcodec_send_packet(codec.get(), nullptr);
          if (rc < 0 && rc != AVERROR_EOF) fail("cannot flush the decoder", rc);
          flushSent = true;
          return;
        }
        if (packet->stream_index != stream->index) {
          av_packet_unref(packet.get());
          continue;
        }
      }
      int rc = avcodec_send_packet(codec.get(), packet.get());
      if (rc == AVERROR(EAGAIN)) {
        // The decoder has output to hand over first; keep the packet for the next call.
        packetPending = true;
        return;
      }
      packetPending = false;
      av_packet_unref(packet.get());
      if (rc < 0) {
        noteDecodeError(rc, "sending a packet");
        continue;
      }
      return;
    }
  }

  // Decodes one more frame into the window. Returns false once the decoder is fully drained.
  bool decodeOne() {
    while (!drained) {
      int rc = avcodec_receive_frame(codec.get(), received.get());
      if (rc >= 0) {
        consecutiveErrors = 0;
        enqueue();
        return true;
      }
      if (rc == AVERROR_EOF) {
        drained = true;
        break;
      }
      if (rc != AVERROR(EAGAIN)) noteDecodeError(rc, "decoding a frame");
      if (flushSent) {
        // While draining, an error is per frame and the next call goes on; EAGAIN cannot happen
        // after a flush, so treat it as the end rather than loop.
        if (rc == AVERROR(EAGAIN)) drained = true;
        continue;
      }
      feedDecoder();
    }
    return false;
  }

  // Moves `received` into the reorder window under its presentation time.
  void enqueue() {
    AVFrame* f = received.get();
    // Kept rather than dropped: frames the decoder flags as corrupt are error-concealed pictures
    // that ffprobe -count_frames counts too, and dropping them would shift every later index.
    // They are counted separately so a caller can judge the file.
    if ((f->flags & AV_FRAME_FLAG_CORRUPT) || f->decode_error_flags != 0) ++stats.framesCorrupt;

    int64_t pts = f->best_effort_timestamp;
    if (pts == AV_NOPTS_VALUE) pts = f->pts;
    if (pts == AV_NOPTS_VALUE) {
      // No timestamp at all: extrapolate from the previous frame and its duration (or one frame
      // at the stream's rate), so times keep increasing; the first frame starts at the stream
      // start.
      if (lastReceivedPts == AV_NOPTS_VALUE) {
        pts = stream->start_time != AV_NOPTS_VALUE ? stream->start_time : 0;
      } else {
        pts =
            lastReceivedPts + (lastReceivedDuration > 0 ? lastReceivedDuration : fallbackDuration);
      }
    }
    lastReceivedPts = pts;
    lastReceivedDuration = ffmpeg::frameDuration(f);

    ffmpeg::UniqueAVFrame held(av_frame_alloc());
    if (!held) throw std::bad_alloc();
    av_frame_move_ref(held.get(), f);
    Pending pending{pts, seq++, std::move(held)};
    auto pos = std::upper_bound(window.begin(), window.end(), pending,
                                [](const Pending& a, const Pending& b) {
                                  return a.pts != b.pts ? a.pts < b.pts : a.seq < b.seq;
                                });
    window.insert(pos, std::move(pending));
  }

  bool next(DecodedFrame& out) {
    checkDeadline();
    while (window.size() < kReorderDepth && decodeOne()) {
    }
    stats.errorsLogged = errorsLogged.load(std::memory_order_relaxed);
    if (window.empty()) return false;  // `current` stays: the last frame may still be converted
    Pending first = std::move(window.front());
    window.erase(window.begin());
    if (lastEmittedPts != AV_NOPTS_VALUE && first.pts < lastEmittedPts) ++stats.framesLate;
    lastEmittedPts = first.pts;
    current = std::move(first.frame);
    if (hwFormat != AV_PIX_FMT_NONE && current->format == hwFormat) ++stats.framesOnDevice;
    out.index = stats.framesDecoded++;
    out.pts = first.pts * av_q2d(timeBase);
    return true;
  }

  // Colour conversion, resize and rotation of `current` into `rgb`.
  //
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
  void convert(uint8_t* rgb) {
    if (!current) throw std::logic_error("VideoDecoder::convert() called without a current frame");
    const AVFrame* f = current.get();
    if (hwFormat != AV_PIX_FMT_NONE && f->format == hwFormat) {
      // An NVDEC frame: copied to host memory (NV12, or P010/P016 for more than 8 bits) only now,
      // for the frames a clip uses; converted from there as a software frame.
      av_frame_unref(hostFrame.get());
      const int rc = av_hwframe_transfer_data(hostFrame.get(), f, 0);
      if (rc < 0) fail("cannot copy an NVDEC frame to host memory", rc);
      // Repacked into the planar format CPU decoding gives, so the RGB is the same (see planarYuv).
      f = ffmpeg::planarYuv(hostFrame.get(), planarFrame);
      if (f == nullptr) throw std::bad_alloc();
    }
    const bool swap = info.rotation == 90 || info.rotation == 270;
    if (outWidth <= 0 || outHeight <= 0) {
      // The header had no frame size and no size was set: use the decoded one.
      outWidth = swap ? f->height : f->width;
      outHeight = swap ? f->width : f->height;
    }
    const int targetW = swap ? outHeight : outWidth;  // size before rotation
    const int targetH = swap ? outWidth : outHeight;
    const bool resize = targetW != f->width || targetH != f->height;
    const bool rotate = info.rotation != 0;

    // swscale's SIMD RGB writers store whole 8/16-pixel blocks and run past the end of a row
    // (valgrind: writes after a tightly sized buffer for 568-wide video_90.mov), so they never
    // write into the caller's buffer: rows go into our own buffer, padded to 32 pixels plus a
    // tail, and are copied or resampled from there.
    const size_t stride = static_cast<size_t>(FFALIGN(f->width, 32)) * 3;
    nativeRgb.resize(stride * f->height + 64);
    uint8_t* native = nativeRgb.data();
    sws.reset(sws_getCachedContext(sws.release(), f->width, f->height,
                                   static_cast<AVPixelFormat>(f->format), f->width, f->height,
                                   AV_PIX_FMT_RGB24, SWS_BILINEAR, nullptr, nullptr, nullptr));
    if (!sws) {
      const char* name = av_get_pix_fmt_name(static_cast<AVPixelFormat>(f->format));
      throw InputError(path, std::string("cannot convert pixel format ") +
                                 (name ? name : "unknown") + " to RGB");
    }
    uint8_t* dstData[4] = {native, nullptr, nullptr, nullptr};
    int dstLinesize[4] = {static_cast<int>(stride), 0, 0, 0};
    int rc = sws_scale(sws.get(), f->data, f->linesize, 0, f->height, dstData, dstLinesize);
    if (rc != f->height) fail("colour conversion failed", rc < 0 ? rc : AVERROR_BUG);

    if (!resize && !rotate) {
      const size_t row = static_cast<size_t>(f->width) * 3;
      for (int y = 0; y < f->height; ++y) std::memcpy(rgb + y * row, native + y * stride, row);
    } else if (!rotate) {
      resizer.resize(native, f->width, f->height, stride, rgb, targetW, targetH);
    } else if (!resize) {
      rotateRgb(native, f->width, f->height, stride, info.rotation, rgb);
    } else {
      resizedRgb.resize(static_cast<size_t>(targetW) * targetH * 3);
      resizer.resize(native, f->width, f->height, stride, resizedRgb.data(), targetW, targetH);
      rotateRgb(resizedRgb.data(), targetW, targetH, static_cast<size_t>(targetW) * 3,
                info.rotation, rgb);
    }
    ++stats.framesConverted;
  }
};

VideoDecoder::VideoDecoder(const std::string& path, const DecodeOptions& options)
    : impl_(std::make_unique<Impl>()) {
  impl_->path = path;
  impl_->options = options;
  impl_->open();
}

VideoDecoder::~VideoDecoder() = default;

const std::string& VideoDecoder::path() const { return impl_->path; }
const StreamInfo& VideoDecoder::info() const { return impl_->info; }
const DecodeStats& VideoDecoder::stats() const { return impl_->stats; }
int VideoDecoder::codecThreads() const { return std::max(1, impl_->codec->thread_count); }
bool VideoDecoder::threaded() const {
  return impl_->codec->thread_count > 1 && impl_->codec->active_thread_type != 0;
}

void VideoDecoder::setOutputSize(int width, int height) {
  if (width <= 0 || height <= 0) {
    throw std::invalid_argument("VideoDecoder::setOutputSize: size must be positive, got " +
                                std::to_string(width) + "x" + std::to_string(height));
  }
  impl_->outWidth = width;
  impl_->outHeight = height;
}

int VideoDecoder::outputWidth() const { return impl_->outWidth; }
int VideoDecoder::outputHeight() const { return impl_->outHeight; }

bool VideoDecoder::next(DecodedFrame& frame) { return impl_->next(frame); }

void VideoDecoder::convert(uint8_t* rgb) { impl_->convert(rgb); }

}  // namespace vidfeat
