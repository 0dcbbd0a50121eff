#pragma once
// Internal to src/store: the state of an open FeatureStore, shared by the lifecycle
// (feature_store.cpp: create, resume, addVideos, close) and the parallel writer (wave_writer.cpp).
#include <spdlog/spdlog.h>

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "hdf5.h"
#include "store_schema.h"
#include "vidfeat/common/error.h"
#include "vidfeat/store/feature_store.h"

namespace vidfeat {

struct FeatureStore::Impl {
  MPI_Comm comm = MPI_COMM_NULL;
  int rank = 0;
  int size = 1;
  std::string path;
  int64_t dim = 0;                // floats per /features row (crops x feature_dim)
  std::vector<hsize_t> rowShape;  // shape of one /features row: {D} or {crops, D}
  int64_t featureRows = 0;        // current extent of /features and /segments, equal on all ranks
  int64_t videoRows = 0;          // current extent of /videos, equal on all ranks
  bool lastWriteCollective = true;

  h5::Datatype segmentType = vidfeat::segmentType();
  h5::Datatype videoType = vidfeat::videoType();
  h5::Datatype manifestType = vidfeat::manifestType();
  h5::Datatype failureType = vidfeat::failureType();
  int64_t failureRows = 0;  // current extent of /failures
  h5::TransferProps collective;

  // The datasets are closed before the file (close(), ~Impl): with the MPI-IO driver H5Fclose
  // refuses to close a file whose objects are still open.
  h5::File file;
  h5::Dataset features;
  h5::Dataset segments;
  h5::Dataset videos;
  h5::Dataset manifest;
  h5::Dataset failures;

  Impl() { collective.add(h5::CollectiveTransfer{}); }

  ~Impl() {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (finalized) {
      // Parallel HDF5 shuts itself down inside MPI_Finalize (closing the file); our ids are gone.
      for (auto* handle : {&failures, &manifest, &videos, &segments, &features}) handle->release();
      file.release();
      segmentType.release();
      videoType.release();
      manifestType.release();
      failureType.release();
      collective.release();
      return;
    }
    // Everything closed here, inside the quiet scope, not by the member destructors after it.
    h5::QuietErrors quiet;
    failures.reset();
    manifest.reset();
    videos.reset();
    segments.reset();
    features.reset();
    file.reset();
    segmentType.reset();
    videoType.reset();
    manifestType.reset();
    failureType.reset();
    collective.reset();
  }

  void requireOpen(const char* what) const {
    if (!file.valid()) throw Error(std::string("FeatureStore::") + what + ": the store is closed");
  }

  // Collective. Writes rows [offset, offset + count) of a 1-D table or of the 2-D /features
  // (rowDims: the shape of one row) from `buffer`. A rank with count == 0 takes part with an empty
  // selection, which collective I/O requires.
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

  // Collective. Reads rows [0, rows) of a 1-D table into `buffer` (every rank all of them).
  void readAll(const h5::Dataset& dataset, hid_t memType, int64_t rows, void* buffer,
               const char* what) {
    h5::Dataspace fileSpace = h5::spaceOf(dataset, what);
    h5::Dataspace memSpace = h5::simpleSpace({static_cast<hsize_t>(std::max<int64_t>(rows, 1))});
    if (rows == 0) {
      h5::check(H5Sselect_none(fileSpace.id()), "H5Sselect_none", what);
      h5::check(H5Sselect_none(memSpace.id()), "H5Sselect_none", what);
    }
    h5::check(
        H5Dread(dataset.id(), memType, memSpace.id(), fileSpace.id(), collective.id(), buffer),
        "H5Dread", what);
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

// A moved-from store has no state; using it is a programming error, reported rather than crashing.
template <class ImplPtr>
auto& stateOf(const ImplPtr& impl, const char* what) {
  if (!impl) throw Error(std::string("FeatureStore::") + what + ": store was moved from");
  return *impl;
}

}  // namespace vidfeat
