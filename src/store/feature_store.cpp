#include "vidfeat/store/feature_store.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sys/statvfs.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <numeric>
#include <sstream>

#include "hdf5.h"
#include "store_impl.h"
#include "store_schema.h"
#include "vidfeat/common/error.h"
#include "vidfeat/mpi/mpi_session.h"
#include "vidfeat/version.h"

namespace vidfeat {

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
  if (!meta.parts.empty()) h5::writeAttribute(root, "model_parts", modelPartsText(meta.parts));

  const hsize_t rowFloats = static_cast<hsize_t>(impl->dim);
  const hsize_t featureChunkRows = std::max<hsize_t>(1, kChunkBytes / sizeof(float) / rowFloats);
  std::vector<hsize_t> featureDims{0}, featureChunk{featureChunkRows};
  featureDims.insert(featureDims.end(), impl->rowShape.begin(), impl->rowShape.end());
  featureChunk.insert(featureChunk.end(), impl->rowShape.begin(), impl->rowShape.end());
  impl->features = createTable(
      impl->file, "features", H5T_IEEE_F32LE, featureDims, featureChunk,
      meta.crops > 1 ? "feature vectors [segment, crop, D]; row i belongs to /segments[i]"
                     : "one feature vector per segment; row i belongs to /segments[i]");
  impl->segments = createTable(impl->file, "segments", impl->segmentType.id(), {0},
                               {std::max<hsize_t>(1, kChunkBytes / sizeof(SegmentRow))},
                               "where each /features row comes from in its video");
  impl->videos = createTable(impl->file, "videos", impl->videoType.id(), {0},
                             {std::max<hsize_t>(1, kChunkBytes / sizeof(VideoRow))},
                             "one row per manifest video (its id and path: the same row of "
                             "/manifest); its features are rows "
                             "[first_row, first_row + segment_count) of /features");
  impl->manifest = createTable(impl->file, "manifest", impl->manifestType.id(), {0},
                               {std::max<hsize_t>(1, kChunkBytes / sizeof(ManifestRow))},
                               "the id and path of each /videos row, as the manifest gave them",
                               h5::Deflate{kManifestDeflateLevel});
  impl->failures = createTable(impl->file, "failures", impl->failureType.id(), {0},
                               {std::max<hsize_t>(1, kChunkBytes / sizeof(FailureRow))},
                               "one row per failed attempt at a video: where and why it failed");
  h5::check(H5Fflush(root, H5F_SCOPE_GLOBAL), "H5Fflush", path);
  return FeatureStore(std::move(impl));
}

