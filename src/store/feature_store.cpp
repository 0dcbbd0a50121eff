#include "vidfeat/store/feature_store.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <numeric>
#include <sstream>

#include <sys/statvfs.h>

#include <fmt/format.h>

#include "hdf5.h"
#include "vidfeat/common/error.h"
#include "vidfeat/mpi/mpi_session.h"
#include "vidfeat/version.h"

namespace vidfeat {

namespace {

// Layout constants; docs/FORMAT.md describes them for readers.
constexpr const char* kFormatVersion = "1";
// Parallel HDF5 1.10 cannot write variable-length data collectively, so the per-video strings
// are fixed-length. An id or path that does not fit is an error (silently cutting an id would
// make two videos indistinguishable); an error message is only truncated.
constexpr size_t kVideoIdBytes = 256;
constexpr size_t kPathBytes = 1024;
constexpr size_t kErrorBytes = 512;
constexpr size_t kStageBytes = 24;
// Chunks of about 1 MiB: big enough for efficient parallel I/O, small enough that a reader
// fetching one video's rows does not pull in much else.
constexpr hsize_t kChunkBytes = 1 << 20;
// addVideos writes the manifest in collective rounds of at most this many rows per rank, so a
// manifest of millions of videos never needs one huge buffer.
constexpr size_t kVideoBatchRows = 4096;

// One /segments row. The memory layout IS the file layout: if they differed HDF5 would have to
// convert, and parallel HDF5 silently falls back to independent I/O for converted transfers. The
// field order avoids padding.
struct SegmentRow {
  int64_t videoRow;
  int32_t segment;
  int32_t paddedFrames;
  int64_t firstFrame;
  int64_t lastFrame;
  double startTime;
  double endTime;
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
  char stage[kStageBytes - 4];
  char message[kErrorBytes];
};
static_assert(sizeof(FailureRow) == 8 + kStageBytes + kErrorBytes, "FailureRow must have no padding");

void checkMpi(int rc, const char* call) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(rc, text, &length);
  throw Error(std::string(call) + " failed: " + std::string(text, static_cast<size_t>(length)));
}

void insertMember(const h5::Datatype& compound, const char* name, size_t offset, hid_t type) {
  h5::check(H5Tinsert(compound.id(), name, offset, type), "H5Tinsert", name);
}

h5::Datatype statusType() {
  auto type = h5::Datatype::take(H5Tenum_create(H5T_NATIVE_INT8), "H5Tenum_create");
  const std::pair<const char*, VideoStatus> members[] = {{"pending", VideoStatus::Pending},
                                                         {"complete", VideoStatus::Complete},
                                                         {"failed", VideoStatus::Failed}};
  for (const auto& [name, status] : members) {
    int8_t value = static_cast<int8_t>(status);
    h5::check(H5Tenum_insert(type.id(), name, &value), "H5Tenum_insert", name);
  }
  return type;
}

h5::Datatype segmentType() {
  auto type = h5::Datatype::take(H5Tcreate(H5T_COMPOUND, sizeof(SegmentRow)), "H5Tcreate");
  insertMember(type, "video_row", offsetof(SegmentRow, videoRow), H5T_NATIVE_INT64);
  insertMember(type, "segment", offsetof(SegmentRow, segment), H5T_NATIVE_INT32);
  insertMember(type, "padded_frames", offsetof(SegmentRow, paddedFrames), H5T_NATIVE_INT32);
  insertMember(type, "first_frame", offsetof(SegmentRow, firstFrame), H5T_NATIVE_INT64);
  insertMember(type, "last_frame", offsetof(SegmentRow, lastFrame), H5T_NATIVE_INT64);
  insertMember(type, "start_time", offsetof(SegmentRow, startTime), H5T_NATIVE_DOUBLE);
  insertMember(type, "end_time", offsetof(SegmentRow, endTime), H5T_NATIVE_DOUBLE);
  return type;
}

h5::Datatype videoType() {
  auto type = h5::Datatype::take(H5Tcreate(H5T_COMPOUND, sizeof(VideoRow)), "H5Tcreate");
  h5::Datatype idType = h5::fixedString(kVideoIdBytes);
  h5::Datatype pathType = h5::fixedString(kPathBytes);
  h5::Datatype errorType = h5::fixedString(kErrorBytes);
  h5::Datatype status = statusType();
  insertMember(type, "video_id", offsetof(VideoRow, videoId), idType.id());
  insertMember(type, "path", offsetof(VideoRow, path), pathType.id());
  insertMember(type, "status", offsetof(VideoRow, status), status.id());
  insertMember(type, "fps", offsetof(VideoRow, fps), H5T_NATIVE_DOUBLE);
  insertMember(type, "decoded_frames", offsetof(VideoRow, decodedFrames), H5T_NATIVE_INT64);
  insertMember(type, "duration", offsetof(VideoRow, duration), H5T_NATIVE_DOUBLE);
  insertMember(type, "decode_errors", offsetof(VideoRow, decodeErrors), H5T_NATIVE_INT64);
  insertMember(type, "first_row", offsetof(VideoRow, firstRow), H5T_NATIVE_INT64);
  insertMember(type, "segment_count", offsetof(VideoRow, segmentCount), H5T_NATIVE_INT64);
  insertMember(type, "error", offsetof(VideoRow, error), errorType.id());
  return type;  // H5Tinsert copies member types, so the temporaries may close
}

h5::Datatype failureType() {
  auto type = h5::Datatype::take(H5Tcreate(H5T_COMPOUND, sizeof(FailureRow)), "H5Tcreate");
  h5::Datatype stageType = h5::fixedString(sizeof(FailureRow::stage));
  h5::Datatype messageType = h5::fixedString(kErrorBytes);
  insertMember(type, "video_row", offsetof(FailureRow, videoRow), H5T_NATIVE_INT64);
  insertMember(type, "rank", offsetof(FailureRow, rank), H5T_NATIVE_INT32);
  insertMember(type, "stage", offsetof(FailureRow, stage), stageType.id());
  insertMember(type, "message", offsetof(FailureRow, message), messageType.id());
  return type;
}

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
std::string truncateUtf8(const std::string& text, size_t bytes) {
  if (text.size() <= bytes) return text;
  size_t cut = bytes;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  return text.substr(0, cut);
}

std::string utcNow() {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

// Dataset creation with an unlimited first dimension.
h5::Dataset createTable(const h5::File& file, const char* name, hid_t type,
                        std::vector<hsize_t> dims, std::vector<hsize_t> chunk,
                        const std::string& description) {
  std::vector<hsize_t> maxDims = dims;
  maxDims[0] = H5S_UNLIMITED;
  h5::Dataspace space = h5::simpleSpace(dims, maxDims);
  h5::DatasetCreateProps dcpl;
  dcpl.add(h5::Chunked{std::move(chunk)}).add(h5::FillTime{}).add(h5::AllocTime{});
  auto dataset = h5::Dataset::take(
      H5Dcreate2(file.id(), name, type, space.id(), H5P_DEFAULT, dcpl.id(), H5P_DEFAULT),
      "H5Dcreate2", name);
  h5::writeAttribute(dataset.id(), "description", description);
  return dataset;
}

FileMetadata readMetadata(hid_t root) {
  FileMetadata meta;
  meta.modelName = h5::readStringAttribute(root, "model_name");
  meta.modelArch = h5::readStringAttribute(root, "model_arch");
  meta.configYaml = h5::readStringAttribute(root, "config_yaml");
  meta.checkpointPath = h5::readStringAttribute(root, "checkpoint_path");
  meta.checkpointSha256 = h5::readStringAttribute(root, "checkpoint_sha256");
  meta.weights = h5::readStringAttribute(root, "weights");
  meta.tailPolicy = h5::readStringAttribute(root, "tail_policy");
  meta.featureName = h5::readStringAttribute(root, "feature_name");
  meta.featureDim = h5::readIntAttribute(root, "feature_dim");
  meta.crops = h5::hasAttribute(root, "crops") ? static_cast<int32_t>(h5::readIntAttribute(root, "crops")) : 1;
  meta.numFrames = static_cast<int32_t>(h5::readIntAttribute(root, "num_frames"));
  meta.samplingRate = static_cast<int32_t>(h5::readIntAttribute(root, "sampling_rate"));
  meta.stride = static_cast<int32_t>(h5::readIntAttribute(root, "stride"));
  meta.targetFps = h5::readDoubleAttribute(root, "target_fps");
  return meta;
}

StoredVideo storedVideo(const VideoRow& row) {
  StoredVideo video;
  video.videoId = readFixed(row.videoId);
  video.path = readFixed(row.path);
  video.status = static_cast<VideoStatus>(row.status);
  video.fps = row.fps;
  video.decodedFrames = row.decodedFrames;
  video.duration = row.duration;
  video.decodeErrors = row.decodeErrors;
  video.firstRow = row.firstRow;
  video.segmentCount = row.segmentCount;
  video.error = readFixed(row.error);
  return video;
}

}  // namespace

std::vector<std::string> metadataDifferences(const FileMetadata& stored, const FileMetadata& wanted) {
  std::vector<std::string> out;
  auto cmp = [&](const char* what, const std::string& a, const std::string& b) {
    if (a != b) out.push_back(std::string(what) + ": file has '" + a + "', this run has '" + b + "'");
  };
  cmp("model arch", stored.modelArch, wanted.modelArch);
  cmp("checkpoint sha256", stored.checkpointSha256, wanted.checkpointSha256);
  cmp("weights", stored.weights, wanted.weights);
  cmp("tail policy", stored.tailPolicy, wanted.tailPolicy);
  cmp("feature", stored.featureName, wanted.featureName);
  auto num = [&](const char* what, double a, double b) {
    if (a != b) out.push_back(std::string(what) + ": file has " + fmt::format("{}", a) + ", this run has " + fmt::format("{}", b));
  };
  num("feature dim", double(stored.featureDim), double(wanted.featureDim));
  num("--crops", stored.crops, wanted.crops);
  num("NUM_FRAMES", stored.numFrames, wanted.numFrames);
  num("SAMPLING_RATE", stored.samplingRate, wanted.samplingRate);
  num("stride", stored.stride, wanted.stride);
  num("--fps", stored.targetFps, wanted.targetFps);
  if (stored.configYaml != wanted.configYaml) {
    // Name the first differing lines of the effective config, the part a user can act on.
    std::istringstream a(stored.configYaml), b(wanted.configYaml);
    std::string la, lb;
    int shown = 0;
    while (shown < 3) {
      bool ha = bool(std::getline(a, la)), hb = bool(std::getline(b, lb));
      if (!ha && !hb) break;
      if (!ha) la = "<end>";
      if (!hb) lb = "<end>";
      if (la != lb) {
        out.push_back("config: file has '" + la + "', this run has '" + lb + "'");
        ++shown;
      }
    }
    if (shown == 0) out.push_back("config: the effective configurations differ");
  }
  return out;
}

struct FeatureStore::Impl {
  MPI_Comm comm = MPI_COMM_NULL;
  int rank = 0;
  int size = 1;
  std::string path;
  int64_t dim = 0;                 // floats per /features row (crops x feature_dim)
  std::vector<hsize_t> rowShape;   // shape of one /features row: {D} or {crops, D}
  int64_t featureRows = 0;  // current extent of /features and /segments, equal on all ranks
  int64_t videoRows = 0;    // current extent of /videos, equal on all ranks
  bool lastWriteCollective = true;

