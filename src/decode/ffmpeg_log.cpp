// FFmpeg's log, routed through spdlog (see ffmpeg.h: installLogging). FFmpeg's own default
// callback writes every line to stderr at level info; a broken or hostile file can make a demuxer
// or decoder log the same complaint for every packet (a 280 KB ffconcat list wrote 3.3 MB). Here:
//   - level: warnings and worse (FFmpeg "info" and below only when spdlog is at debug or trace);
//   - per message (keyed by its format string, so "error at MB 12 13" and "... 14 15" count as
//     one): the first kFirstRepeats lines are printed, then one line at the 10th, 100th, 1000th ...
//     occurrence saying how often it was seen;
//   - in all: at most kBurst lines, refilled at kLinesPerSecond; what is dropped is counted and
//     said in the next printed line.
// So a file's log is O(distinct messages + seconds), not O(packets).
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <string>
#include <unordered_map>

extern "C" {
#include <libavutil/avstring.h>
}

#include "ffmpeg.h"

namespace vidfeat::ffmpeg {

namespace {

constexpr int kFirstRepeats = 3;
constexpr double kBurst = 200;
constexpr double kLinesPerSecond = 20;
constexpr size_t kMaxKeys = 4096;

std::atomic<LogHook> gHook{nullptr};

void logLine(void* avcl, int level, const char* fmt, va_list args);

struct LogState {
  std::mutex mutex;
  std::unordered_map<const char*, int64_t> seen;  // format string -> occurrences
  double tokens = kBurst;
  std::chrono::steady_clock::time_point refilled = std::chrono::steady_clock::now();
  int64_t dropped = 0;
  int printPrefix = 1;  // av_log_format_line2's line-start state
};

LogState& state() {
  static LogState* s = new LogState;  // never destroyed: FFmpeg may log at exit
  return *s;
}

bool isPowerOfTen(int64_t n) {
  while (n >= 10 && n % 10 == 0) n /= 10;
  return n == 1;
}

void logLine(void* avcl, int level, const char* fmt, va_list args) {
  if (LogHook hook = gHook.load(std::memory_order_acquire)) hook(avcl, level);
  forwardLog(avcl, level, fmt, args);
}

}  // namespace

void forwardLog(void* avcl, int level, const char* fmt, va_list args) {
  if (level > av_log_get_level() || fmt == nullptr) return;
  LogState& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  if (s.seen.size() >= kMaxKeys) s.seen.clear();
  const int64_t n = ++s.seen[fmt];
  char line[1024];
  va_list copy;
  va_copy(copy, args);
  av_log_format_line2(avcl, level, fmt, copy, line, sizeof line, &s.printPrefix);
  va_end(copy);
  if (n > kFirstRepeats && !isPowerOfTen(n)) return;
  const auto now = std::chrono::steady_clock::now();
  s.tokens = std::min(
      kBurst, s.tokens + kLinesPerSecond * std::chrono::duration<double>(now - s.refilled).count());
  s.refilled = now;
  if (s.tokens < 1) {
    ++s.dropped;
    return;
  }
  s.tokens -= 1;
  size_t len = std::strlen(line);
  while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = '\0';
  if (len == 0) return;
  std::string text = std::string("ffmpeg: ") + line;
  if (n > kFirstRepeats) text += " (seen " + std::to_string(n) + " times; repeats are not printed)";
  if (s.dropped > 0) {
    text += " [" + std::to_string(s.dropped) + " FFmpeg lines dropped by the log rate limit]";
    s.dropped = 0;
  }
  if (level <= AV_LOG_WARNING) {
    spdlog::warn("{}", text);
  } else if (level <= AV_LOG_INFO) {
    spdlog::info("{}", text);
  } else {
    spdlog::debug("{}", text);
  }
}

void installLogging(LogHook hook) {
  if (hook) gHook.store(hook, std::memory_order_release);
  static std::once_flag once;
  std::call_once(once, [] {
    const auto level = spdlog::default_logger()->level();
    av_log_set_level(level <= spdlog::level::trace   ? AV_LOG_DEBUG
                     : level <= spdlog::level::debug ? AV_LOG_VERBOSE
                                                     : AV_LOG_WARNING);
    av_log_set_callback(&logLine);
  });
}

}  // namespace vidfeat::ffmpeg

namespace vidfeat::ffmpeg {

std::string openError(const std::string& path, int rc) {
  {
    std::string head(4096 + AVPROBE_PADDING_SIZE, '\0');
    if (std::FILE* f = std::fopen(path.c_str(), "rb")) {
      const size_t n = std::fread(head.data(), 1, 4096, f);
      std::fclose(f);
      AVProbeData pd{};
      pd.filename = path.c_str();
      pd.buf = reinterpret_cast<unsigned char*>(head.data());
      pd.buf_size = int(n);
      const AVInputFormat* fmt = av_probe_input_format(&pd, 1);
      if (fmt != nullptr && av_match_list(fmt->name, kFormatWhitelist, ',') <= 0) {
        return std::string("cannot open: its content is FFmpeg format '") + fmt->name +
               "', not a video container vidfeat reads (playlists such as ffconcat, HLS and DASH "
               "are refused)";
      }
    }
  }
  return "cannot open: " + errorString(rc);
}

}  // namespace vidfeat::ffmpeg
