#pragma once
// MPI stays at the edges: one MpiSession in main() initialises and finalises MPI; everything below
// takes the communicator it uses as a parameter (never MPI_COMM_WORLD below main).
#include <mpi.h>

#include <exception>
#include <optional>
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

// Throws Error "<call> failed: <MPI's error string>" unless rc is MPI_SUCCESS.
void checkMpi(int rc, const char* call);

// Collective: every rank of `comm` ends with `root`'s value of `text`.
void broadcastString(std::string& text, int root, MPI_Comm comm);

// An error on one rank only (I/O, quota, bad_alloc, a failing write): logs "rank R: <message>" and
// takes the whole job down with MPI_Abort(MPI_COMM_WORLD, code), so no rank is left waiting in a
// collective. Never returns. Safe from any thread (Open MPI's abort is not a collective).
[[noreturn]] void abortJob(const std::string& message, int code = 1);

// Installs a std::terminate handler that reports the exception (an exception escaping a thread,
// a throwing destructor) as abortJob does, instead of a silent abort().
void installTerminateHandler();

// Keeps an object with collective destruction (an HDF5 file opened with MPI-IO, an MPI window)
// from being destroyed while an exception unwinds: declared after `held`, it is destroyed first,
// and when an exception is in flight it moves the object out to the heap and never frees it (the
// rank is about to abort; MPI_Abort / MPI_Finalize reclaim the handles). On a normal exit it does
// nothing and `held` is destroyed as usual.
template <class T>
class LeakOnUnwind {
 public:
  explicit LeakOnUnwind(std::optional<T>& held)
      : held_(held), uncaught_(std::uncaught_exceptions()) {}
  ~LeakOnUnwind() {
    if (std::uncaught_exceptions() > uncaught_ && held_)
      static_cast<void>(new T(std::move(*held_)));
  }
  LeakOnUnwind(const LeakOnUnwind&) = delete;
  LeakOnUnwind& operator=(const LeakOnUnwind&) = delete;

 private:
  std::optional<T>& held_;
  int uncaught_;
};

// Rank and size of `comm` (small conveniences; both are local calls).
int commRank(MPI_Comm comm);
int commSize(MPI_Comm comm);

}  // namespace vidfeat
