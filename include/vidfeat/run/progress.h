#pragma once
// Rank 0's view of the whole job's progress, fed with totals summed over ranks (WaveSync carries
// them in its rounds, so progress costs no extra messages).
// - On a terminal (common/log.h's live status line: a single process, stderr a terminal, TERM not
//   dumb): one status line at the bottom, redrawn at most every 0.1 s, with the videos done of the
//   total, a bar, the failures, clips/s and the ETA; log lines scroll above it; the last one stays.
// - Otherwise (SLURM output files, pipes, every rank under mpirun): a plain log line
//   "progress: D/T videos (F failed), R clips/s, elapsed E, ETA A" every interval (30 s, or
//   $VIDFEAT_PROGRESS_INTERVAL seconds), and once at the end.
// Nothing with -q.
#include <chrono>
#include <cstdint>
#include <string>

namespace vidfeat {

class ProgressReporter {
 public:
  // `total`: videos this run will attempt. `enabled`: only rank 0 reports.
  ProgressReporter(int64_t total, bool enabled, double logIntervalSeconds = 30.0);
  ~ProgressReporter();  // finish()
  ProgressReporter(const ProgressReporter&) = delete;
  ProgressReporter& operator=(const ProgressReporter&) = delete;

  void update(int64_t done, int64_t failed, int64_t clips);
  void finish();  // leaves the last status line on the screen

  // The texts (exposed for tests): the live line for a terminal of `columns`, and the plain one.
  static std::string statusLine(int64_t done, int64_t total, int64_t failed, double clipsPerSecond,
                                double elapsedSeconds, int columns);
  static std::string plainLine(int64_t done, int64_t total, int64_t failed, double clipsPerSecond,
                               double elapsedSeconds);

 private:
  int64_t total_;
  bool enabled_;
  bool live_;
  double interval_;
  std::chrono::steady_clock::time_point start_, lastShown_;
  bool shown_ = false;
  int64_t lastDone_ = -1;
};

}  // namespace vidfeat