  h5::Datatype segmentType = vidfeat::segmentType();
  h5::Datatype videoType = vidfeat::videoType();
  h5::Datatype failureType = vidfeat::failureType();
  int64_t failureRows = 0;  // current extent of /failures
  h5::TransferProps collective;

  // The datasets are closed before the file (close(), ~Impl): with the MPI-IO driver H5Fclose
  // refuses to close a file whose objects are still open.
  h5::File file;
  h5::Dataset features;
  h5::Dataset segments;
  h5::Dataset videos;
  h5::Dataset failures;

  Impl() { collective.add(h5::CollectiveTransfer{}); }

  ~Impl() {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (finalized) {
      // Parallel HDF5 shuts itself down inside MPI_Finalize (closing the file); our ids are gone.
      for (auto* handle : {&failures, &videos, &segments, &features}) handle->release();
      file.release();
      segmentType.release();
      videoType.release();
      failureType.release();
      collective.release();
      return;
    }
    // Everything closed here, inside the quiet scope, not by the member destructors after it.
    h5::QuietErrors quiet;
    failures.reset();
    videos.reset();
    segments.reset();
    features.reset();
    file.reset();
    segmentType.reset();
    videoType.reset();
    failureType.reset();
    collective.reset();
  }

  void requireOpen(const char* what) const {
    if (!file.valid()) throw Error(std::string("FeatureStore::") + what + ": the store is closed");
  }

