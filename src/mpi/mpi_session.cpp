#include "vidfeat/mpi/mpi_session.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <exception>

#include "vidfeat/common/error.h"
#include "vidfeat/common/log.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#endif

namespace vidfeat {

namespace {
// LeakSanitizer (VIDFEAT_SANITIZE builds, tools/ci/sanitize.sh) and Open MPI 4.1 (Debian 12):
// - MPI_Init_thread allocates blocks it never frees (MCA component registry, op tables, hwloc
//   topology, ORTE state): open-mpi/ompi#10048 (4.1.2, LSan and valgrind on a bare
//   MPI_Init+MPI_Finalize) and open-mpi/ompi#12584. What this thread allocates inside
//   MPI_Init_thread is therefore not leak-checked (UpstreamMpiInit).
// - The leak check runs just before MPI_Finalize (checkLeaksBeforeFinalize) instead of at exit:
//   MPI_Finalize dlcloses Open MPI's components and libpmix, after which the stacks of their
//   leaks name only "<unknown module>" and tools/ci/lsan.supp could not match them (short
//   of unwinding every malloc slowly, ~10x slower). All of our objects are gone by then: the
//   session is the first object of main() and so destroyed last.
struct UpstreamMpiInit {
#if defined(__SANITIZE_ADDRESS__)
  UpstreamMpiInit() { __lsan_disable(); }
  ~UpstreamMpiInit() { __lsan_enable(); }
#endif
};

void checkLeaksBeforeFinalize() {
#if defined(__SANITIZE_ADDRESS__)
  __lsan_do_leak_check();  // exits non-zero on a leak; the at-exit check then does not run again
#endif
}
}  // namespace

MpiSession::MpiSession(int* argc, char*** argv) {
  int initialised = 0;
  MPI_Initialized(&initialised);
  if (!initialised) {
    int provided = 0;
    [[maybe_unused]] UpstreamMpiInit upstream;  // a no-op outside sanitizer builds
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
  if (!finalised) {
    checkLeaksBeforeFinalize();
    MPI_Finalize();
  }
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
    MPI_Bcast(text.data() + off, int(std::min<size_t>(chunk, size_t(length) - off)), MPI_CHAR, root,
              comm);
  }
}

void abortJob(const std::string& message, int code) {
  int initialised = 0, finalised = 0, rank = 0, size = 1;
  MPI_Initialized(&initialised);
  MPI_Finalized(&finalised);
  const bool mpi = initialised && !finalised;
  if (mpi) {
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
  }
  spdlog::error("rank {}: {}", rank, message);
  if (size > 1)
    spdlog::error("rank {}: aborting the whole job (MPI_Abort, exit code {})", rank, code);
  spdlog::default_logger()->flush();
  std::fflush(stderr);
  if (mpi) MPI_Abort(MPI_COMM_WORLD, code);
  std::_Exit(code);
}

void installTerminateHandler() {
  std::set_terminate([] {
    std::string what = "std::terminate called without an active exception";
    if (std::exception_ptr e = std::current_exception()) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& x) {
        what = std::string("unhandled exception: ") + x.what();
      } catch (...) {
        what = "unhandled exception of unknown type";
      }
    }
    abortJob(what, 1);
  });
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

void checkMpi(int rc, const char* call) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(rc, text, &length);
  throw Error(std::string(call) + " failed: " + std::string(text, static_cast<size_t>(length)));
}

}  // namespace vidfeat
