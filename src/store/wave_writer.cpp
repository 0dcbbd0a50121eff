#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>
#include <numeric>
#include <string>
#include <vector>

#include "hdf5.h"
#include "store_impl.h"
#include "store_schema.h"
#include "vidfeat/common/error.h"
#include "vidfeat/mpi/mpi_session.h"
#include "vidfeat/store/feature_store.h"

namespace vidfeat {

// The parallel writer: one wave of results from every rank, written collectively.

void FeatureStore::writeWave(const std::vector<VideoResult>& local) {
  const Impl& s = stateOf(impl_, "writeWave");  // a moved-from store: reported as such
  // One /failures row per failed result, attempted on this rank.
  std::vector<StoredFailure> failures;
  for (const auto& result : local) {
    if (result.status != VideoStatus::Failed) continue;
    failures.push_back({result.videoRow,
                        result.failureStage.empty() ? "unknown" : result.failureStage, result.error,
                        s.rank});
  }
  writeWave(local, failures);
}

void FeatureStore::writeWave(const std::vector<VideoResult>& local,
                             const std::vector<StoredFailure>& failures) {
  stateOf(impl_, "writeWave");  // a moved-from store: reported as such, not as an I/O error
  try {
    writeWaveUnguarded(local, failures);
  } catch (const CollectiveError&) {
    throw;
  } catch (const Error& e) {
    if (std::string(e.what()).rfind("writeWave:", 0) == 0) throw;
    throw Error(describeWriteFailure(impl_->path, e.what()));
  }
}

void FeatureStore::writeWaveUnguarded(const std::vector<VideoResult>& local,
                                      const std::vector<StoredFailure>& failures) {
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
  for (const auto& failure : failures) {
    if (!problem.empty()) break;
    if (failure.videoRow < 0 || failure.videoRow >= s.videoRows) {
      problem = "writeWave: a /failures row names video row " + std::to_string(failure.videoRow) +
                ", not a row of /videos (it has " + std::to_string(s.videoRows) + ")";
    }
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
  int64_t mine[3] = {0, static_cast<int64_t>(local.size()), static_cast<int64_t>(failures.size())};
  for (const auto& result : local) mine[0] += static_cast<int64_t>(result.segments.size());
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
        segments.push_back(SegmentRow{result.videoRow, seg});
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
    for (const auto& failure : failures) {
      FailureRow row;
      std::memset(static_cast<void*>(&row), 0, sizeof row);
      row.videoRow = failure.videoRow;
      row.rank = failure.rank;
      copyFixed(row.stage, truncateUtf8(failure.stage, kStageBytes));
      copyFixed(row.message, truncateUtf8(failure.message, kErrorBytes));
      rows.push_back(row);
    }
    s.writeBlock(s.failures, s.failureType.id(),
                 static_cast<hsize_t>(s.failureRows + failuresBefore), rows.size(), {},
                 rows.empty() ? nullptr : rows.data(), "/failures");
    s.failureRows = static_cast<int64_t>(newRows);
  }

  // The new extents (and their chunks) reach the file before any /videos row points into them: a
  // crash after this flush leaves rows nobody references yet (cut off on resume), never a row
  // referencing rows past the extent on disk. (Correctness after a crash inside a flush comes from
  // the journals, not from this order: docs/DESIGN.md.)
  h5::check(H5Fflush(s.file.id(), H5F_SCOPE_GLOBAL), "H5Fflush", s.path);

  if (totalVideos > 0) {
    // Whole rows, every member from the result: no read first (the video's id and path are in
    // /manifest, written once).
    std::vector<hsize_t> rowIndex;
    rowIndex.reserve(local.size());
    for (const auto& result : local) rowIndex.push_back(static_cast<hsize_t>(result.videoRow));
    std::vector<VideoRow> rows(std::max<size_t>(local.size(), 1));
    std::memset(static_cast<void*>(rows.data()), 0, rows.size() * sizeof(VideoRow));
    auto [fileSpace, memSpace] = s.videoSelection(rowIndex);
    int64_t next = myFirstRow;
    for (size_t i = 0; i < local.size(); ++i) {
      const VideoResult& result = local[i];
      VideoRow& row = rows[i];
      writeOutcome(row, result);
      row.firstRow = next;
      row.segmentCount = static_cast<int64_t>(result.segments.size());
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

}  // namespace vidfeat