  // Collective. Writes rows [offset, offset + count) of a 1-D table or of the 2-D /features
  // (rowDims: the shape of one row) from `buffer`. A rank with count == 0 takes part with an empty selection, which
  // collective I/O requires.
  void writeBlock(const h5::Dataset& dataset, hid_t memType, hsize_t offset, hsize_t count,
                  const std::vector<hsize_t>& rowDims, const void* buffer, const char* what) {
    h5::Dataspace fileSpace = h5::spaceOf(dataset, what);
    std::vector<hsize_t> start{offset}, counts{count}, memDims{std::max<hsize_t>(count, 1)};
    for (hsize_t d : rowDims) {
      start.push_back(0);
      counts.push_back(d);
      memDims.push_back(d);
    }
    h5::Dataspace memSpace = h5::simpleSpace(memDims);
    if (count > 0) {
      h5::check(H5Sselect_hyperslab(fileSpace.id(), H5S_SELECT_SET, start.data(), nullptr,
                                    counts.data(), nullptr),
                "H5Sselect_hyperslab", what);
    } else {
      h5::check(H5Sselect_none(fileSpace.id()), "H5Sselect_none", what);
      h5::check(H5Sselect_none(memSpace.id()), "H5Sselect_none", what);
    }
    static const char kDummy = 0;  // H5Dwrite wants a buffer even when nothing is selected
    h5::check(H5Dwrite(dataset.id(), memType, memSpace.id(), fileSpace.id(), collective.id(),
                       buffer ? buffer : &kDummy),
              "H5Dwrite", what);
    lastWriteCollective &= h5::warnIfNotCollective(collective, std::string("writing ") + what);
    spdlog::debug("wrote {} rows of {} at row {}: {}", count, what, offset,
                  h5::ioMode(collective).describe());
  }

  // Selects the given /videos rows (points, in the order given) or nothing.
  std::pair<h5::Dataspace, h5::Dataspace> videoSelection(const std::vector<hsize_t>& rows) {
    h5::Dataspace fileSpace = h5::spaceOf(videos, "/videos");
    h5::Dataspace memSpace = h5::simpleSpace({std::max<hsize_t>(rows.size(), 1)});
    if (rows.empty()) {
      h5::check(H5Sselect_none(fileSpace.id()), "H5Sselect_none", "/videos");
      h5::check(H5Sselect_none(memSpace.id()), "H5Sselect_none", "/videos");
    } else {
      h5::check(H5Sselect_elements(fileSpace.id(), H5S_SELECT_SET, rows.size(), rows.data()),
                "H5Sselect_elements", "/videos");
    }
    return {std::move(fileSpace), std::move(memSpace)};
  }
};

FeatureStore::FeatureStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
FeatureStore::FeatureStore(FeatureStore&&) noexcept = default;
FeatureStore& FeatureStore::operator=(FeatureStore&&) noexcept = default;
FeatureStore::~FeatureStore() = default;

FeatureStore FeatureStore::create(const std::string& path, MPI_Comm comm,
                                  const FileMetadata& meta) {
  // Every check before the first collective call depends only on arguments all ranks share, so
  // all ranks throw together and none is left waiting.
  if (meta.featureDim <= 0) {
    throw Error("cannot create " + path + ": feature dimension must be positive, got " +
                std::to_string(meta.featureDim));
  }
  h5::QuietErrors quiet;
  auto impl = std::make_unique<Impl>();
  impl->comm = comm;
  checkMpi(MPI_Comm_rank(comm, &impl->rank), "MPI_Comm_rank");
  checkMpi(MPI_Comm_size(comm, &impl->size), "MPI_Comm_size");
  impl->path = path;
  if (meta.crops < 1) throw Error("cannot create " + path + ": crops must be >= 1");
  impl->dim = meta.featureDim * meta.crops;
  if (meta.crops > 1) impl->rowShape.push_back(static_cast<hsize_t>(meta.crops));
  impl->rowShape.push_back(static_cast<hsize_t>(meta.featureDim));

  // Attributes are metadata: every rank must write the same value, so the clock is read once.
  std::array<char, 32> created{};
  if (impl->rank == 0) {
    std::string now = utcNow();
    std::copy(now.begin(), now.end(), created.begin());
  }
  checkMpi(MPI_Bcast(created.data(), static_cast<int>(created.size()), MPI_CHAR, 0, comm),
           "MPI_Bcast");

  h5::FileAccessProps fapl;
  fapl.add(h5::MpioAccess{comm}).add(h5::CollectiveMetadata{});
  impl->file = h5::File::take(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.id()),
                              "H5Fcreate", path);

  const hid_t root = impl->file.id();
  h5::writeAttribute(root, "format_version", std::string(kFormatVersion));
  h5::writeAttribute(root, "vidfeat_version", std::string(VIDFEAT_VERSION));
  h5::writeAttribute(root, "model_name", meta.modelName);
  h5::writeAttribute(root, "model_arch", meta.modelArch);
  h5::writeAttribute(root, "config_yaml", meta.configYaml);
  h5::writeAttribute(root, "checkpoint_path", meta.checkpointPath);
  h5::writeAttribute(root, "checkpoint_sha256", meta.checkpointSha256);
  h5::writeAttribute(root, "weights", meta.weights);
  h5::writeAttribute(root, "tail_policy", meta.tailPolicy);
  h5::writeAttribute(root, "feature_name", meta.featureName);
  h5::writeAttribute(root, "feature_dim", meta.featureDim);
  h5::writeAttribute(root, "crops", meta.crops);
  h5::writeAttribute(root, "num_frames", meta.numFrames);
  h5::writeAttribute(root, "sampling_rate", meta.samplingRate);
  h5::writeAttribute(root, "stride", meta.stride);
  h5::writeAttribute(root, "target_fps", meta.targetFps);
  h5::writeAttribute(root, "created_utc", std::string(created.data()));

