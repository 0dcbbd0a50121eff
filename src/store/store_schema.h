#pragma once
// Internal to src/store: the on-disk schema of the output file (docs/FORMAT.md) — layout
// constants, the row structs whose memory layout IS the file layout, their HDF5 compound types,
// the fixed-length string helpers, the root attributes and the conversions between a /videos row
// and the video record types. Shared by the writer (feature_store.cpp, wave_writer.cpp), the
// validation of untrusted files (store_validation.cpp) and the reader (store_reader.cpp).
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "hdf5.h"
#include "vidfeat/store/feature_store.h"

namespace vidfeat {

// Layout constants; docs/FORMAT.md describes them for readers.
constexpr const char* kFormatVersion = "1";
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

// One /videos row, same rule as SegmentRow (memory layout == file layout). Seven padding bytes
// follow `status`; rows are zeroed before filling so the file content is deterministic.
struct VideoRow {
  char videoId[kVideoIdBytes];
  char path[kPathBytes];
  int8_t status;
  double fps;
  int64_t decodedFrames;
  double duration;
  int64_t decodeErrors;
  int64_t firstRow;
  int64_t segmentCount;
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

// Dataset creation with an unlimited first dimension.
h5::Dataset createTable(const h5::File& file, const char* name, hid_t type,
                        std::vector<hsize_t> dims, std::vector<hsize_t> chunk,
                        const std::string& description);

// The run settings stored as root attributes.
FileMetadata readMetadata(hid_t root);

// The two directions between a /videos row (the file's byte layout, which must stay a plain
// struct) and the one video record type: the outcome fields of a row written from a result (the
// error cut to kErrorBytes), and a row read back.
void writeOutcome(VideoRow& row, const VideoOutcome& outcome);
StoredVideo storedVideo(const VideoRow& row);

}  // namespace vidfeat
