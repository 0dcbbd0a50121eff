#pragma once
// One writer per output: `<output>.lock`, held by rank 0 of the job writing <output>
// (docs/DESIGN.md, "One writer").
//
// - Taken by creating the file with O_CREAT|O_EXCL (atomic on local file systems, NFS v3+,
//   Lustre, GPFS; flock is not relied on). It holds the holder's host, pid, SLURM job id, start
//   time and a random token.
// - While the run goes on, a thread refreshes its mtime every kHeartbeatSeconds (the heartbeat)
//   and checks that the file still holds this job's token; when another job took it over (this
//   job was judged stale) the job aborts rather than write beside it.
// - An existing lock is LIVE unless its holder is dead: same host and the pid does not exist, or
//   a heartbeat older than kStaleSeconds (a holder on another host that crashed). A live lock
//   refuses the run at once, naming the holder (--overwrite does not bypass it); a stale one is
//   taken over: under a short-lived `<lock>.takeover` file (O_EXCL), the lock is re-read, a new
//   one written beside it and renamed over it (atomic), and read back to confirm the token.
// - Removed when the run ends (complete, interrupted by a signal, or an error all ranks share);
//   a killed job leaves it, and the rerun takes it over (at once on the same host, after
//   kStaleSeconds elsewhere).
#include <mpi.h>

#include <memory>
#include <string>

namespace vidfeat {

class OutputLock {
 public:
  static constexpr double kHeartbeatSeconds = 15.0;
  static constexpr double kStaleSeconds = 120.0;

  // Local (call on rank 0 only). Throws Error naming the holder when a live job holds the lock,
  // or why the lock file cannot be written.
  static std::unique_ptr<OutputLock> acquire(const std::string& outputPath);
  ~OutputLock();  // stops the heartbeat and removes the lock file if it still holds our token
  OutputLock(const OutputLock&) = delete;
  OutputLock& operator=(const OutputLock&) = delete;

  const std::string& path() const;

  struct Impl;

 private:
  explicit OutputLock(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Collective: rank 0 acquires the lock of `outputPath` (returned there; null elsewhere) and shares
// the verdict, so a refusal throws CollectiveError on every rank together.
std::unique_ptr<OutputLock> lockOutput(const std::string& outputPath, MPI_Comm comm);

}  // namespace vidfeat
