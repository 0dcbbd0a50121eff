#pragma once
// Graceful stop on SIGTERM, SIGINT and SIGUSR1 (what SLURM's --signal and scancel send).
//
// The handler only records the signal (async-signal-safe). The run loop reads stopRequested() at
// its safe points and carries it in WaveSync's all-reduce, so one rank's signal stops every rank
// at the same round: no new video is taken, the batch in hand finishes, the videos finished so
// far are written in a last wave, the file is closed and `vidfeat extract` exits kInterrupted.
// A second signal exits at once (kInterrupted too: everything up to the last wave is on disk and
// the rerun redoes the rest).
#include <csignal>

namespace vidfeat {

// Exit code of `vidfeat extract` for "interrupted by a signal, resumable: rerun the same command"
// (75 = EX_TEMPFAIL of sysexits.h, "temporary failure, retry"). Distinct from 0 (all complete),
// 1 (the job could not run), 2 (usage) and 3 (some videos failed).
constexpr int kInterrupted = 75;

// Installs the handlers (idempotent) and blocks the signals in the calling thread, so that the
// threads it starts afterwards inherit the blocked mask (a thread of its own receives them). Call
// from the main thread before the pipeline's and LibTorch's threads start.
void installStopHandlers();

// The first stop signal received (SIGTERM, SIGINT, SIGUSR1), 0 when none.
int stopSignal();
inline bool stopRequested() { return stopSignal() != 0; }

// For tests: behave as if `sig` had been received once.
void requestStop(int sig);

// "SIGTERM", "SIGINT", "SIGUSR1" or "signal N".
const char* signalName(int sig);

}  // namespace vidfeat