  const hsize_t rowFloats = static_cast<hsize_t>(impl->dim);
  const hsize_t featureChunkRows = std::max<hsize_t>(1, kChunkBytes / sizeof(float) / rowFloats);
  std::vector<hsize_t> featureDims{0}, featureChunk{featureChunkRows};
  featureDims.insert(featureDims.end(), impl->rowShape.begin(), impl->rowShape.end());
  featureChunk.insert(featureChunk.end(), impl->rowShape.begin(), impl->rowShape.end());
  impl->features =
      createTable(impl->file, "features", H5T_IEEE_F32LE, featureDims, featureChunk,
                  meta.crops > 1 ? "feature vectors [segment, crop, D]; row i belongs to /segments[i]"
                                 : "one feature vector per segment; row i belongs to /segments[i]");
  impl->segments = createTable(impl->file, "segments", impl->segmentType.id(), {0},
                               {std::max<hsize_t>(1, kChunkBytes / sizeof(SegmentRow))},
                               "where each /features row comes from in its video");
  impl->videos = createTable(impl->file, "videos", impl->videoType.id(), {0},
                             {std::max<hsize_t>(1, kChunkBytes / sizeof(VideoRow))},
                             "one row per manifest video; its features are rows "
                             "[first_row, first_row + segment_count) of /features");
  impl->failures = createTable(impl->file, "failures", impl->failureType.id(), {0},
                               {std::max<hsize_t>(1, kChunkBytes / sizeof(FailureRow))},
                               "one row per failed attempt at a video: where and why it failed");
  h5::check(H5Fflush(root, H5F_SCOPE_GLOBAL), "H5Fflush", path);
  return FeatureStore(std::move(impl));
}

FeatureStore FeatureStore::resume(const std::string& path, MPI_Comm comm,
                                  const FileMetadata& meta, std::vector<StoredVideo>& videos) {
  h5::QuietErrors quiet;
  auto impl = std::make_unique<Impl>();
  impl->comm = comm;
  checkMpi(MPI_Comm_rank(comm, &impl->rank), "MPI_Comm_rank");
  checkMpi(MPI_Comm_size(comm, &impl->size), "MPI_Comm_size");
  impl->path = path;

  // Rank 0 checks that the file is ours and made the same way; every rank learns the verdict
  // before the collective open, so a refusal never leaves a rank waiting.
  std::string refusal;
  if (impl->rank == 0) {
    try {
      StoreSummary existing = readStoreSummary(path);
      auto diffs = metadataDifferences(existing.meta, meta);
      if (!diffs.empty()) {
        refusal = path + " was written with different settings, so its features could not be "
                         "mixed with this run's (pass --overwrite to start afresh):";
        for (const auto& d : diffs) refusal += "\n  " + d;
      }
    } catch (const std::exception& e) {
      refusal = std::string("cannot resume: ") + e.what();
    }
  }
  broadcastString(refusal, 0, comm);
  if (!refusal.empty()) throw CollectiveError(refusal);

  h5::FileAccessProps fapl;
  fapl.add(h5::MpioAccess{comm}).add(h5::CollectiveMetadata{});
  impl->file = h5::File::take(H5Fopen(path.c_str(), H5F_ACC_RDWR, fapl.id()), "H5Fopen", path);
  const hid_t root = impl->file.id();
  const int64_t featureDim = h5::readIntAttribute(root, "feature_dim");
  const int64_t crops = h5::hasAttribute(root, "crops") ? h5::readIntAttribute(root, "crops") : 1;
  impl->dim = featureDim * crops;
  if (crops > 1) impl->rowShape.push_back(static_cast<hsize_t>(crops));
  impl->rowShape.push_back(static_cast<hsize_t>(featureDim));
  impl->features = h5::Dataset::take(H5Dopen2(root, "features", H5P_DEFAULT), "H5Dopen2", "/features");
  impl->segments = h5::Dataset::take(H5Dopen2(root, "segments", H5P_DEFAULT), "H5Dopen2", "/segments");
  impl->videos = h5::Dataset::take(H5Dopen2(root, "videos", H5P_DEFAULT), "H5Dopen2", "/videos");
  impl->failures = h5::Dataset::take(H5Dopen2(root, "failures", H5P_DEFAULT), "H5Dopen2", "/failures");
  impl->videoRows = static_cast<int64_t>(h5::dimsOf(impl->videos, "/videos")[0]);
  impl->failureRows = static_cast<int64_t>(h5::dimsOf(impl->failures, "/failures")[0]);
  const int64_t featureExtent = static_cast<int64_t>(h5::dimsOf(impl->features, "/features")[0]);

  // Every rank reads the whole table (collectively): all need it to plan the remaining work.
  std::vector<VideoRow> rows(static_cast<size_t>(std::max<int64_t>(impl->videoRows, 1)));
  {
    h5::Dataspace fileSpace = h5::spaceOf(impl->videos, "/videos");
    h5::Dataspace memSpace = h5::simpleSpace({static_cast<hsize_t>(rows.size())});
    if (impl->videoRows == 0) {
      h5::check(H5Sselect_none(fileSpace.id()), "H5Sselect_none", "/videos");
      h5::check(H5Sselect_none(memSpace.id()), "H5Sselect_none", "/videos");
    }
    h5::check(H5Dread(impl->videos.id(), impl->videoType.id(), memSpace.id(), fileSpace.id(),
                      impl->collective.id(), rows.data()),
              "H5Dread", "/videos");
  }
  videos.clear();
  int64_t referencedEnd = 0;
  for (int64_t i = 0; i < impl->videoRows; ++i) {
    const VideoRow& row = rows[static_cast<size_t>(i)];
    videos.push_back(storedVideo(row));
    if (row.status != static_cast<int8_t>(VideoStatus::Pending) && row.segmentCount > 0) {
      referencedEnd = std::max(referencedEnd, row.firstRow + row.segmentCount);
    }
  }
  // Rows past the last referenced one belong to a wave a crash cut short: cut them off.
  if (featureExtent != referencedEnd) {
    std::vector<hsize_t> featureDims{static_cast<hsize_t>(referencedEnd)};
    featureDims.insert(featureDims.end(), impl->rowShape.begin(), impl->rowShape.end());
    const hsize_t segmentDims = static_cast<hsize_t>(referencedEnd);
    h5::check(H5Dset_extent(impl->features.id(), featureDims.data()), "H5Dset_extent", "/features");
    h5::check(H5Dset_extent(impl->segments.id(), &segmentDims), "H5Dset_extent", "/segments");
    // Shrinking fills the cut part of a partly kept chunk with the fill value through HDF5's chunk
    // cache; flushed later, that cached chunk would overwrite rows a wave writes there meanwhile
    // (collective writes bypass the cache). Flushed now, before any new row is written.
    h5::check(H5Fflush(impl->file.id(), H5F_SCOPE_GLOBAL), "H5Fflush", path);
    if (impl->rank == 0) {
      spdlog::warn("{}: {} feature rows of an interrupted wave discarded; those videos are redone",
                   path, featureExtent - referencedEnd);
    }
  }
  impl->featureRows = referencedEnd;
  return FeatureStore(std::move(impl));
}

