// Demuxing, decoding and presentation-order output of a video's first stream. NVDEC set-up is in
// nvdec.cpp, the pixel work (colour conversion, resize, rotation) in frame_convert.cpp.
#include "vidfeat/decode/video_decoder.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <stdexcept>
#include <utility>
#include <vector>

#include "ffmpeg.h"
#include "frame_convert.h"
#include "nvdec.h"
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
  if (level <= AV_LOG_ERROR && avcl != nullptr &&
      *static_cast<const AVClass* const*>(avcl) == avcodec_get_class()) {
    const void* owner = static_cast<const AVCodecContext*>(avcl)->opaque;
    if (owner != nullptr) {
      LoggedErrors& r = loggedErrors();
      std::lock_guard<std::mutex> lock(r.mutex);
      if (auto it = r.live.find(owner); it != r.live.end())
        it->second->fetch_add(1, std::memory_order_relaxed);
    }
  }
}

double toDouble(AVRational r) { return (r.num > 0 && r.den > 0) ? av_q2d(r) : 0.0; }

}  // namespace

struct VideoDecoder::Impl {
  // A decoded frame waiting in the reorder window.
  struct Pending {
    int64_t pts;  // stream time-base units
    int64_t seq;  // decoder output order, breaks pts ties
    ffmpeg::UniqueAVFrame frame;
  };

  Impl(const std::string& videoPath, const DecodeOptions& decodeOptions)
      : path(videoPath), options(decodeOptions), converter(videoPath) {}

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
      throw DecodeTimeout(
          path, "gave up after " + std::to_string(options.timeoutSeconds) + " s (--video-timeout)");
    }
  }
  // FFmpeg polls this during blocking demuxer I/O; non-zero aborts the operation.
  static int interrupt(void* self) {
    return static_cast<const Impl*>(self)->pastDeadline() ? 1 : 0;
  }

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
  ffmpeg::UniqueAVFrame current;   // frame last returned by next(), for convert()
  ffmpeg::UniqueAVFrame previous;  // the one before, with keepPrevious (convertPreviousTo)
  bool keepPrevious = false;

  Nvdec nvdec;  // DecodeOptions::device cuda; idle on the CPU

  int outWidth = 0;
  ResizeFilter resizeFilter = ResizeFilter::TorchBilinear;
  int outHeight = 0;
  FrameConverter converter;
  struct OtherSize {  // convertTo's converters, one per size and filter
    int width, height;
    ResizeFilter filter;
    std::unique_ptr<FrameConverter> converter;
  };
  std::vector<OtherSize> otherSizes;

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
      throw InputError(path,
                       ffmpeg::openError(path, rc));  // avformat_open_input freed `raw` itself
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
    if (cudaIndex(options.device) >= 0 &&
        nvdec.setUp(codec.get(), decoder, options.device, path, int(kReorderDepth) + 2)) {
      codec->get_format = &Impl::getFormat;
    }
    // A stream may change its frame size mid-way (a new SPS): the decoder refuses to allocate a
    // picture over the limit, whatever the header said.
    codec->max_pixels = kMaxFramePixels;
    checkFrameSize(stream->codecpar->width,
                   stream->codecpar->height);  // before the decoder refuses it, unclearly
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
    if (w <= 0 || h <= 0)
      throw InputError(path, "the stream header gives no frame size (" + size + ")");
    if (int64_t(w) * h > kMaxFramePixels) {
      throw InputError(path, "frame size " + size + " is over the limit of " +
                                 std::to_string(kMaxFramePixels) + " pixels (8192x8192)");
    }
    if (int64_t(std::max(w, h)) > int64_t(kMaxAspectRatio) * std::min(w, h)) {
      throw InputError(path, "frame size " + size + " has an aspect ratio over " +
                                 std::to_string(kMaxAspectRatio) + ":1");
    }
  }

  // FFmpeg's get_format once NVDEC is set up; the codec context's `opaque` is this decoder.
  static AVPixelFormat getFormat(AVCodecContext* ctx, const AVPixelFormat* formats) {
    return static_cast<const Impl*>(ctx->opaque)->nvdec.pickFormat(ctx, formats);
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
    if (keepPrevious) previous = std::move(current);
    current = std::move(first.frame);
    if (nvdec.holds(current.get())) ++stats.framesOnDevice;
    out.index = stats.framesDecoded++;
    out.pts = first.pts * av_q2d(timeBase);
    return true;
  }

  // Colour conversion, resize and rotation of `current` into `rgb` (FrameConverter says how).
  void convert(uint8_t* rgb) {
    if (!current) throw std::logic_error("VideoDecoder::convert() called without a current frame");
    const AVFrame* f = current.get();
    // An NVDEC frame is copied to host memory only now, for the frames a clip uses.
    if (nvdec.holds(f)) f = nvdec.hostCopy(f);
    if (outWidth <= 0 || outHeight <= 0) {
      // The header had no frame size and no size was set: use the decoded one.
      const bool swap = info.rotation == 90 || info.rotation == 270;
      outWidth = swap ? f->height : f->width;
      outHeight = swap ? f->width : f->height;
    }
    converter.convert(f, info.rotation, outWidth, outHeight, rgb, resizeFilter);
    ++stats.framesConverted;
  }

  void convertTo(uint8_t* rgb, int width, int height, ResizeFilter filter) {
    if (!current)
      throw std::logic_error("VideoDecoder::convertTo() called without a current frame");
    convertFrame(current.get(), rgb, width, height, filter);
  }

  void convertPreviousTo(uint8_t* rgb, int width, int height, ResizeFilter filter) {
    if (!previous) throw std::logic_error("VideoDecoder: no previous frame kept to convert");
    convertFrame(previous.get(), rgb, width, height, filter);
  }

  // `frame` at `width` x `height` with `filter`: the output size's converter, or one of its own.
  void convertFrame(const AVFrame* f, uint8_t* rgb, int width, int height, ResizeFilter filter) {
    if (width <= 0 || height <= 0)
      throw std::invalid_argument("VideoDecoder::convertTo: size must be positive");
    if (nvdec.holds(f)) f = nvdec.hostCopy(f);
    FrameConverter* c = nullptr;
    if (width == outWidth && height == outHeight && filter == resizeFilter) c = &converter;
    for (auto& e : otherSizes) {
      if (!c && e.width == width && e.height == height && e.filter == filter) c = e.converter.get();
    }
    if (!c) {
      otherSizes.push_back({width, height, filter, std::make_unique<FrameConverter>(path)});
      c = otherSizes.back().converter.get();
    }
    c->convert(f, info.rotation, width, height, rgb, filter);
    ++stats.framesConverted;
  }
};

