#include "vidfeat/mpi/work_queue.h"

#include <algorithm>
#include <exception>
#include <numeric>

#include "vidfeat/common/error.h"

namespace vidfeat {

WorkQueue::WorkQueue(std::vector<int64_t> order, MPI_Comm comm)
    : order_(std::move(order)), uncaught_(std::uncaught_exceptions()) {
  // A private communicator: the window's synchronisation never mixes with other collectives.
  MPI_Comm_dup(comm, &comm_);
  int rank = 0;
  MPI_Comm_rank(comm_, &rank);
  MPI_Aint bytes = rank == 0 ? MPI_Aint(sizeof(int64_t)) : 0;
  if (MPI_Win_allocate(bytes, sizeof(int64_t), MPI_INFO_NULL, comm_, &counter_, &win_) !=
      MPI_SUCCESS) {
    throw Error("MPI_Win_allocate failed for the work counter");
  }
  if (rank == 0) {
    MPI_Win_lock(MPI_LOCK_EXCLUSIVE, 0, 0, win_);
    *counter_ = 0;
    MPI_Win_unlock(0, win_);
  }
  MPI_Barrier(comm_);  // nobody takes work before the counter is zeroed
}

WorkQueue::~WorkQueue() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (finalized) return;
  if (std::uncaught_exceptions() > uncaught_) return;  // unwinding: no collective (see header)
  if (win_ != MPI_WIN_NULL) MPI_Win_free(&win_);
  if (comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);
}

int64_t WorkQueue::next() {
  if (exhausted_) return -1;
  const int64_t one = 1;
  int64_t position = 0;
  MPI_Win_lock(MPI_LOCK_SHARED, 0, 0, win_);
  MPI_Fetch_and_op(&one, &position, MPI_INT64_T, 0, 0, MPI_SUM, win_);
  MPI_Win_unlock(0, win_);
  if (position >= int64_t(order_.size())) {
    exhausted_ = true;
    return -1;
  }
  ++taken_;
  return order_[size_t(position)];
}

std::vector<int64_t> longestFirst(const std::vector<double>& costs) {
  std::vector<int64_t> idx(costs.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::stable_sort(idx.begin(), idx.end(),
                   [&](int64_t a, int64_t b) { return costs[size_t(a)] > costs[size_t(b)]; });
  return idx;
}

}  // namespace vidfeat