namespace {
// A moved-from store has no state; using it is a programming error, reported rather than crashing.
template <class ImplPtr>
auto& stateOf(const ImplPtr& impl, const char* what) {
  if (!impl) throw Error(std::string("FeatureStore::") + what + ": store was moved from");
  return *impl;
}
}  // namespace

int64_t FeatureStore::addVideos(const std::vector<VideoEntry>& videos) {
  Impl& s = stateOf(impl_, "addVideos");
  s.requireOpen("addVideos");
  // Same list on every rank, so every rank finds the same problem and throws before any
  // collective call.
  for (const auto& video : videos) {
    if (video.videoId.size() > kVideoIdBytes) {
      throw Error("video '" + video.videoId + "': its id is " +
                  std::to_string(video.videoId.size()) +
                  " bytes long; the output file stores ids of at most " +
                  std::to_string(kVideoIdBytes) + " bytes (see docs/FORMAT.md)");
    }
    if (video.path.size() > kPathBytes) {
      throw Error("video '" + video.videoId + "': its path is " +
                  std::to_string(video.path.size()) +
                  " bytes long; the output file stores paths of at most " +
                  std::to_string(kPathBytes) + " bytes (see docs/FORMAT.md)");
    }
  }
  h5::QuietErrors quiet;
  const int64_t first = s.videoRows;
  if (videos.empty()) return first;
  try {
    appendVideoRows(videos);
  } catch (const CollectiveError&) {
    throw;
  } catch (const Error& e) {
    throw Error(describeWriteFailure(s.path, e.what()));
  }
  return first;
}

void FeatureStore::appendVideoRows(const std::vector<VideoEntry>& videos) {
  Impl& s = *impl_;
  const int64_t first = s.videoRows;
  const size_t n = videos.size();
  const hsize_t newRows = static_cast<hsize_t>(first) + n;
  h5::check(H5Dset_extent(s.videos.id(), &newRows), "H5Dset_extent", "/videos");

  // Each rank writes one contiguous share of the list; shares are written in rounds of bounded
  // size, the same number of rounds on every rank.
  const size_t share = (n + s.size - 1) / s.size;
  const size_t begin = std::min(n, share * s.rank);
  const size_t end = std::min(n, begin + share);
  const size_t rounds = (share + kVideoBatchRows - 1) / kVideoBatchRows;
  s.lastWriteCollective = true;
  std::vector<VideoRow> rows;
  for (size_t round = 0; round < rounds; ++round) {
    const size_t from = std::min(end, begin + round * kVideoBatchRows);
    const size_t to = std::min(end, from + kVideoBatchRows);
    rows.resize(to - from);
    if (!rows.empty())
      std::memset(static_cast<void*>(rows.data()), 0, rows.size() * sizeof(VideoRow));
    for (size_t i = from; i < to; ++i) {
      VideoRow& row = rows[i - from];
      copyFixed(row.videoId, videos[i].videoId);
      copyFixed(row.path, videos[i].path);
      row.status = static_cast<int8_t>(VideoStatus::Pending);
      row.firstRow = -1;
    }
    s.writeBlock(s.videos, s.videoType.id(), static_cast<hsize_t>(first) + from, to - from, {},
                 rows.empty() ? nullptr : rows.data(), "/videos");
  }
  h5::check(H5Fflush(s.file.id(), H5F_SCOPE_GLOBAL), "H5Fflush", s.path);
  s.videoRows = static_cast<int64_t>(newRows);
}

void FeatureStore::writeWave(const std::vector<VideoResult>& local) {
  stateOf(impl_, "writeWave");  // a moved-from store: reported as such, not as an I/O error
  try {
    writeWaveUnguarded(local);
  } catch (const CollectiveError&) {
    throw;
  } catch (const Error& e) {
    if (std::string(e.what()).rfind("writeWave:", 0) == 0) throw;
    throw Error(describeWriteFailure(impl_->path, e.what()));
  }
}

