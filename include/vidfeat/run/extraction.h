#pragma once
// The distributed extraction run, the product's core loop (docs/DESIGN.md):
//   1. rank 0 reads and checks the manifest; every problem is reported at once and the job stops
//      unless skipInvalid (then they are recorded as failed); the others get the list over MPI;
//   2. the output is created, or resumed: videos already complete are skipped, a wave a crash cut
//      short is redone, new manifest videos are appended, failed ones retried on request;
//   3. the ranks estimate each pending video's cost (container header, in parallel) and take
//      videos longest-first from a shared one-sided counter;
//   4. finished videos are buffered and written in collective waves agreed without stopping busy
//      ranks (WaveSync), so memory stays bounded and progress is durable.
#include <mpi.h>

#include <string>
#include <vector>

#include "vidfeat/pipeline/video_extractor.h"
#include "vidfeat/store/feature_store.h"

namespace vidfeat {

class FeatureModel;

struct ExtractionPlan {
  std::string manifestPath;
  std::string outputPath;
  bool overwrite = false;    // start afresh even if the output exists
  bool skipInvalid = false;  // record manifest problems as failed videos instead of stopping
  bool retryFailed = false;  // on resume, attempt videos recorded as failed again
  int shardIndex = 0;        // --shard K/N: take the K-th of N contiguous manifest slices
  int shardCount = 1;
  int waveVideos = 256;            // a rank asks for a wave once it buffers this many videos...
  double waveMegabytes = 256.0;    // ...or this many MB of features (long videos: bounded memory)
  double waveSeconds = 60.0;       // ...or holds finished videos for this long
  double watchdogSeconds = 600.0;  // abort when no collective step completes this long (0 = off)
  bool outputLocked = false;       // the caller holds <output>.lock (lockOutput) for the whole run
  ExtractOptions extract;
  FileMetadata meta;
};

struct ExtractionSummary {
  int64_t videos = 0;        // in this run's manifest (after sharding)
  int64_t skipped = 0;       // already complete in the output
  int64_t complete = 0;      // extracted by this run
  int64_t failed = 0;        // failed in this run (including manifest problems)
  int64_t failedBefore = 0;  // failed in an earlier run and not retried
  bool interrupted = false;  // stopped by a signal (stop_signal.h): the rest is left for a rerun
  int64_t segments = 0;
  int64_t clips = 0;
  double wallSeconds = 0.0;
  double writeSeconds = 0.0;  // this rank's seconds writing the output (create, waves, close)
  // Per rank, seconds: with videos in flight; inside the model's forward; waiting for decoded clips
  // while videos were in flight; writing the output (collective waves and the close).
  std::vector<double> busySeconds, modelSeconds, starvedSeconds, storeSeconds;
  std::vector<int64_t> videosPerRank;
  std::vector<int64_t> clipsPerRank;
};

// Collective over `comm`. Throws Error for what stops the whole job (bad manifest, output made
// with other settings, output locked by a live job); a bad video only fails itself. A stop signal
// (installStopHandlers) ends the run early with summary.interrupted set.
ExtractionSummary runExtraction(const ExtractionPlan& plan, FeatureModel& model, MPI_Comm comm);
// Several models from one decode (plan.extract.moreStreams: one per model after the first); each
// feature row is the models' features side by side, as plan.meta describes.
ExtractionSummary runExtraction(const ExtractionPlan& plan,
                                const std::vector<FeatureModel*>& models, MPI_Comm comm);

// Exit code of `vidfeat extract`: 0 when every video of the manifest is complete,
// kSomeVideosFailed when some are recorded as failed (in this run or an earlier one).
constexpr int kSomeVideosFailed = 3;

}  // namespace vidfeat
