#include "vidfeat/decode/video_probe.h"

#include <filesystem>
#include <system_error>

#include "ffmpeg.h"

namespace vidfeat {

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
  AVFormatContext* raw = nullptr;
  int rc = avformat_open_input(&raw, ffmpeg::url(path).c_str(), nullptr, nullptr);
  if (rc < 0) {
    r.error = "cannot open: " + ffmpeg::errorString(rc);
    return r;
  }
  ffmpeg::UniqueAVFormatContext format(raw);
  r.ok = true;
  for (unsigned i = 0; i < format->nb_streams; ++i) {
    const AVStream* st = format->streams[i];
    if (st->codecpar->codec_type != AVMEDIA_TYPE_VIDEO || (st->disposition & AV_DISPOSITION_ATTACHED_PIC)) {
      continue;
    }
    if (st->nb_frames > 0) {
      r.estimatedFrames = st->nb_frames;
    } else {
      double fps = st->avg_frame_rate.num > 0 && st->avg_frame_rate.den > 0 ? av_q2d(st->avg_frame_rate)
                                                                              : av_q2d(st->r_frame_rate);
      double seconds = st->duration > 0 ? st->duration * av_q2d(st->time_base)
                                        : (format->duration > 0 ? double(format->duration) / AV_TIME_BASE : -1);
      if (fps > 0 && seconds > 0) r.estimatedFrames = static_cast<int64_t>(seconds * fps + 0.5);
    }
    break;
  }
  return r;
}

}  // namespace vidfeat
