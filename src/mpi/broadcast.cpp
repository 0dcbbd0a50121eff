#include "vidfeat/mpi/broadcast.h"

#include "vidfeat/mpi/mpi_session.h"

namespace vidfeat {

std::vector<VideoEntry> broadcastEntries(const std::vector<VideoEntry>& entries, int root, MPI_Comm comm) {
  int rank = 0;
  MPI_Comm_rank(comm, &rank);
  // Serialised as NUL-separated id, path pairs (a manifest cannot contain NUL bytes).
  std::string blob;
  if (rank == root) {
    for (const auto& e : entries) {
      blob += e.videoId;
      blob += '\0';
      blob += e.path;
      blob += '\0';
    }
  }
  broadcastString(blob, root, comm);
  if (rank == root) return entries;
  std::vector<VideoEntry> out;
  size_t pos = 0;
  while (pos < blob.size()) {
    size_t a = blob.find('\0', pos);
    size_t b = blob.find('\0', a + 1);
    out.push_back({blob.substr(pos, a - pos), blob.substr(a + 1, b - a - 1)});
    pos = b + 1;
  }
  return out;
}

}  // namespace vidfeat
