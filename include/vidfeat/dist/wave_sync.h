#pragma once
// Agreeing on when all ranks write a wave, without making a busy rank stop early.
//
// Each rank calls poll() at safe points (between decoded frames and between videos). poll()
// keeps one non-blocking all-reduce (MPI_Iallreduce) of two flags in flight: "I want a wave"
// (my buffer is full, or the wave interval passed) and "I have no work left". When it completes
// every rank sees the same sums, so all take the same decision at their next safe point: write
// a wave together (collective), finish (everyone is out of work: a last wave, then stop), or go
// on. A rank that is out of work blocks in poll() until the others agree.
//
// Collective order: poll() posts its all-reduces on a private duplicate of the communicator, so
// they never interleave with the store's collectives.
#include <mpi.h>

#include <cstdint>

namespace vidfeat {

class WaveSync {
 public:
  enum class Action { None, Wave, Finish };

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
  // rank's progress so far; after a completed round total() holds the sums over ranks.
  Action poll(bool wantWave, bool outOfWork, bool block, const Progress& mine);
  const Progress& total() const { return total_; }
  // Whether the last poll() completed a round (total() is fresh).
  bool roundCompleted() const { return completed_; }

 private:
  MPI_Comm comm_ = MPI_COMM_NULL;
  int size_ = 1;
  MPI_Request request_ = MPI_REQUEST_NULL;
  int64_t send_[5] = {0, 0, 0, 0, 0};
  int64_t recv_[5] = {0, 0, 0, 0, 0};
  Progress total_;
  bool completed_ = false;
};

}  // namespace vidfeat
