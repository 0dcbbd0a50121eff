#pragma once
// Broadcast helpers for the records every rank needs (the manifest's entries). broadcastString is
// in mpi_session.h.
#include <mpi.h>

#include <string>
#include <vector>

#include "vidfeat/common/video_record.h"

namespace vidfeat {

// Collective over `comm`: `root` holds the entries, every rank returns them.
std::vector<VideoEntry> broadcastEntries(const std::vector<VideoEntry>& entries, int root,
                                         MPI_Comm comm);

// Collective over `comm`: `root` holds the strings (none containing a NUL byte), every rank
// returns them.
std::vector<std::string> broadcastStrings(const std::vector<std::string>& strings, int root,
                                          MPI_Comm comm);

}  // namespace vidfeat
