#pragma once
// Broadcast helpers for the records every rank needs (the manifest's entries). broadcastString is
// in mpi_session.h.
#include <mpi.h>

#include <vector>

#include "vidfeat/common/video_record.h"

namespace vidfeat {

// Collective over `comm`: `root` holds the entries, every rank returns them.
std::vector<VideoEntry> broadcastEntries(const std::vector<VideoEntry>& entries, int root, MPI_Comm comm);

}  // namespace vidfeat
