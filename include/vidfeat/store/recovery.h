#pragma once
// Opening the output of a run crash-safely (docs/DESIGN.md, "Crash safety"): reads the journals,
// validates the file, and creates, resumes, repairs (journal results the file lags) or rebuilds it
// (a file that does not validate, written to a temporary name and renamed into place). Also the
// end of a run: the journals are removed once the output is complete and cleanly closed.
#include <mpi.h>

#include <optional>
#include <string>
#include <vector>

#include "vidfeat/store/feature_store.h"
#include "vidfeat/store/journal.h"

namespace vidfeat {

struct OutputPlan {
  std::string path;
  FileMetadata meta;
  bool overwrite = false;
  bool retryFailed = false;
  std::vector<VideoEntry> videos;  // this run's manifest (the same on every rank)
};

struct OpenedOutput {
  std::optional<FeatureStore> store;
  std::vector<StoredVideo>
      stored;               // /videos (row = index) after any repair: the run's starting point
  JournalWriter journal;    // this rank's journal of this run
  std::string runId;        // the same on every rank
  int64_t replayed = 0;     // journal results written into the file (repair or rebuild)
  int64_t crashFailed = 0;  // videos recorded failed: they crashed the process twice
  bool rebuilt = false;
  double seconds = 0.0;  // this rank's time in openOutput
};

// Collective. Throws CollectiveError (on every rank) for a file or journal made with other
// settings, or a file that does not validate with no journals to rebuild it from.
OpenedOutput openOutput(const OutputPlan& plan, MPI_Comm comm);

// Collective. Closes the journal (CLOSE record) and `store` (the file); when every /videos row is
// complete or failed, removes the journals (they are needed as long as anything may still be
// written).
void finishOutput(OpenedOutput& out, FeatureStore& store, const std::string& path, MPI_Comm comm);

// Collective: when any rank's `error` is non-empty, every rank throws CollectiveError with the
// lowest such rank's message (prefixed "rank R: " on other ranks' behalf when size > 1).
void agreeOrThrow(const std::string& error, MPI_Comm comm);

}  // namespace vidfeat