void FeatureStore::writeWaveUnguarded(const std::vector<VideoResult>& local) {
  Impl& s = stateOf(impl_, "writeWave");
  s.requireOpen("writeWave");

  // Check this rank's results, then agree: if any rank's are bad, every rank throws here instead
  // of the others hanging in the next collective call.
  std::string problem;
  for (const auto& result : local) {
    const std::string which = "writeWave: video row " + std::to_string(result.videoRow);
    if (result.videoRow < 0 || result.videoRow >= s.videoRows) {
      problem = which + " is not a row of /videos (it has " + std::to_string(s.videoRows) + ")";
    } else if (result.status == VideoStatus::Pending) {
      problem = which + " is still pending";
    } else if (result.status == VideoStatus::Failed && !result.segments.empty()) {
      problem =
          which + " failed but carries " + std::to_string(result.segments.size()) + " segments";
    } else if (result.features.size() != result.segments.size() * static_cast<size_t>(s.dim)) {
      problem = which + " has " + std::to_string(result.features.size()) + " feature values for " +
                std::to_string(result.segments.size()) + " segments of dimension " +
                std::to_string(s.dim);
    }
    if (!problem.empty()) break;
  }
  if (problem.empty()) {
    // Two results for one row would write the video twice and leave one range unreferenced.
    std::vector<int64_t> rows;
    for (const auto& result : local) rows.push_back(result.videoRow);
    std::sort(rows.begin(), rows.end());
    auto dup = std::adjacent_find(rows.begin(), rows.end());
    if (dup != rows.end())
      problem = "writeWave: video row " + std::to_string(*dup) + " passed twice";
  }
  int localBad = problem.empty() ? 0 : 1, anyBad = 0;
  checkMpi(MPI_Allreduce(&localBad, &anyBad, 1, MPI_INT, MPI_MAX, s.comm), "MPI_Allreduce");
  if (anyBad) {
    throw Error(problem.empty()
                    ? "writeWave: another rank passed invalid results; nothing was written"
                    : problem + "; nothing was written");
  }

  // Offsets: every rank learns every rank's counts, so extents and offsets agree without a
  // separate broadcast.
  int64_t mine[3] = {0, static_cast<int64_t>(local.size()), 0};
  for (const auto& result : local) {
    mine[0] += static_cast<int64_t>(result.segments.size());
    mine[2] += result.status == VideoStatus::Failed ? 1 : 0;
  }
  std::vector<int64_t> all(3 * static_cast<size_t>(s.size));
  checkMpi(MPI_Allgather(mine, 3, MPI_INT64_T, all.data(), 3, MPI_INT64_T, s.comm),
           "MPI_Allgather");
  int64_t before = 0, totalSegments = 0, totalVideos = 0, failuresBefore = 0, totalFailures = 0;
  for (int r = 0; r < s.size; ++r) {
    if (r < s.rank) {
      before += all[3 * r];
      failuresBefore += all[3 * r + 2];
    }
    totalSegments += all[3 * r];
    totalVideos += all[3 * r + 1];
    totalFailures += all[3 * r + 2];
  }
  const int64_t myFirstRow = s.featureRows + before;

  h5::QuietErrors quiet;
  s.lastWriteCollective = true;
  if (totalSegments > 0) {
    const hsize_t newRows = static_cast<hsize_t>(s.featureRows + totalSegments);
    std::vector<hsize_t> featureDims{newRows};
    featureDims.insert(featureDims.end(), s.rowShape.begin(), s.rowShape.end());
    h5::check(H5Dset_extent(s.features.id(), featureDims.data()), "H5Dset_extent", "/features");
    h5::check(H5Dset_extent(s.segments.id(), &newRows), "H5Dset_extent", "/segments");

    std::vector<float> features;
    std::vector<SegmentRow> segments;
    features.reserve(static_cast<size_t>(mine[0] * s.dim));
    segments.reserve(static_cast<size_t>(mine[0]));
    for (const auto& result : local) {
      features.insert(features.end(), result.features.begin(), result.features.end());
      for (const auto& seg : result.segments) {
        segments.push_back(SegmentRow{result.videoRow, seg.index, seg.paddedFrames, seg.firstFrame,
                                      seg.lastFrame, seg.startTime, seg.endTime});
      }
    }
    s.writeBlock(s.features, H5T_NATIVE_FLOAT, static_cast<hsize_t>(myFirstRow),
                 static_cast<hsize_t>(mine[0]), s.rowShape,
                 features.empty() ? nullptr : features.data(), "/features");
    s.writeBlock(s.segments, s.segmentType.id(), static_cast<hsize_t>(myFirstRow),
                 static_cast<hsize_t>(mine[0]), {}, segments.empty() ? nullptr : segments.data(),
                 "/segments");
    s.featureRows = static_cast<int64_t>(newRows);
  }

  if (totalFailures > 0) {
    const hsize_t newRows = static_cast<hsize_t>(s.failureRows + totalFailures);
    h5::check(H5Dset_extent(s.failures.id(), &newRows), "H5Dset_extent", "/failures");
    std::vector<FailureRow> rows;
    for (const auto& result : local) {
      if (result.status != VideoStatus::Failed) continue;
      FailureRow row;
      std::memset(static_cast<void*>(&row), 0, sizeof row);
      row.videoRow = result.videoRow;
      row.rank = s.rank;
      copyFixed(row.stage, truncateUtf8(result.failureStage.empty() ? "unknown" : result.failureStage,
                                        sizeof(row.stage)));
      copyFixed(row.message, truncateUtf8(result.error, kErrorBytes));
      rows.push_back(row);
    }
    s.writeBlock(s.failures, s.failureType.id(), static_cast<hsize_t>(s.failureRows + failuresBefore),
                 rows.size(), {}, rows.empty() ? nullptr : rows.data(), "/failures");
    s.failureRows = static_cast<int64_t>(newRows);
  }

  // The new extents (and their chunks) reach the file before any /videos row points into them: a
  // crash after this flush leaves rows nobody references yet (cut off on resume), never a row
  // referencing rows past the extent on disk. (Correctness after a crash inside a flush comes from
  // the journals, not from this order: docs/DESIGN.md.)
  h5::check(H5Fflush(s.file.id(), H5F_SCOPE_GLOBAL), "H5Fflush", s.path);

  if (totalVideos > 0) {
    // Read-modify-write of whole rows: writing only some members would need a datatype
    // conversion, which parallel HDF5 can only do independently.
    std::vector<hsize_t> rowIndex;
    rowIndex.reserve(local.size());
    for (const auto& result : local) rowIndex.push_back(static_cast<hsize_t>(result.videoRow));
    std::vector<VideoRow> rows(std::max<size_t>(local.size(), 1));
    auto [fileSpace, memSpace] = s.videoSelection(rowIndex);
    h5::check(H5Dread(s.videos.id(), s.videoType.id(), memSpace.id(), fileSpace.id(),
                      s.collective.id(), rows.data()),
              "H5Dread", "/videos");
    int64_t next = myFirstRow;
    for (size_t i = 0; i < local.size(); ++i) {
      const VideoResult& result = local[i];
      VideoRow& row = rows[i];
      row.status = static_cast<int8_t>(result.status);
      row.fps = result.fps;
      row.decodedFrames = result.decodedFrames;
      row.duration = result.duration;
      row.decodeErrors = result.decodeErrors;
      row.firstRow = next;
      row.segmentCount = static_cast<int64_t>(result.segments.size());
      copyFixed(row.error, truncateUtf8(result.error, kErrorBytes));
      next += row.segmentCount;
    }
    h5::check(H5Dwrite(s.videos.id(), s.videoType.id(), memSpace.id(), fileSpace.id(),
                       s.collective.id(), rows.data()),
              "H5Dwrite", "/videos");
    s.lastWriteCollective &= h5::warnIfNotCollective(s.collective, "updating /videos");
    spdlog::debug("updated {} rows of /videos: {}", local.size(),
                  h5::ioMode(s.collective).describe());
  }

  h5::check(H5Fflush(s.file.id(), H5F_SCOPE_GLOBAL), "H5Fflush", s.path);
}

void FeatureStore::close() {
  if (!impl_ || !impl_->file.valid()) return;
  Impl& s = *impl_;
  h5::QuietErrors quiet;
  try {
    s.failures.close();
    s.videos.close();
    s.segments.close();
    s.features.close();
    s.file.close();
  } catch (const Error& e) {
    throw Error(describeWriteFailure(s.path, e.what()));
  }
}

