#pragma once
// The output: ONE HDF5 file written by all ranks together through MPI-IO (layout in
// docs/FORMAT.md). Rows of /features and /segments correspond one to one; a video's segments are
// one contiguous row range, recorded in its /videos row.
//
// Every member function marked "collective" must be called by all ranks of the communicator the
// store was opened with, in the same order.
#include <mpi.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "vidfeat/common/video_record.h"

namespace vidfeat {

// FileMetadata::weights of a run with seeded random weights begins with this (docs/FORMAT.md).
constexpr const char* kRandomWeights = "random (UNTRAINED)";

// File-level provenance, stored as attributes of the root group.
struct FileMetadata {
  std::string modelName;         // e.g. "SLOW_8x8_R50" (config file stem) or MODEL.ARCH
  std::string modelArch;         // MODEL.ARCH
  std::string configYaml;        // the effective config, as YAML text
  std::string checkpointPath;    // empty with random weights
  std::string checkpointSha256;  // empty with random weights
  std::string weights;           // "checkpoint" or kRandomWeights + ", seed N" (+ ", bf16 forward")
  std::string tailPolicy;        // repeat | sample | drop
  std::string featureName;       // what a feature row is, in words
  int64_t featureDim = 0;
  int32_t crops = 1;         // spatial crops per segment (--crops); > 1 adds a /features axis
  int32_t numFrames = 0;     // DATA.NUM_FRAMES
  int32_t samplingRate = 0;  // DATA.SAMPLING_RATE
  int32_t stride = 0;        // frames between consecutive clip starts
  double targetFps = 0.0;    // --fps, 0 = native frame rate
  // A file of several models (format 3; extract --model A --model B): each model's name and
  // feature width, in the order their features sit side by side in a row (featureDim is their
  // sum). Empty for one model. Stored as the attribute model_parts ("A:2304,B:512").
  std::vector<std::pair<std::string, int64_t>> parts;
};

// model_parts' text for `parts`, and back (InputError-free: Error naming the problem, "" -> {}).
std::string modelPartsText(const std::vector<std::pair<std::string, int64_t>>& parts);
std::vector<std::pair<std::string, int64_t>> parseModelParts(const std::string& text);

// One row of /failures: every failed attempt, with where and on which rank it failed.
struct StoredFailure {
  int64_t videoRow = -1;
  std::string stage;
  std::string message;
  int32_t rank = 0;
};

class FeatureStore {
 public:
  // Collective. Creates `path` (replacing any file there) with an empty layout.
  static FeatureStore create(const std::string& path, MPI_Comm comm, const FileMetadata& meta);

  // Collective. Opens the existing output `path` to continue it (resume). Throws Error saying
  // what differs when the file was made with another model, config, checkpoint or clip setting
  // than `meta` describes. Rows of a wave a crash cut short (features no /videos row points at)
  // are cut off, so they are written again. `videos` receives the /videos table (row = index).
  static FeatureStore resume(const std::string& path, MPI_Comm comm, const FileMetadata& meta,
                             std::vector<StoredVideo>& videos);

  FeatureStore(FeatureStore&&) noexcept;
  FeatureStore& operator=(FeatureStore&&) noexcept;
  // Closes the file if still open; never throws. Closing is collective: call close() on all ranks
  // (before MPI_Finalize) rather than relying on this, which is for unwinding.
  ~FeatureStore();

  // Collective. Appends the videos as Pending rows of /videos; every rank passes the same list.
  // Returns the row of the first one (rows are consecutive). Throws Error, on every rank and before
  // writing anything, when an id is longer than 256 bytes or a path longer than 1024 (fixed-length
  // strings in the file, docs/FORMAT.md).
  int64_t addVideos(const std::vector<VideoEntry>& videos);

  // Collective. Each rank passes the videos it finished since the last wave (possibly none).
  // Appends their features and segments at offsets agreed by a prefix sum over ranks, writes with
  // collective transfers, updates their /videos rows, and flushes the file. Only after this
  // returns are those videos marked complete on disk. Results are checked first (row exists, not
  // Pending, features = segments x featureDim, no segments when Failed); if any rank's are wrong,
  // every rank throws Error and nothing is written.
  void writeWave(const std::vector<VideoResult>& local);
  // Collective. The same, but this rank's /failures rows are `failures` (rows of this file's
  // /videos, each with its own stage, message and rank, appended in this order) instead of one
  // per failed result: how a merge carries over the parts' whole failure history.
  void writeWave(const std::vector<VideoResult>& local, const std::vector<StoredFailure>& failures);

  // Collective. Flushes and closes the file.
  void close();

  int64_t featureDim() const;

  // Whether every raw-data transfer of the last addVideos/writeWave on this rank was done with
  // collective MPI-IO (a fallback to independent I/O is also logged as a warning). For tests and
  // diagnostics.
  bool lastWriteCollective() const;

 private:
  struct Impl;
  explicit FeatureStore(std::unique_ptr<Impl> impl);
  void writeWaveUnguarded(const std::vector<VideoResult>& local,
                          const std::vector<StoredFailure>& failures);
  void appendVideoRows(const std::vector<VideoEntry>& videos);
  std::unique_ptr<Impl> impl_;
};

// Serial, read-only view of a file, for `vidfeat inspect`, merge and tests.
struct StoreSummary {
  std::string formatVersion;
  std::string vidfeatVersion;
  FileMetadata meta;
  std::string createdUtc;
  int64_t featureRows = 0;
  std::vector<StoredVideo> videos;
  std::vector<StoredFailure> failures;

  // Where each video's last failed attempt failed, by /videos row: the stage of its last
  // /failures row; "unknown" for a row without one.
  std::vector<std::string> lastFailureStages() const;
};

// Serial random access to a finished file's rows (merge, export).
class StoreReader {
 public:
  explicit StoreReader(const std::string& path);  // throws InputError naming the file
  ~StoreReader();
  StoreReader(const StoreReader&) = delete;
  StoreReader& operator=(const StoreReader&) = delete;
  const StoreSummary& summary() const;
  // Rows [first, first + count) of /segments and /features (count x featureDim floats).
  void readRows(int64_t first, int64_t count, std::vector<SegmentRecord>& segments,
                std::vector<float>& features) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Differences between two files' provenance that make their features incomparable (model,
// config, checkpoint, weights, clip settings), one line each; empty when they match.
std::vector<std::string> metadataDifferences(const FileMetadata& stored,
                                             const FileMetadata& wanted);

// The metadata of a file holding several models' features side by side (each one's metadata, in
// column order; a file's own model_parts are kept in turn): names, archs, checkpoints and weights
// joined with "+", the configs as one YAML document each, feature rows described column range by
// column range, feature_dim the sum, model_parts the list; the first's tail, crop and frame
// settings. One model: its own metadata unchanged.
FileMetadata combinedMetadata(const std::vector<FileMetadata>& models);

// The message for a failed write of the output `path` (HDF5's `details`): "disk full: cannot write
// <path> (N bytes free on its file system); free space, then rerun ..." when the file system is
// full or the error says so, else "I/O error on <path>: <details>".
std::string describeWriteFailure(const std::string& path, const std::string& details);

// Reads the attributes and the /videos table. Throws InputError naming the file when it is not a
// vidfeat output.
StoreSummary readStoreSummary(const std::string& path);

}  // namespace vidfeat
