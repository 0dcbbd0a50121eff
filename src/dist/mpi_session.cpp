#include "vidfeat/dist/mpi_session.h"

#include "vidfeat/common/error.h"

#include <algorithm>

namespace vidfeat {

MpiSession::MpiSession(int* argc, char*** argv) {
  int initialised = 0;
  MPI_Initialized(&initialised);
  if (!initialised) {
    int provided = 0;
    if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
      throw Error("MPI_Init_thread failed");
    }
    owns_ = true;
  }
  MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &size_);
}

MpiSession::~MpiSession() {
  if (!owns_) return;
  int finalised = 0;
  MPI_Finalized(&finalised);
  if (!finalised) MPI_Finalize();
}

NodeRanks nodeRanks(MPI_Comm comm) {
  MPI_Comm node = MPI_COMM_NULL;
  int rank = 0;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &node);
  NodeRanks r;
  MPI_Comm_rank(node, &r.localRank);
  MPI_Comm_size(node, &r.localSize);
  MPI_Comm_free(&node);
  return r;
}

void broadcastString(std::string& text, int root, MPI_Comm comm) {
  unsigned long long length = text.size();
  MPI_Bcast(&length, 1, MPI_UNSIGNED_LONG_LONG, root, comm);
  text.resize(size_t(length));
  // MPI counts are int: send in chunks so any length works.
  const size_t chunk = size_t(1) << 30;
  for (size_t off = 0; off < length; off += chunk) {
    MPI_Bcast(text.data() + off, int(std::min<size_t>(chunk, size_t(length) - off)), MPI_CHAR, root, comm);
  }
}

int commRank(MPI_Comm comm) {
  int r = 0;
  MPI_Comm_rank(comm, &r);
  return r;
}

int commSize(MPI_Comm comm) {
  int s = 1;
  MPI_Comm_size(comm, &s);
  return s;
}

}  // namespace vidfeat
