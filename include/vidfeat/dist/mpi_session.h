#pragma once
// MPI stays at the edges: one MpiSession in main() initialises and finalises MPI; everything below
// takes the communicator it uses as a parameter (never MPI_COMM_WORLD below main).
#include <mpi.h>

#include <string>

namespace vidfeat {

class MpiSession {
 public:
  // Initialises MPI (MPI_THREAD_FUNNELED: only the main thread calls MPI) unless it already is.
  MpiSession(int* argc, char*** argv);
  ~MpiSession();  // finalises MPI if this object initialised it; never throws
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;

  MPI_Comm world() const { return MPI_COMM_WORLD; }
  int rank() const { return rank_; }
  int size() const { return size_; }

 private:
  bool owns_ = false;
  int rank_ = 0;
  int size_ = 1;
};

// This rank's place among the ranks of its node (MPI_COMM_TYPE_SHARED split). Collective.
struct NodeRanks {
  int localRank = 0;
  int localSize = 1;
};
NodeRanks nodeRanks(MPI_Comm comm);

// Collective: every rank of `comm` ends with `root`'s value of `text`.
void broadcastString(std::string& text, int root, MPI_Comm comm);

// Rank and size of `comm` (small conveniences; both are local calls).
int commRank(MPI_Comm comm);
int commSize(MPI_Comm comm);

}  // namespace vidfeat
