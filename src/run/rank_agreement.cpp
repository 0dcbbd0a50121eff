#include "vidfeat/run/rank_agreement.h"

#include <string>
#include <vector>

#include "vidfeat/common/error.h"
#include "vidfeat/mpi/mpi_session.h"

namespace vidfeat {

void requireRanksAgree(const FileMetadata& meta, MPI_Comm comm) {
  int size = 1;
  MPI_Comm_size(comm, &size);
  if (size < 2) return;
  std::string config = meta.configYaml, sha = meta.checkpointSha256, weights = meta.weights;
  broadcastString(config, 0, comm);
  broadcastString(sha, 0, comm);
  broadcastString(weights, 0, comm);
  // Bit 1: config, 2: checkpoint sha256, 4: weights.
  int differs = (config != meta.configYaml ? 1 : 0) | (sha != meta.checkpointSha256 ? 2 : 0) |
                (weights != meta.weights ? 4 : 0);
  std::vector<int> all(size_t(size), 0);
  MPI_Allgather(&differs, 1, MPI_INT, all.data(), 1, MPI_INT, comm);
  std::string error;
  for (int r = 1; r < size; ++r) {
    if (all[size_t(r)] == 0) continue;
    std::string what;
    auto add = [&](const char* s) { what += (what.empty() ? "" : ", ") + std::string(s); };
    if (all[size_t(r)] & 1) add("effective config");
    if (all[size_t(r)] & 2) add("checkpoint sha256");
    if (all[size_t(r)] & 4) add("weights");
    error += (error.empty() ? "" : "; ") +
             ("rank " + std::to_string(r) + " differs from rank 0 in " + what);
  }
  if (!error.empty()) {
    throw CollectiveError("the ranks do not agree on the model (refusing to mix weights): " +
                          error + " (rank 0: weights \"" + weights + "\"" +
                          (sha.empty() ? std::string() : ", checkpoint sha256 " + sha) +
                          "); give every rank the same --config and checkpoint file");
  }
}

}  // namespace vidfeat
