#pragma once
// Rank 0's view of the whole job's progress: one line updated in place on a terminal, plain
// periodic log lines otherwise (SLURM output files). Fed with totals summed over ranks (WaveSync
// carries them in its rounds, so progress costs no extra messages).
#include <chrono>
#include <cstdint>

namespace vidfeat {

class ProgressReporter {
 public:
  // `total`: videos this run will attempt. `enabled`: only rank 0 reports.
  ProgressReporter(int64_t total, bool enabled, double logIntervalSeconds = 30.0);

  void update(int64_t done, int64_t failed, int64_t clips);
  void finish();  // ends the in-place line

 private:
  int64_t total_;
  bool enabled_;
  bool tty_;
  double interval_;
  std::chrono::steady_clock::time_point start_, lastShown_;
  bool shown_ = false;
  int64_t lastDone_ = -1;
};

}  // namespace vidfeat