std::string describeWriteFailure(const std::string& path, const std::string& details) {
  namespace fs = std::filesystem;
  std::string lower = details;
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  const fs::path parent = fs::path(path).parent_path().empty() ? fs::path(".") : fs::path(path).parent_path();
  struct statvfs vfs {};
  const bool known = ::statvfs(parent.c_str(), &vfs) == 0;
  const double freeBytes = known ? double(vfs.f_bavail) * double(vfs.f_frsize) : -1.0;
  const bool full = lower.find("no space") != std::string::npos || lower.find("no_space") != std::string::npos ||
                    lower.find("quota") != std::string::npos || (known && freeBytes < double(1 << 20));
  if (full) {
    return "disk full: cannot write " + path +
           (known ? fmt::format(" ({:.0f} bytes free on its file system)", freeBytes) : std::string()) +
           "; free space, then rerun the same command: it resumes from the journals (" + details + ")";
  }
  return "I/O error on " + path + ": " + details;
}

int64_t FeatureStore::featureDim() const { return stateOf(impl_, "featureDim").dim; }

bool FeatureStore::lastWriteCollective() const {
  return stateOf(impl_, "lastWriteCollective").lastWriteCollective;
}

StoreSummary readStoreSummary(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::exists(path, ec)) throw InputError(path, "no such file");
  auto notOurs = [&](const std::string& why) {
    return InputError(path, "not a vidfeat output file: " + why);
  };

  h5::QuietErrors quiet;
  htri_t isHdf5 = H5Fis_hdf5(path.c_str());
  if (isHdf5 <= 0) {
    (void)H5Eclear2(H5E_DEFAULT);  // a negative answer leaves an error stack we do not report
    throw notOurs("not an HDF5 file");
  }

  try {
    // Default (serial) file access: works in a parallel build and needs no MPI.
    auto file = h5::File::take(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), "H5Fopen", path);
    const hid_t root = file.id();
    if (!h5::hasAttribute(root, "format_version")) throw notOurs("no format_version attribute");
    for (const char* name : {"/features", "/segments", "/videos"}) {
      if (!h5::linkExists(root, name)) throw notOurs(std::string("no ") + name + " dataset");
    }

    StoreSummary summary;
    summary.formatVersion = h5::readStringAttribute(root, "format_version");
    if (summary.formatVersion != kFormatVersion) {
      throw InputError(path, "format_version " + summary.formatVersion +
                                 " is not supported by this vidfeat (it reads version " +
                                 kFormatVersion + ")");
    }
    summary.vidfeatVersion = h5::readStringAttribute(root, "vidfeat_version");
    summary.meta = readMetadata(root);
    summary.createdUtc = h5::readStringAttribute(root, "created_utc");

    // The file is untrusted: every shape, type and row reference is checked before anything is
    // sized or written by it (a resume writes into this file, a merge copies rows out of it).
    auto typeClassOf = [&](const h5::Dataset& d, const char* what) {
      h5::Datatype type = h5::Datatype::take(H5Dget_type(d.id()), "H5Dget_type", what);
      return std::make_pair(H5Tget_class(type.id()), H5Tget_size(type.id()));
    };
    // A table of `dims` rows whose storage could not hold them was never written (an extent of
    // 10^9 rows costs a few bytes of metadata): refused before a vector is sized by it.
    auto checkStored = [&](const h5::Dataset& d, const char* what, hsize_t rowsNeeded) {
      const hsize_t stored = h5::storedRowsBound(d, what);
      if (rowsNeeded > stored) {
        throw notOurs(std::string(what) + " claims " + std::to_string(rowsNeeded) + " rows but stores at most " +
                      std::to_string(stored));
      }
    };

    auto features =
        h5::Dataset::take(H5Dopen2(root, "features", H5P_DEFAULT), "H5Dopen2", "/features");
    std::vector<hsize_t> featureDims = h5::dimsOf(features, "/features");
    if (featureDims.size() != (summary.meta.crops > 1 ? 3u : 2u)) throw notOurs("/features has an unexpected rank");
    if (featureDims.back() != static_cast<hsize_t>(summary.meta.featureDim) ||
        (summary.meta.crops > 1 && featureDims[1] != static_cast<hsize_t>(summary.meta.crops))) {
      std::string shape;
      for (size_t i = 1; i < featureDims.size(); ++i) shape += (i > 1 ? "x" : "") + std::to_string(featureDims[i]);
      throw notOurs("/features rows are " + shape + " wide but feature_dim is " +
                    std::to_string(summary.meta.featureDim) + " (crops " + std::to_string(summary.meta.crops) + ")");
    }
    if (typeClassOf(features, "/features") != std::make_pair(H5T_FLOAT, sizeof(float))) {
      throw notOurs("/features is not float32");
    }
    summary.featureRows = static_cast<int64_t>(featureDims[0]);

    auto segments = h5::Dataset::take(H5Dopen2(root, "segments", H5P_DEFAULT), "H5Dopen2", "/segments");
    std::vector<hsize_t> segmentDims = h5::dimsOf(segments, "/segments");
    if (segmentDims.size() != 1 || typeClassOf(segments, "/segments").first != H5T_COMPOUND) {
      throw notOurs("/segments is not a table");
    }

    auto videos = h5::Dataset::take(H5Dopen2(root, "videos", H5P_DEFAULT), "H5Dopen2", "/videos");
    std::vector<hsize_t> videoDims = h5::dimsOf(videos, "/videos");
    if (videoDims.size() != 1 || typeClassOf(videos, "/videos").first != H5T_COMPOUND) {
      throw notOurs("/videos is not a table");
    }
    checkStored(videos, "/videos", videoDims[0]);
    std::vector<VideoRow> rows(static_cast<size_t>(videoDims[0]));
    if (!rows.empty()) {
      // Our memory type: HDF5 matches members by name, so this also reads files whose member
      // order or padding differs.
      h5::Datatype type = videoType();
      h5::check(H5Dread(videos.id(), type.id(), H5S_ALL, H5S_ALL, H5P_DEFAULT, rows.data()),
                "H5Dread", "/videos");
    }
    summary.videos.reserve(rows.size());
    int64_t referencedEnd = 0;
    for (const VideoRow& row : rows) {
      if (row.status < 0 || row.status > static_cast<int8_t>(VideoStatus::Failed)) {
        throw notOurs("video '" + readFixed(row.videoId) + "' has unknown status " +
                      std::to_string(row.status));
      }
      // Written so that no sum can overflow: 0 <= first_row <= rows - segment_count.
      if (row.segmentCount < 0 || (row.segmentCount > 0 && (row.firstRow < 0 || row.segmentCount > summary.featureRows ||
                                                            row.firstRow > summary.featureRows - row.segmentCount))) {
        throw notOurs("video '" + readFixed(row.videoId) + "' has rows " + std::to_string(row.firstRow) + "+" +
                      std::to_string(row.segmentCount) + ", outside /features (" +
                      std::to_string(summary.featureRows) + " rows)");
      }
      if (row.segmentCount > 0) referencedEnd = std::max(referencedEnd, row.firstRow + row.segmentCount);
      summary.videos.push_back(storedVideo(row));
    }
    // (A crash between extending /features and /segments may leave them of different lengths
    // past the referenced rows; a resume cuts both back.)
    if (segmentDims[0] < static_cast<hsize_t>(referencedEnd)) {
      throw notOurs("/segments has " + std::to_string(segmentDims[0]) + " rows but the videos use " +
                    std::to_string(referencedEnd));
    }
    checkStored(features, "/features", static_cast<hsize_t>(referencedEnd));
    checkStored(segments, "/segments", static_cast<hsize_t>(referencedEnd));
    if (h5::linkExists(root, "/failures")) {
      auto failures =
          h5::Dataset::take(H5Dopen2(root, "failures", H5P_DEFAULT), "H5Dopen2", "/failures");
      std::vector<hsize_t> failureDims = h5::dimsOf(failures, "/failures");
      if (failureDims.size() != 1 || typeClassOf(failures, "/failures").first != H5T_COMPOUND) {
        throw notOurs("/failures is not a table");
      }
      checkStored(failures, "/failures", failureDims[0]);
      std::vector<FailureRow> frows(static_cast<size_t>(failureDims[0]));
      if (!frows.empty()) {
        h5::Datatype type = failureType();
        h5::check(H5Dread(failures.id(), type.id(), H5S_ALL, H5S_ALL, H5P_DEFAULT, frows.data()),
                  "H5Dread", "/failures");
      }
      for (const auto& f : frows) {
        summary.failures.push_back({f.videoRow, readFixed(f.stage), readFixed(f.message), f.rank});
      }
    }
    return summary;
  } catch (const InputError&) {
    throw;
  } catch (const Error& e) {
    throw InputError(path, std::string("cannot read as a vidfeat output file: ") + e.what());
  }
}

