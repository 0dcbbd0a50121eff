#pragma once
// Progress watchdog of a run (--watchdog SECONDS): a thread that takes the whole job down with a
// message (abortJob: "rank R: no collective step completed for S s ...", MPI_Abort) when no
// collective step — a WaveSync round or a wave — completed on this rank for `seconds`. Rounds
// complete between two forward passes of every rank (and every 50 ms while a rank waits for
// clips), so a healthy run ticks many times a second; silence means a rank is stuck (inside a
// collective another rank never entered, in a hung file system call, in a decoder call that
// does not return). 0 seconds: off.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>

namespace vidfeat {

class Watchdog {
 public:
  explicit Watchdog(double seconds);
  ~Watchdog();  // stops the thread
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  // A collective step completed: restart the clock. `what` names the step for the message (a
  // string literal).
  void tick(const char* what);

 private:
  void loop();
  double seconds_;
  std::atomic<int64_t> last_;  // steady-clock ticks of the last step
  std::atomic<const char*> lastWhat_{"start of the run loop"};
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace vidfeat
