#include "vidfeat/decode/video_probe.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <system_error>

#include "ffmpeg.h"
#include "vidfeat/decode/video_decoder.h"

namespace vidfeat {

namespace {

// The probe reads a header: a file whose header takes longer than this is given up on (FFmpeg
// polls the interrupt callback during its I/O).
constexpr double kProbeTimeoutSeconds = 60;

struct ProbeDeadline {
  std::chrono::steady_clock::time_point at;
  static int interrupt(void* self) {
    return std::chrono::steady_clock::now() > static_cast<const ProbeDeadline*>(self)->at ? 1 : 0;
  }
};

}  // namespace

double defaultVideoTimeoutSeconds(const std::string& path) {
  std::error_code ec;
  const auto bytes = std::filesystem::file_size(path, ec);
  const double bySize = ec ? 0.0 : double(bytes) / kAutoTimeoutBytesPerSecond;
  return std::max(kMinAutoTimeoutSeconds, bySize);
}

double ProbeResult::cost() const {
  if (estimatedFrames > 0) return double(estimatedFrames);
  // No header estimate: ~10 KB per frame is typical of web video at dataset resolutions.
  return std::max(1.0, double(fileBytes) / 10000.0);
}

ProbeResult probeVideo(const std::string& path) {
  ProbeResult r;
  namespace fs = std::filesystem;
  std::error_code ec;
  auto status = fs::status(path, ec);
  if (ec || !fs::exists(status)) {
    r.error = "file does not exist";
    return r;
  }
  if (!fs::is_regular_file(status)) {
    r.error = fs::is_directory(status) ? "is a directory, not a video file" : "not a regular file";
    return r;
  }
  r.fileBytes = static_cast<int64_t>(fs::file_size(path, ec));
  ProbeDeadline deadline{std::chrono::steady_clock::now() +
                         std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                             std::chrono::duration<double>(kProbeTimeoutSeconds))};
  AVFormatContext* raw = avformat_alloc_context();
  if (raw == nullptr) {
    r.error = "cannot allocate a demuxer";
    return r;
  }
  raw->interrupt_callback.callback = &ProbeDeadline::interrupt;
  raw->interrupt_callback.opaque = &deadline;
  int rc = ffmpeg::openInput(&raw, path);
  if (rc < 0) {
    r.error = ProbeDeadline::interrupt(&deadline)
                  ? "cannot open: its header took over " +
                        std::to_string(int(kProbeTimeoutSeconds)) + " s to read"
                  : ffmpeg::openError(path, rc);
    return r;
  }
  ffmpeg::UniqueAVFormatContext format(raw);
  r.ok = true;
  for (unsigned i = 0; i < format->nb_streams; ++i) {
    const AVStream* st = format->streams[i];
    if (st->codecpar->codec_type != AVMEDIA_TYPE_VIDEO ||
        (st->disposition & AV_DISPOSITION_ATTACHED_PIC)) {
      continue;
    }
    if (st->nb_frames > 0) {
      r.estimatedFrames = st->nb_frames;
    } else {
      double fps = st->avg_frame_rate.num > 0 && st->avg_frame_rate.den > 0
                       ? av_q2d(st->avg_frame_rate)
                       : av_q2d(st->r_frame_rate);
      double seconds = st->duration > 0
                           ? st->duration * av_q2d(st->time_base)
                           : (format->duration > 0 ? double(format->duration) / AV_TIME_BASE : -1);
      if (fps > 0 && seconds > 0)
        r.estimatedFrames = static_cast<int64_t>(std::min(seconds * fps + 0.5, 9e18));
    }
    // A header may claim what the file cannot hold (1e9 s in a 6 KB MKV scheduled it first on
    // every resume): no frame takes fewer than kMinBytesPerFrame bytes with its container framing.
    r.estimatedFrames =
        std::min(r.estimatedFrames, std::max<int64_t>(1, r.fileBytes / kMinBytesPerFrame));
    break;
  }
  return r;
}

}  // namespace vidfeat
