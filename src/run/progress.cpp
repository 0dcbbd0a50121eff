#include "vidfeat/run/progress.h"

#include <fmt/core.h>
#include <unistd.h>

#include <cstdio>

#include "vidfeat/common/log.h"

namespace vidfeat {

namespace {
std::string duration(double s) {
  if (s < 0 || s > 1e8) return "?";
  int64_t t = int64_t(s + 0.5);
  if (t >= 3600) return fmt::format("{}h{:02}m", t / 3600, (t % 3600) / 60);
  if (t >= 60) return fmt::format("{}m{:02}s", t / 60, t % 60);
  return fmt::format("{}s", t);
}
}  // namespace

ProgressReporter::ProgressReporter(int64_t total, bool enabled, double logIntervalSeconds)
    : total_(total), enabled_(enabled), tty_(isatty(STDERR_FILENO) == 1), interval_(logIntervalSeconds),
      start_(std::chrono::steady_clock::now()), lastShown_(start_) {}

void ProgressReporter::update(int64_t done, int64_t failed, int64_t clips) {
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  const double since = std::chrono::duration<double>(now - lastShown_).count();
  const bool final = done >= total_;
  if (final ? done == lastDone_ : since < (tty_ ? 0.5 : interval_)) return;
  lastShown_ = now;
  lastDone_ = done;
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  const double rate = elapsed > 0 ? clips / elapsed : 0.0;
  const double eta = done > 0 ? elapsed * double(total_ - done) / double(done) : -1.0;
  std::string line = fmt::format("{}/{} videos ({} failed), {:.2f} clips/s, elapsed {}, ETA {}", done, total_,
                                 failed, rate, duration(elapsed), done > 0 ? duration(eta) : "?");
  if (tty_) {
    std::fprintf(stderr, "\r\033[K[progress] %s", line.c_str());
    std::fflush(stderr);
    shown_ = true;
  } else {
    spdlog::info("progress: {}", line);
  }
}

void ProgressReporter::finish() {
  if (enabled_ && tty_ && shown_) std::fputc('\n', stderr);
}

}  // namespace vidfeat
