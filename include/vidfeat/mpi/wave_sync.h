#pragma once
// Agreeing on when all ranks write a wave, without making a busy rank stop early.
//
// Each rank's run loop (src/run/extraction.cpp) calls poll() at its safe point: after each model
// batch (at most every 50 ms while it waits for decoded clips), never inside a forward. poll()
// keeps one non-blocking all-reduce (MPI_Iallreduce) of three flags in flight: "I want a wave"
// (my buffer is full, or the wave interval passed), "I have no work left" and "stop" (a stop
// signal reached me). When it completes every rank sees the same sums, so all take the same
// decision at their next safe point: write a wave together (collective), finish (everyone is out
// of work: a last wave, then stop), stop (some rank was signalled: a last wave of what is
// finished, then stop with the rest left for a rerun), or go on. A rank that is out of work
// blocks in poll() until the others agree.
//
// Destruction: the pending all-reduce is completed and the communicator freed (collective) only
// when the destructor does not run while an exception unwinds; while unwinding they are left to
// MPI_Abort / MPI_Finalize, so a rank that throws alone never waits for the others.
//
// Collective order: poll() posts its all-reduces on a private duplicate of the communicator, so
// they never interleave with the store's collectives.
#include <mpi.h>

#include <cstdint>

namespace vidfeat {

class WaveSync {
 public:
  enum class Action { None, Wave, Finish, Stop };

  // Counters summed over ranks with every round (progress display at no extra message).
  struct Progress {
    int64_t videosDone = 0;
    int64_t videosFailed = 0;
    int64_t clips = 0;
  };

  explicit WaveSync(MPI_Comm comm);  // collective (duplicates comm)
  ~WaveSync();
  WaveSync(const WaveSync&) = delete;
  WaveSync& operator=(const WaveSync&) = delete;

  // `block`: wait for the current round to complete (used when out of work). `mine` is this
  // rank's progress so far; after a completed round total() holds the sums over ranks. `stop`:
  // this rank was asked to stop; Stop is returned once a round carrying some rank's stop
  // completes (Finish takes precedence: when every rank is out of work there is nothing to stop).
  Action poll(bool wantWave, bool outOfWork, bool block, const Progress& mine, bool stop = false);
  const Progress& total() const { return total_; }
  // Whether the last poll() completed a round (total() is fresh).
  bool roundCompleted() const { return completed_; }

 private:
  MPI_Comm comm_ = MPI_COMM_NULL;
  int size_ = 1;
  MPI_Request request_ = MPI_REQUEST_NULL;
  int64_t send_[6] = {0, 0, 0, 0, 0, 0};
  int64_t recv_[6] = {0, 0, 0, 0, 0, 0};
  int uncaught_ = 0;  // std::uncaught_exceptions() at construction
  Progress total_;
  bool completed_ = false;
};

}  // namespace vidfeat
