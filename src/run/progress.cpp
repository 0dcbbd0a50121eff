#include "vidfeat/run/progress.h"

#include <fmt/core.h>

#include <algorithm>
#include <cstdlib>

#include "vidfeat/common/log.h"

namespace vidfeat {

namespace {

constexpr double kLiveRefreshSeconds = 0.1;  // tqdm's mininterval
constexpr int kMaxBarWidth = 30;

std::string duration(double s) {
  if (s < 0 || s > 1e8) return "?";
  int64_t t = int64_t(s + 0.5);
  if (t >= 3600) return fmt::format("{}h{:02}m", t / 3600, (t % 3600) / 60);
  if (t >= 60) return fmt::format("{}m{:02}s", t / 60, t % 60);
  return fmt::format("{}s", t);
}

std::string eta(int64_t done, int64_t total, double elapsed) {
  if (done >= total) return "0s";
  return done > 0 ? duration(elapsed * double(total - done) / double(done)) : "?";
}

// $VIDFEAT_PROGRESS_INTERVAL seconds between plain progress lines, else `fallback`.
double plainInterval(double fallback) {
  const char* text = std::getenv("VIDFEAT_PROGRESS_INTERVAL");
  if (text == nullptr || text[0] == '\0') return fallback;
  char* end = nullptr;
  const double s = std::strtod(text, &end);
  if (*end != '\0' || !(s > 0) || s > 1e6) {
    spdlog::warn(
        "VIDFEAT_PROGRESS_INTERVAL='{}' is not a number of seconds in (0, 1e6]; using {} s", text,
        fallback);
    return fallback;
  }
  return s;
}

}  // namespace

std::string ProgressReporter::statusLine(int64_t done, int64_t total, int64_t failed,
                                         double clipsPerSecond, double elapsedSeconds,
                                         int columns) {
  std::string line = fmt::format("{}/{} videos", done, total);
  // The bar's width follows the terminal's (not the fields', which would make it jump), and leaves
  // room for the count and " [", "] 100%".
  const int width = std::min({kMaxBarWidth, columns / 4, columns - 1 - int(line.size()) - 8});
  if (width >= 10) {
    const double fraction = total > 0 ? std::clamp(double(done) / double(total), 0.0, 1.0) : 1.0;
    const int filled = int(fraction * width);
    std::string bar(size_t(filled), '=');
    if (filled < width) bar += '>';
    bar.resize(size_t(width), ' ');
    line += fmt::format(" [{}] {:3}%", bar, int(100.0 * fraction));  // 100% only when done
  }
  // Most wanted first; whole fields only, as many as fit (one column stays free: no wrap).
  const std::string fields[] = {
      "ETA " + eta(done, total, elapsedSeconds), fmt::format("{} failed", failed),
      fmt::format("{:.2f} clips/s", clipsPerSecond), "elapsed " + duration(elapsedSeconds)};
  const char* separator = width >= 10 ? " " : ", ";
  for (const std::string& f : fields) {
    if (int(line.size() + 2 + f.size()) > columns - 1) break;
    line += separator + f;
    separator = ", ";
  }
  return line;
}

std::string ProgressReporter::plainLine(int64_t done, int64_t total, int64_t failed,
                                        double clipsPerSecond, double elapsedSeconds) {
  return fmt::format("progress: {}/{} videos ({} failed), {:.2f} clips/s, elapsed {}, ETA {}", done,
                     total, failed, clipsPerSecond, duration(elapsedSeconds),
                     eta(done, total, elapsedSeconds));
}

ProgressReporter::ProgressReporter(int64_t total, bool enabled, double logIntervalSeconds)
    : total_(total),
      enabled_(enabled && verbosity() != Verbosity::Quiet),
      live_(liveStatusLine()),
      interval_(live_ ? kLiveRefreshSeconds : plainInterval(logIntervalSeconds)),
      start_(std::chrono::steady_clock::now()),
      lastShown_(start_) {}

ProgressReporter::~ProgressReporter() { finish(); }

void ProgressReporter::update(int64_t done, int64_t failed, int64_t clips) {
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  const double since = std::chrono::duration<double>(now - lastShown_).count();
  const bool final = done >= total_;
  // The live line appears at the first update; the plain lines every interval; both at the end.
  if (final ? done == lastDone_ : (since < interval_ && (shown_ || !live_))) return;
  lastShown_ = now;
  lastDone_ = done;
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  const double rate = elapsed > 0 ? double(clips) / elapsed : 0.0;
  if (live_) {
    setStatusLine(statusLine(done, total_, failed, rate, elapsed, terminalColumns()));
    shown_ = true;
  } else {
    spdlog::info("{}", plainLine(done, total_, failed, rate, elapsed));
  }
}

void ProgressReporter::finish() {
  if (shown_) endStatusLine();
  shown_ = false;
}

}  // namespace vidfeat
