#include "vidfeat/dist/stop_signal.h"

#include <unistd.h>

#include <atomic>
#include <cstring>
#include <initializer_list>

namespace vidfeat {

namespace {

std::atomic<int> firstSignal{0};
std::atomic<int> signalCount{0};
static_assert(std::atomic<int>::is_always_lock_free, "the handler needs a lock-free atomic");

void writeStderr(const char* text) {
  ssize_t ignored = ::write(STDERR_FILENO, text, std::strlen(text));
  (void)ignored;
}

void onSignal(int sig) {
  const int count = signalCount.fetch_add(1) + 1;
  int expected = 0;
  firstSignal.compare_exchange_strong(expected, sig);
  if (count == 1) {
    writeStderr("vidfeat: ");
    writeStderr(signalName(sig));
    writeStderr(": stopping after the batch in hand and one last write (a second signal exits at once)\n");
  } else {
    writeStderr("vidfeat: ");
    writeStderr(signalName(sig));
    writeStderr(" again: exiting now; rerun the same command to resume\n");
    ::_exit(kInterrupted);
  }
}

}  // namespace

const char* signalName(int sig) {
  switch (sig) {
    case SIGTERM: return "SIGTERM";
    case SIGINT: return "SIGINT";
    case SIGUSR1: return "SIGUSR1";
    default: return "a signal";
  }
}

void installStopHandlers() {
  struct sigaction sa;
  std::memset(&sa, 0, sizeof sa);
  sa.sa_handler = onSignal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;  // blocking calls (MPI progress, file I/O) go on after the handler
  for (int sig : {SIGTERM, SIGINT, SIGUSR1}) sigaction(sig, &sa, nullptr);
}

int stopSignal() { return firstSignal.load(); }

void requestStop(int sig) {
  int expected = 0;
  firstSignal.compare_exchange_strong(expected, sig);
}

}  // namespace vidfeat
