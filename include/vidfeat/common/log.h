#pragma once
// Logging: spdlog through one console sink on stderr (log.cpp).
//
// - Off a terminal (SLURM output files, pipes, and every rank under mpirun/srun, whose stderr is a
//   pipe to the launcher) every line starts with the MPI rank ("[rank 3] ..."), so the interleaved
//   lines of many ranks stay readable, and nothing but plain text is written.
// - On a terminal, a single-process run owns one live status line at the bottom (setStatusLine,
//   fed by run/progress): each log line clears it, is printed at column 0, and the status is drawn
//   again below it, all under the sink's one mutex, so a log line is never glued onto the status.
//   Colours only there, and not with NO_COLOR set (no-color.org) or TERM=dumb; TERM=dumb also
//   means no live line (plain lines instead).
#include <spdlog/spdlog.h>

#include <string>

namespace vidfeat {

// -q: errors only (no progress); default: info, but no line per video; -v: and one line per video;
// -vv: debug detail (FFmpeg's verbose messages, each HDF5 write).
enum class Verbosity { Quiet, Normal, Verbose, Debug };

// Installs the default logger for this process. Call once, after MPI is initialised.
void initLogging(int rank, int size, Verbosity verbosity = Verbosity::Normal);

Verbosity verbosity();
inline bool logEachVideo() { return verbosity() >= Verbosity::Verbose; }

// How this process's stderr shows output (decided once by initLogging; exposed for tests).
struct ConsoleMode {
  bool live = false;   // one live status line at the bottom (a terminal, a single process)
  bool color = false;  // ANSI colours for the level names
  int rank = 0;        // rank prefix of every line unless `live`
};
// The mode for a process whose stderr is (not) a terminal, with the environment's NO_COLOR and
// TERM values (null when unset), being `rank` of `size` ranks.
ConsoleMode consoleModeFor(bool stderrIsTerminal, const char* noColor, const char* term, int rank,
                           int size);

// True when this process draws a live status line (see above).
bool liveStatusLine();
// The terminal's width in columns (80 when it cannot be asked).
int terminalColumns();
// Draws `text` (one line, cut to the terminal's width) as the live status line, replacing the
// previous one; later log lines are printed above it. No-op unless liveStatusLine().
void setStatusLine(const std::string& text);
// Leaves the last status line on the screen and moves below it; log lines follow plainly.
void endStatusLine();

}  // namespace vidfeat
