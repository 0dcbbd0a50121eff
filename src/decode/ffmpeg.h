#pragma once
// The one place that includes FFmpeg's headers. Every libav object has exactly one owner: the
// std::unique_ptr aliases below free it with the matching FFmpeg function, so no other code calls
// av_free / *_free by hand. Version differences between FFmpeg releases are absorbed here too.
//
// Written against FFmpeg 5.1 (Debian 12: libavformat 59, libavcodec 59, libavutil 57,
// libswscale 6); the shims keep it building with later releases.
extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/avutil.h>
#include <libavutil/dict.h>
#include <libavutil/display.h>
#include <libavutil/error.h>
#include <libavutil/frame.h>
#include <libavutil/hwcontext.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>
}

#include <cstdarg>
#include <cstdint>
#include <memory>
#include <string>

namespace vidfeat::ffmpeg {

// FFmpeg frees objects with two shapes of function: `void f(T**)`, which also nulls the caller's
// pointer, and `void f(T*)`. One small deleter template per shape.
template <typename T, void (*FreeFn)(T**)>
struct DeleterP {
  void operator()(T* p) const {
    if (p != nullptr) FreeFn(&p);
  }
};

template <typename T, void (*FreeFn)(T*)>
struct Deleter {
  void operator()(T* p) const {
    if (p != nullptr) FreeFn(p);
  }
};

// avformat_close_input (not avformat_free_context): the context comes from avformat_open_input,
// which also opened the I/O context that must be closed with it.
using UniqueAVFormatContext =
    std::unique_ptr<AVFormatContext, DeleterP<AVFormatContext, avformat_close_input>>;
using UniqueAVCodecContext =
    std::unique_ptr<AVCodecContext, DeleterP<AVCodecContext, avcodec_free_context>>;
using UniqueAVFrame = std::unique_ptr<AVFrame, DeleterP<AVFrame, av_frame_free>>;
using UniqueAVPacket = std::unique_ptr<AVPacket, DeleterP<AVPacket, av_packet_free>>;
using UniqueSwsContext = std::unique_ptr<SwsContext, Deleter<SwsContext, sws_freeContext>>;
// A reference to a refcounted buffer (e.g. a hardware device context); av_buffer_unref drops it.
using UniqueAVBufferRef = std::unique_ptr<AVBufferRef, DeleterP<AVBufferRef, av_buffer_unref>>;

// FFmpeg's text for a return code, e.g. "Invalid data found when processing input".
// Local paths go to the file protocol explicitly, so that a name containing ':' (e.g.
// "clip:1.mp4") is not taken for a protocol prefix. Names with a scheme are passed through.
inline std::string url(const std::string& path) {
  if (path.find("://") != std::string::npos) return path;
  return "file:" + path;
}

// FFmpeg's log through spdlog with a level and a rate limit (ffmpeg_log.cpp says how much gets
// through). Idempotent; call before the first libav call that may log. `hook`, when given, is
// also called for every line FFmpeg logs, before any filtering (the decoder counts errors so).
using LogHook = void (*)(void* avcl, int level);
void installLogging(LogHook hook = nullptr);
// The filtered, rate-limited spdlog output itself, for an av_log callback installed elsewhere
// that wants to print as vidfeat does (instead of av_log_default_callback).
void forwardLog(void* avcl, int level, const char* fmt, va_list args);

// The options of every avformat_open_input: only local files (protocol_whitelist=file) and only
// the containers vidfeat reads (format_whitelist). FFmpeg picks a demuxer by content, not by
// name, so without them a 33-byte text file "ffconcat version 1.0 / file self.mp4" is a concat
// playlist that opens itself until the stack or the file table runs out, and HLS / DASH
// playlists reach other files or hosts. The whitelist names demuxers (FFmpeg's names):
inline constexpr const char* kFormatWhitelist =
    "mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,avi,flv,mpegts,mpeg,gif,asf,ogg,m4v,h264,hevc,mjpeg,"
    "yuv4mpegpipe,nut,rawvideo,dv,mxf,ivf,obu,image2,png_pipe,jpeg_pipe,apng,webp_pipe";

// Opens `path` with the whitelists above into *ctx (allocated by the caller, with its interrupt
// callback set, or null). Returns avformat_open_input's code; on failure *ctx is freed and null.
// A demuxer that is not on the list fails with EINVAL; openError says which one it was.
inline int openInput(AVFormatContext** ctx, const std::string& path) {
  installLogging();
  AVDictionary* raw = nullptr;
  av_dict_set(&raw, "protocol_whitelist", "file", 0);
  av_dict_set(&raw, "format_whitelist", kFormatWhitelist, 0);
  const int rc = avformat_open_input(ctx, url(path).c_str(), nullptr, &raw);
  av_dict_free(&raw);  // what the demuxer did not consume
  return rc;
}

// Why openInput failed, for the message: a format FFmpeg recognises but the whitelist refuses is
// named (the first 4 KiB probed again, as FFmpeg probes them).
std::string openError(const std::string& path, int rc);

inline std::string errorString(int code) {
  char buf[AV_ERROR_MAX_STRING_SIZE] = {0};
  if (av_strerror(code, buf, sizeof(buf)) < 0) {
    return "unknown FFmpeg error " + std::to_string(code);
  }
  return buf;
}

// A frame's duration in stream time-base units, 0 when unknown. FFmpeg 5.1 only has
// pkt_duration; libavutil 57.30 added AVFrame::duration and later releases drop pkt_duration.
inline int64_t frameDuration(const AVFrame* frame) {
#if LIBAVUTIL_VERSION_INT >= AV_VERSION_INT(57, 30, 100)
  return frame->duration;
#else
  return frame->pkt_duration;
#endif
}

// The stream's display matrix (9 int32 values), or nullptr when it has none. FFmpeg 6.1 moved
// stream side data into codecpar and deprecated av_stream_get_side_data.
inline const int32_t* displayMatrix(const AVStream* stream) {
#if LIBAVFORMAT_VERSION_INT >= AV_VERSION_INT(60, 15, 100)
  const AVPacketSideData* sd =
      av_packet_side_data_get(stream->codecpar->coded_side_data,
                              stream->codecpar->nb_coded_side_data, AV_PKT_DATA_DISPLAYMATRIX);
  if (sd == nullptr || sd->size < 9 * sizeof(int32_t)) return nullptr;
  return reinterpret_cast<const int32_t*>(sd->data);
#else
  size_t size = 0;
  const uint8_t* data = av_stream_get_side_data(stream, AV_PKT_DATA_DISPLAYMATRIX, &size);
  if (data == nullptr || size < 9 * sizeof(int32_t)) return nullptr;
  return reinterpret_cast<const int32_t*>(data);
#endif
}

}  // namespace vidfeat::ffmpeg
