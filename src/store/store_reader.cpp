#include <string>
#include <vector>

#include "hdf5.h"
#include "store_schema.h"
#include "vidfeat/common/error.h"
#include "vidfeat/store/feature_store.h"

namespace vidfeat {

// The serial reader: rows of /segments and /features of a validated file.

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
  impl_->features = h5::Dataset::take(H5Dopen2(impl_->file.id(), "features", H5P_DEFAULT),
                                      "H5Dopen2", "/features");
  impl_->segments = h5::Dataset::take(H5Dopen2(impl_->file.id(), "segments", H5P_DEFAULT),
                                      "H5Dopen2", "/segments");
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
                                      " are outside /features (" +
                                      std::to_string(impl_->summary.featureRows) + " rows)");
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
    h5::check(H5Sselect_hyperslab(fileSpace.id(), H5S_SELECT_SET, start.data(), nullptr, n.data(),
                                  nullptr),
              "H5Sselect_hyperslab", "/features");
    h5::Dataspace memSpace = h5::simpleSpace(n);
    h5::check(H5Dread(impl_->features.id(), H5T_NATIVE_FLOAT, memSpace.id(), fileSpace.id(),
                      H5P_DEFAULT, features.data()),
              "H5Dread", "/features");
  }
  for (const auto& r : rows) segments.push_back(r.segment);
}

std::vector<std::string> StoreSummary::lastFailureStages() const {
  std::vector<std::string> stages(videos.size(), "unknown");
  for (const auto& f : failures) {
    if (f.videoRow >= 0 && size_t(f.videoRow) < stages.size()) stages[size_t(f.videoRow)] = f.stage;
  }
  return stages;
}

}  // namespace vidfeat
