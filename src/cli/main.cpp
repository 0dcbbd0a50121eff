// vidfeat: action-recognition features for whole video datasets, one job, one HDF5 file.
#include <cstdio>
#include <string>
#include <vector>

#include "vidfeat/cli/commands.h"
#include "vidfeat/common/error.h"
#include "vidfeat/common/log.h"
#include "vidfeat/mpi/mpi_session.h"
#include "vidfeat/version.h"

namespace {

const char* kUsage =
    "vidfeat " VIDFEAT_VERSION
    " - action-recognition features for video datasets\n"
    "\n"
    "usage: vidfeat <command> [options]    (vidfeat <command> --help for its options)\n"
    "\n"
    "commands:\n"
    "  extract   decode, cut into clips, run the model, write one HDF5 file (MPI-parallel)\n"
    "  verify    compare the model's features with a PySlowFast reference (.io.pt)\n"
    "  inspect   describe an output file: model, provenance, videos, segments\n"
    "  merge     join the part files of a job array into one file\n"
    "  join      put files of other models over the same windows side by side (add a model)\n"
    "  models    list the published models known by name (--model NAME)\n"
    "  locate    the segments of a video covering a time span\n"
    "  export    features per video: .npy, .npz or one HDF5 file (grounding layouts)\n"
    "  bench     bench decode: the decode side alone (no model), frames/s per video\n"
    "\n"
    "options of every command (on stderr):\n"
    "  -v, --verbose   one log line per video; -vv: debug detail too\n"
    "  -q, --quiet     errors only (no progress)\n";

// Takes -v/--verbose (twice or -vv: debug), -q/--quiet out of `args` (before a "--"; the last one
// given wins): every command has them.
vidfeat::Verbosity takeVerbosity(std::vector<std::string>& args) {
  using vidfeat::Verbosity;
  Verbosity v = Verbosity::Normal;
  for (auto it = args.begin(); it != args.end() && *it != "--";) {
    if (*it == "-q" || *it == "--quiet") {
      v = Verbosity::Quiet;
    } else if (*it == "-v" || *it == "--verbose") {
      v = v == Verbosity::Verbose || v == Verbosity::Debug ? Verbosity::Debug : Verbosity::Verbose;
    } else if (*it == "-vv") {
      v = Verbosity::Debug;
    } else {
      ++it;
      continue;
    }
    it = args.erase(it);
  }
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  vidfeat::MpiSession mpi(&argc, &argv);
  std::vector<std::string> args(argv + 1, argv + argc);
  vidfeat::initLogging(mpi.rank(), mpi.size(), takeVerbosity(args));
  vidfeat::installTerminateHandler();  // an exception escaping a thread: logged with the rank,
                                       // MPI_Abort
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    if (mpi.rank() == 0) std::fputs(kUsage, stdout);
    return args.empty() ? 2 : 0;
  }
  if (args[0] == "--version") {
    if (mpi.rank() == 0) std::puts(VIDFEAT_VERSION);
    return 0;
  }
  const std::string command = args[0];
  args.erase(args.begin());
  try {
    if (command == "extract") return vidfeat::cli::extractCommand(args, mpi.world());
    if (command == "inspect") return mpi.rank() == 0 ? vidfeat::cli::inspectCommand(args) : 0;
    if (command == "verify") return mpi.rank() == 0 ? vidfeat::cli::verifyCommand(args) : 0;
    if (command == "merge") return mpi.rank() == 0 ? vidfeat::cli::mergeCommand(args) : 0;
    if (command == "join") return mpi.rank() == 0 ? vidfeat::cli::joinCommand(args) : 0;
    if (command == "models") return mpi.rank() == 0 ? vidfeat::cli::modelsCommand(args) : 0;
    if (command == "locate") return mpi.rank() == 0 ? vidfeat::cli::locateCommand(args) : 0;
    if (command == "export") return mpi.rank() == 0 ? vidfeat::cli::exportCommand(args) : 0;
    if (command == "bench") return mpi.rank() == 0 ? vidfeat::cli::benchCommand(args) : 0;
    std::fprintf(stderr, "vidfeat: unknown command '%s'\n\n%s", command.c_str(), kUsage);
    return 2;
  } catch (const vidfeat::CollectiveError& e) {
    // Every rank has this error and none is inside a collective call: exit in step.
    if (mpi.rank() == 0) spdlog::error("{}", e.what());
    return 1;
  } catch (const std::exception& e) {
    // An error of this rank alone (I/O error, quota, bad_alloc, a failing write): the other ranks
    // may be inside a collective call, so take the whole job down rather than hang. Objects with
    // collective destructors skipped them while this exception unwound (LeakOnUnwind, WorkQueue,
    // WaveSync), so this rank got here at once.
    if (mpi.size() > 1) vidfeat::abortJob(e.what(), 1);
    spdlog::error("{}", e.what());
    return 1;
  } catch (...) {
    if (mpi.size() > 1) vidfeat::abortJob("unknown exception", 1);
    spdlog::error("unknown exception");
    return 1;
  }
}
