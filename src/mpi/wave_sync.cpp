#include "vidfeat/mpi/wave_sync.h"

#include <exception>

namespace vidfeat {

WaveSync::WaveSync(MPI_Comm comm) : uncaught_(std::uncaught_exceptions()) {
  MPI_Comm_dup(comm, &comm_);
  MPI_Comm_size(comm_, &size_);
}

WaveSync::~WaveSync() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (finalized) return;
  if (std::uncaught_exceptions() > uncaught_) return;  // unwinding: no collective (see header)
  if (request_ != MPI_REQUEST_NULL) MPI_Wait(&request_, MPI_STATUS_IGNORE);
  MPI_Comm_free(&comm_);
}

WaveSync::Action WaveSync::poll(bool wantWave, bool outOfWork, bool block, const Progress& mine,
                                bool stop) {
  completed_ = false;
  if (request_ == MPI_REQUEST_NULL) {
    send_[0] = wantWave ? 1 : 0;
    send_[1] = outOfWork ? 1 : 0;
    send_[2] = mine.videosDone;
    send_[3] = mine.videosFailed;
    send_[4] = mine.clips;
    send_[5] = stop ? 1 : 0;
    MPI_Iallreduce(send_, recv_, 6, MPI_INT64_T, MPI_SUM, comm_, &request_);
  }
  int done = 0;
  if (block) {
    MPI_Wait(&request_, MPI_STATUS_IGNORE);
    done = 1;
  } else {
    MPI_Test(&request_, &done, MPI_STATUS_IGNORE);
  }
  if (!done) return Action::None;
  request_ = MPI_REQUEST_NULL;
  completed_ = true;
  total_ = {recv_[2], recv_[3], recv_[4]};
  if (recv_[1] == size_) return Action::Finish;
  if (recv_[5] > 0) return Action::Stop;
  if (recv_[0] > 0) return Action::Wave;
  return Action::None;
}

}  // namespace vidfeat
