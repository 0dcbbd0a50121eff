#pragma once
// Logging: spdlog with the MPI rank in every line ("[rank 3] ..."), so interleaved SLURM logs
// stay readable.
#include <spdlog/spdlog.h>

namespace vidfeat {

// Installs the default logger for this process. Call once, after MPI is initialised.
void initLogging(int rank, int size, spdlog::level::level_enum level = spdlog::level::info);

}  // namespace vidfeat
