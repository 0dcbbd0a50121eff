#include "vidfeat/mpi/broadcast.h"

#include "vidfeat/mpi/mpi_session.h"

namespace vidfeat {

std::vector<std::string> broadcastStrings(const std::vector<std::string>& strings, int root,
                                          MPI_Comm comm) {
  int rank = 0;
  MPI_Comm_rank(comm, &rank);
  // Serialised as NUL-terminated strings, in one broadcast.
  std::string blob;
  if (rank == root) {
    for (const auto& s : strings) {
      blob += s;
      blob += '\0';
    }
  }
  broadcastString(blob, root, comm);
  if (rank == root) return strings;
  std::vector<std::string> out;
  for (size_t pos = 0; pos < blob.size();) {
    const size_t end = blob.find('\0', pos);
    out.push_back(blob.substr(pos, end - pos));
    pos = end + 1;
  }
  return out;
}

std::vector<VideoEntry> broadcastEntries(const std::vector<VideoEntry>& entries, int root,
                                         MPI_Comm comm) {
  // Id, path, id, path, ... (a manifest cannot contain NUL bytes).
  std::vector<std::string> fields;
  for (const auto& e : entries) {
    fields.push_back(e.videoId);
    fields.push_back(e.path);
  }
  fields = broadcastStrings(fields, root, comm);
  int rank = 0;
  MPI_Comm_rank(comm, &rank);
  if (rank == root) return entries;
  std::vector<VideoEntry> out;
  for (size_t i = 0; i + 1 < fields.size(); i += 2) out.push_back({fields[i], fields[i + 1]});
  return out;
}

}  // namespace vidfeat
