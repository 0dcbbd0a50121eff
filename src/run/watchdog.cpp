#include "vidfeat/run/watchdog.h"

#include <fmt/core.h>

#include <algorithm>
#include <cstdint>

#include "vidfeat/mpi/mpi_session.h"

namespace vidfeat {

namespace {
int64_t nowTicks() { return std::chrono::steady_clock::now().time_since_epoch().count(); }
}  // namespace

Watchdog::Watchdog(double seconds) : seconds_(seconds), last_(nowTicks()) {
  if (seconds_ > 0) thread_ = std::thread([this] { loop(); });
}

Watchdog::~Watchdog() {
  if (!thread_.joinable()) return;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void Watchdog::tick(const char* what) {
  last_.store(nowTicks());
  lastWhat_.store(what);
}

void Watchdog::loop() {
  using namespace std::chrono;
  const auto check = duration<double>(std::min(1.0, seconds_ / 4));
  std::unique_lock<std::mutex> lock(mutex_);
  while (!wake_.wait_for(lock, check, [&] { return stopping_; })) {
    const auto last = steady_clock::time_point(steady_clock::duration(last_.load()));
    const double silent = duration<double>(steady_clock::now() - last).count();
    if (silent >= seconds_) {
      abortJob(
          fmt::format(
              "watchdog: no collective step (wave-sync round or wave) completed for {:.0f} s "
              "(last: {}); a rank is stuck (in a collective call another rank never entered, a "
              "hung file system call, or a decoder call that does not return). Rerun to resume; "
              "--watchdog SECONDS changes the limit (0 = off)",
              silent, lastWhat_.load()),
          1);
    }
  }
}

}  // namespace vidfeat
