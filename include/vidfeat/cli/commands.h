#pragma once
// The `vidfeat` subcommands. Each parses its own options (Boost.Program_options) and returns the
// process exit code; MPI is initialised by main() and the communicator passed in.
#include <mpi.h>

#include <string>
#include <vector>

namespace vidfeat::cli {

int extractCommand(const std::vector<std::string>& args, MPI_Comm comm);
int inspectCommand(const std::vector<std::string>& args);
int verifyCommand(const std::vector<std::string>& args);  // serial (rank 0)
int mergeCommand(const std::vector<std::string>& args);   // serial (rank 0)
int joinCommand(const std::vector<std::string>& args);    // serial (rank 0)
int modelsCommand(const std::vector<std::string>& args);
int locateCommand(const std::vector<std::string>& args);
int exportCommand(const std::vector<std::string>& args);
int benchCommand(const std::vector<std::string>& args);  // serial (rank 0)

}  // namespace vidfeat::cli