FeatureStore FeatureStore::resume(const std::string& path, MPI_Comm comm, const FileMetadata& meta,
                                  std::vector<StoredVideo>& videos) {
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
      // Format 2 is format 3 of one model (no model_parts): a run of one model continues it.
      if (existing.formatVersion != kFormatVersion &&
          !(existing.formatVersion == kFormatVersion2 && meta.parts.empty())) {
        refusal = "cannot resume " + path + ": it has format_version " + existing.formatVersion +
                  ", written by an older vidfeat, and this one continues only format " +
                  kFormatVersion + " files; convert it with `vidfeat merge " + path +
                  " --output NEW.h5` and resume NEW.h5, or pass --overwrite to start afresh";
      } else if (!diffs.empty()) {
        refusal = path +
                  " was written with different settings, so its features could not be "
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
  impl->features =
      h5::Dataset::take(H5Dopen2(root, "features", H5P_DEFAULT), "H5Dopen2", "/features");
  impl->segments =
      h5::Dataset::take(H5Dopen2(root, "segments", H5P_DEFAULT), "H5Dopen2", "/segments");
  impl->videos = h5::Dataset::take(H5Dopen2(root, "videos", H5P_DEFAULT), "H5Dopen2", "/videos");
  impl->manifest =
      h5::Dataset::take(H5Dopen2(root, "manifest", H5P_DEFAULT), "H5Dopen2", "/manifest");
  impl->failures =
      h5::Dataset::take(H5Dopen2(root, "failures", H5P_DEFAULT), "H5Dopen2", "/failures");
  impl->videoRows = static_cast<int64_t>(h5::dimsOf(impl->videos, "/videos")[0]);
  impl->failureRows = static_cast<int64_t>(h5::dimsOf(impl->failures, "/failures")[0]);
  const int64_t featureExtent = static_cast<int64_t>(h5::dimsOf(impl->features, "/features")[0]);

  // Every rank reads the whole tables (collectively): all need them to plan the remaining work.
  // (readStoreSummary on rank 0 checked that they have the same number of rows.)
  std::vector<VideoRow> rows(static_cast<size_t>(std::max<int64_t>(impl->videoRows, 1)));
  std::vector<ManifestRow> names(rows.size());
  impl->readAll(impl->videos, impl->videoType.id(), impl->videoRows, rows.data(), "/videos");
  impl->readAll(impl->manifest, impl->manifestType.id(), impl->videoRows, names.data(),
                "/manifest");
  std::vector<FailureRow> failureRows(static_cast<size_t>(std::max<int64_t>(impl->failureRows, 1)));
  impl->readAll(impl->failures, impl->failureType.id(), impl->failureRows, failureRows.data(),
                "/failures");
  videos.clear();
  int64_t referencedEnd = 0;
  for (int64_t i = 0; i < impl->videoRows; ++i) {
    const VideoRow& row = rows[static_cast<size_t>(i)];
    videos.push_back(storedVideo(row, names[static_cast<size_t>(i)]));
    if (row.status != static_cast<int8_t>(VideoStatus::Pending) && row.segmentCount > 0) {
      referencedEnd = std::max(referencedEnd, row.firstRow + row.segmentCount);
    }
  }
  for (int64_t i = 0; i < impl->failureRows; ++i) {
    const FailureRow& failure = failureRows[static_cast<size_t>(i)];
    applyFailureMessage(videos, failure.videoRow, readFixed(failure.message));
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
  h5::check(H5Dset_extent(s.manifest.id(), &newRows), "H5Dset_extent", "/manifest");

  // Each rank writes one contiguous share of the list; shares are written in rounds of bounded
  // size, the same number of rounds on every rank.
  const size_t share = (n + s.size - 1) / s.size;
  const size_t begin = std::min(n, share * s.rank);
  const size_t end = std::min(n, begin + share);
  const size_t rounds = (share + kVideoBatchRows - 1) / kVideoBatchRows;
  s.lastWriteCollective = true;
  std::vector<VideoRow> rows;
  std::vector<ManifestRow> names;
  for (size_t round = 0; round < rounds; ++round) {
    const size_t from = std::min(end, begin + round * kVideoBatchRows);
    const size_t to = std::min(end, from + kVideoBatchRows);
    rows.resize(to - from);
    names.resize(to - from);
    if (!rows.empty()) {
      std::memset(static_cast<void*>(rows.data()), 0, rows.size() * sizeof(VideoRow));
      std::memset(static_cast<void*>(names.data()), 0, names.size() * sizeof(ManifestRow));
    }
    for (size_t i = from; i < to; ++i) {
      VideoRow& row = rows[i - from];
      copyFixed(names[i - from].videoId, videos[i].videoId);
      copyFixed(names[i - from].path, videos[i].path);
      row.status = static_cast<int8_t>(VideoStatus::Pending);
      row.firstRow = -1;
    }
    s.writeBlock(s.videos, s.videoType.id(), static_cast<hsize_t>(first) + from, to - from, {},
                 rows.empty() ? nullptr : rows.data(), "/videos");
    s.writeBlock(s.manifest, s.manifestType.id(), static_cast<hsize_t>(first) + from, to - from, {},
                 names.empty() ? nullptr : names.data(), "/manifest");
  }
  h5::check(H5Fflush(s.file.id(), H5F_SCOPE_GLOBAL), "H5Fflush", s.path);
  s.videoRows = static_cast<int64_t>(newRows);
}

void FeatureStore::close() {
  if (!impl_ || !impl_->file.valid()) return;
  Impl& s = *impl_;
  h5::QuietErrors quiet;
  try {
    s.failures.close();
    s.manifest.close();
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
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return char(std::tolower(c)); });
  const fs::path parent =
      fs::path(path).parent_path().empty() ? fs::path(".") : fs::path(path).parent_path();
  struct statvfs vfs {};
  const bool known = ::statvfs(parent.c_str(), &vfs) == 0;
  const double freeBytes = known ? double(vfs.f_bavail) * double(vfs.f_frsize) : -1.0;
  const bool full =
      lower.find("no space") != std::string::npos || lower.find("no_space") != std::string::npos ||
      lower.find("quota") != std::string::npos || (known && freeBytes < double(1 << 20));
  if (full) {
    return "disk full: cannot write " + path +
           (known ? fmt::format(" ({:.0f} bytes free on its file system)", freeBytes)
                  : std::string()) +
           "; free space, then rerun the same command: it resumes from the journals (" + details +
           ")";
  }
  return "I/O error on " + path + ": " + details;
}

int64_t FeatureStore::featureDim() const { return stateOf(impl_, "featureDim").dim; }

bool FeatureStore::lastWriteCollective() const {
  return stateOf(impl_, "lastWriteCollective").lastWriteCollective;
}

}  // namespace vidfeat