VideoDecoder::VideoDecoder(const std::string& path, const DecodeOptions& options)
    : impl_(std::make_unique<Impl>(path, options)) {
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

void VideoDecoder::setOutputSize(int width, int height, ResizeFilter filter) {
  if (width <= 0 || height <= 0) {
    throw std::invalid_argument("VideoDecoder::setOutputSize: size must be positive, got " +
                                std::to_string(width) + "x" + std::to_string(height));
  }
  impl_->outWidth = width;
  impl_->outHeight = height;
  impl_->resizeFilter = filter;
}

int VideoDecoder::outputWidth() const { return impl_->outWidth; }
int VideoDecoder::outputHeight() const { return impl_->outHeight; }

bool VideoDecoder::next(DecodedFrame& frame) { return impl_->next(frame); }

void VideoDecoder::convert(uint8_t* rgb) { impl_->convert(rgb); }
void VideoDecoder::convertTo(uint8_t* rgb, int width, int height, ResizeFilter filter) {
  impl_->convertTo(rgb, width, height, filter);
}
void VideoDecoder::setKeepPrevious(bool on) {
  impl_->keepPrevious = on;
  if (!on) impl_->previous.reset();
}
void VideoDecoder::convertPreviousTo(uint8_t* rgb, int width, int height, ResizeFilter filter) {
  impl_->convertPreviousTo(rgb, width, height, filter);
}

}  // namespace vidfeat
