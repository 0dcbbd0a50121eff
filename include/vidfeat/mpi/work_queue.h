#pragma once
// Dynamic hand-out of videos to ranks: every rank holds the same list of pending work, sorted by
// estimated cost (longest first), and takes the next item from a counter shared through MPI
// one-sided communication (MPI_Fetch_and_op on a window held by rank 0). A rank that finishes
// early simply takes more, so the load stays balanced even when the estimates are wrong, and
// no rank has to stop working to serve the others.
#include <mpi.h>

#include <cstdint>
#include <vector>

namespace vidfeat {

class WorkQueue {
 public:
  // Collective over `comm` (creates the window). `order`: item ids in hand-out order, identical
  // on every rank.
  WorkQueue(std::vector<int64_t> order, MPI_Comm comm);
  // Frees the window (collective: all ranks destroy their queue together), except while an
  // exception unwinds: then the window is left to MPI_Abort / MPI_Finalize, so a rank that throws
  // alone never waits in MPI_Win_free for ranks busy elsewhere.
  ~WorkQueue();
  WorkQueue(const WorkQueue&) = delete;
  WorkQueue& operator=(const WorkQueue&) = delete;

  // Local (one-sided): the next item for this rank, or -1 when the list is exhausted.
  int64_t next();

  // Items this rank took.
  int64_t taken() const { return taken_; }

 private:
  std::vector<int64_t> order_;
  MPI_Comm comm_ = MPI_COMM_NULL;
  MPI_Win win_ = MPI_WIN_NULL;
  int64_t* counter_ = nullptr;
  int64_t taken_ = 0;
  bool exhausted_ = false;
  int uncaught_ = 0;  // std::uncaught_exceptions() at construction
};

// Hand-out order: indices of `costs` sorted by decreasing cost (ties by index), the classic
// longest-processing-time-first rule.
std::vector<int64_t> longestFirst(const std::vector<double>& costs);

}  // namespace vidfeat
