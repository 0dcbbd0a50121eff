#include "vidfeat/run/stop_signal.h"

#include <pthread.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <initializer_list>
#include <thread>

#include "vidfeat/common/log.h"

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
  // On a terminal the message goes above the live status line: erase it first (the sink draws it
  // again at its next line; a handler cannot take the sink's mutex).
  if (liveStatusLine()) writeStderr("\r\033[K");
  if (count == 1) {
    writeStderr("vidfeat: ");
    writeStderr(signalName(sig));
    writeStderr(
        ": stopping after the batch in hand and one last write (a second signal exits at once)\n");
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
    case SIGTERM:
      return "SIGTERM";
    case SIGINT:
      return "SIGINT";
    case SIGUSR1:
      return "SIGUSR1";
    default:
      return "a signal";
  }
}

void installStopHandlers() {
  static std::atomic<bool> installed{false};
  if (installed.exchange(true)) return;
  sigset_t stops;
  sigemptyset(&stops);
  for (int sig : {SIGTERM, SIGINT, SIGUSR1}) sigaddset(&stops, sig);
  // The signals are blocked in this thread and so in every thread it starts from now on (the
  // decode worker, FFmpeg's and LibTorch's threads): no system call of ours is interrupted (no
  // EINTR that could fail a video). A thread of its own takes them with sigwaitinfo(). Threads
  // MPI started before keep them unblocked: there the handler below runs, doing the same.
  pthread_sigmask(SIG_BLOCK, &stops, nullptr);
  std::thread([stops] {
    for (;;) {
      siginfo_t info;
      const int sig = sigwaitinfo(&stops, &info);
      if (sig > 0) onSignal(sig);
    }
  }).detach();
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
