#pragma once
// Internal to src/store: the on-disk schema of the output file (docs/FORMAT.md) — layout
// constants, the row structs whose memory layout IS the file layout, their HDF5 compound types,
// the fixed-length string helpers, the root attributes and the conversions between a /videos row
// and the video record types. Shared by the writer (feature_store.cpp, wave_writer.cpp), the
// validation of untrusted files (store_validation.cpp) and the reader (store_reader.cpp).
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "hdf5.h"
#include "vidfeat/store/feature_store.h"

namespace vidfeat {

// Layout constants; docs/FORMAT.md describes them for readers.
constexpr const char* kFormatVersion = "3";
// Format 2 is format 3 without the model_parts attribute (one model per file): read, and resumed
// by a run of one model.
constexpr const char* kFormatVersion2 = "2";
// The one older layout readers still accept (docs/FORMAT.md, "Format 1"): the strings were
// members of /videos. Only reading: resume refuses it (vidfeat merge converts it).
constexpr const char* kFormatVersion1 = "1";
// Parallel HDF5 1.10 cannot write variable-length data collectively, so the per-video strings
// are fixed-length. An id or path that does not fit is an error (silently cutting an id would
// make two videos indistinguishable); an error message is only truncated.
constexpr size_t kVideoIdBytes = 256;
constexpr size_t kPathBytes = 1024;
constexpr size_t kErrorBytes = 512;
constexpr size_t kStageBytes = 20;  // the /failures stage field
// Chunks of about 1 MiB: big enough for efficient parallel I/O, small enough that a reader
// fetching one video's rows does not pull in much else.
constexpr hsize_t kChunkBytes = 1 << 20;
// addVideos writes the manifest in collective rounds of at most this many rows per rank, so a
// manifest of millions of videos never needs one huge buffer.
constexpr size_t kVideoBatchRows = 4096;

// One /segments row: the video's /videos row, then the segment as the pipeline describes it (one
// record, no field-by-field copy). The memory layout IS the file layout: if they differed HDF5
// would have to convert, and parallel HDF5 silently falls back to independent I/O for converted
// transfers. SegmentRecord's field order avoids padding.
struct SegmentRow {
  int64_t videoRow;
  SegmentRecord segment;
};
static_assert(sizeof(SegmentRow) == 48, "SegmentRow must have no padding");

// One /videos row: a video's outcome, written whole by the wave that finishes it (no
// read-modify-write). Same rule as SegmentRow (memory layout == file layout). Seven padding bytes
// follow `status`; rows are zeroed before filling so the file content is deterministic.
struct VideoRow {
  int8_t status;
  double fps;
  int64_t decodedFrames;
  double duration;
  int64_t decodeErrors;
  int64_t firstRow;
  int64_t segmentCount;
};
static_assert(sizeof(VideoRow) == 56, "VideoRow is 56 bytes");

// One /manifest row: the video's id and path, written once when the run adds the video and never
// again, so the table is compressed (the fixed-length strings are mostly NUL padding).
struct ManifestRow {
  char videoId[kVideoIdBytes];
  char path[kPathBytes];
};
static_assert(sizeof(ManifestRow) == kVideoIdBytes + kPathBytes, "ManifestRow has no padding");
// /manifest's deflate level: the strings compress ~50x at any level; 1 is the cheapest.
constexpr unsigned kManifestDeflateLevel = 1;

// Format 1 only: the failure message was a member of /videos (in format 2 it is the video's last
// /failures row). Read by name from a format 1 /videos.
struct VideoErrorRow {
  char error[kErrorBytes];
};

// One /failures row (memory layout == file layout, no padding).
struct FailureRow {
  int64_t videoRow;
  int32_t rank;
  char stage[kStageBytes];
  char message[kErrorBytes];
};
static_assert(sizeof(FailureRow) == 8 + 4 + kStageBytes + kErrorBytes,
              "FailureRow must have no padding");

h5::Datatype statusType();
h5::Datatype segmentType();
h5::Datatype videoType();
h5::Datatype manifestType();
h5::Datatype videoErrorType();  // format 1's /videos error member alone
h5::Datatype failureType();

template <size_t N>
void copyFixed(char (&dst)[N], const std::string& src) {
  std::memset(dst, 0, N);
  std::memcpy(dst, src.data(), std::min(N, src.size()));
}

template <size_t N>
std::string readFixed(const char (&src)[N]) {
  return std::string(src, strnlen(src, N));
}

// Cuts `text` to at most `bytes` bytes without splitting a UTF-8 sequence.
std::string truncateUtf8(const std::string& text, size_t bytes);

// The current time as "YYYY-MM-DDTHH:MM:SSZ".
std::string utcNow();

// Dataset creation with an unlimited first dimension; `deflate`: compressed chunks (a table written
// once: rewriting parts of a compressed chunk costs a decompression and a recompression).
h5::Dataset createTable(const h5::File& file, const char* name, hid_t type,
                        std::vector<hsize_t> dims, std::vector<hsize_t> chunk,
                        const std::string& description,
                        std::optional<h5::Deflate> deflate = std::nullopt);

// The run settings stored as root attributes.
FileMetadata readMetadata(hid_t root);

// The two directions between the file's rows (byte layouts, which must stay plain structs) and
// the one video record type: the outcome fields of a /videos row written from a result, and a
// video read back from its /videos and /manifest rows (its error message comes from /failures,
// or in format 1 from /videos).
void writeOutcome(VideoRow& row, const VideoOutcome& outcome);
StoredVideo storedVideo(const VideoRow& row, const ManifestRow& names);
// Format 2: a failed video's message is its last /failures row. Called for each /failures row in
// order; rows naming no video, or a video that is not failed, change nothing.
void applyFailureMessage(std::vector<StoredVideo>& videos, int64_t videoRow,
                         const std::string& message);

}  // namespace vidfeat