struct StoreReader::Impl {
  std::string path;
  StoreSummary summary;
  h5::File file;
  h5::Dataset features;
  h5::Dataset segments;
  h5::Datatype segmentType = vidfeat::segmentType();
};

StoreReader::StoreReader(const std::string& path) : impl_(std::make_unique<Impl>()) {
  impl_->path = path;
  impl_->summary = readStoreSummary(path);  // validates the file
  h5::QuietErrors quiet;
  impl_->file = h5::File::take(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), "H5Fopen", path);
  impl_->features = h5::Dataset::take(H5Dopen2(impl_->file.id(), "features", H5P_DEFAULT), "H5Dopen2", "/features");
  impl_->segments = h5::Dataset::take(H5Dopen2(impl_->file.id(), "segments", H5P_DEFAULT), "H5Dopen2", "/segments");
}

StoreReader::~StoreReader() {
  if (!impl_) return;
  h5::QuietErrors quiet;
  impl_->segments.reset();
  impl_->features.reset();
  impl_->file.reset();
}

const StoreSummary& StoreReader::summary() const { return impl_->summary; }

void StoreReader::readRows(int64_t first, int64_t count, std::vector<SegmentRecord>& segments,
                           std::vector<float>& features) const {
  const int64_t dim = impl_->summary.meta.featureDim * impl_->summary.meta.crops;
  if (first < 0 || count < 0 || first > impl_->summary.featureRows - count) {
    throw InputError(impl_->path, "rows " + std::to_string(first) + "+" + std::to_string(count) +
                                      " are outside /features (" + std::to_string(impl_->summary.featureRows) + " rows)");
  }
  segments.clear();
  features.assign(size_t(count * dim), 0.0f);
  if (count == 0) return;
  h5::QuietErrors quiet;
  std::vector<SegmentRow> rows(static_cast<size_t>(count));
  {
    h5::Dataspace fileSpace = h5::spaceOf(impl_->segments, "/segments");
    hsize_t start = hsize_t(first), n = hsize_t(count);
    h5::check(H5Sselect_hyperslab(fileSpace.id(), H5S_SELECT_SET, &start, nullptr, &n, nullptr),
              "H5Sselect_hyperslab", "/segments");
    h5::Dataspace memSpace = h5::simpleSpace({n});
    h5::check(H5Dread(impl_->segments.id(), impl_->segmentType.id(), memSpace.id(), fileSpace.id(),
                      H5P_DEFAULT, rows.data()),
              "H5Dread", "/segments");
  }
  {
    h5::Dataspace fileSpace = h5::spaceOf(impl_->features, "/features");
    std::vector<hsize_t> start{hsize_t(first)}, n{hsize_t(count)};
    if (impl_->summary.meta.crops > 1) {
      start.push_back(0);
      n.push_back(hsize_t(impl_->summary.meta.crops));
    }
    start.push_back(0);
    n.push_back(hsize_t(impl_->summary.meta.featureDim));
    h5::check(H5Sselect_hyperslab(fileSpace.id(), H5S_SELECT_SET, start.data(), nullptr, n.data(), nullptr),
              "H5Sselect_hyperslab", "/features");
    h5::Dataspace memSpace = h5::simpleSpace(n);
    h5::check(H5Dread(impl_->features.id(), H5T_NATIVE_FLOAT, memSpace.id(), fileSpace.id(),
                      H5P_DEFAULT, features.data()),
              "H5Dread", "/features");
  }
  for (const auto& r : rows) {
    SegmentRecord seg;
    seg.index = r.segment;
    seg.firstFrame = r.firstFrame;
    seg.lastFrame = r.lastFrame;
    seg.startTime = r.startTime;
    seg.endTime = r.endTime;
    seg.paddedFrames = r.paddedFrames;
    segments.push_back(seg);
  }
}

}  // namespace vidfeat
