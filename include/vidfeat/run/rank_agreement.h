#pragma once

#include <mpi.h>

#include "vidfeat/store/feature_store.h"

namespace vidfeat {

// Collective. Every rank compares its effective config (YAML text), checkpoint sha256 and
// weights description with rank 0's; when any rank differs (a node-local model cache holding
// another file, another config), every rank throws CollectiveError together, naming the ranks
// and what differs. Call before anything is written.
void requireRanksAgree(const FileMetadata& meta, MPI_Comm comm);

}  // namespace vidfeat
