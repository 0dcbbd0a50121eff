#include <algorithm>
#include <cstring>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "hdf5.h"
#include "store_schema.h"
#include "vidfeat/common/error.h"
#include "vidfeat/store/feature_store.h"

namespace vidfeat {

// Validation of an untrusted file: every shape, type and row reference is checked before anything
// is sized by it (readStoreSummary, the entry of resume, merge, inspect and the reader).

namespace {

// Validation of untrusted outputs (inspect, merge, export, resume): bounds of the root attributes
// that size memory (far above any model: --crops is 1 or 3, SlowFast's feature_dim 2304; the same
// bounds as export's).
constexpr int64_t kMaxStoredCrops = 64;
constexpr int64_t kMaxStoredFeatureDim = int64_t(1) << 20;

// "" when the attributes are in range, else why not.
std::string attributesOutOfRange(const FileMetadata& meta) {
  if (meta.crops < 1 || meta.crops > kMaxStoredCrops) {
    return "attribute crops = " + std::to_string(meta.crops) + " is out of range (1.." +
           std::to_string(kMaxStoredCrops) + ")";
  }
  if (meta.featureDim < 1 || meta.featureDim > kMaxStoredFeatureDim) {
    return "attribute feature_dim = " + std::to_string(meta.featureDim) + " is out of range (1.." +
           std::to_string(kMaxStoredFeatureDim) + ")";
  }
  if (!meta.parts.empty()) {
    int64_t sum = 0;
    for (const auto& part : meta.parts) sum += std::min<int64_t>(part.second, kMaxStoredFeatureDim);
    if (sum != meta.featureDim || meta.parts.size() < 2) {
      return "attribute model_parts '" + modelPartsText(meta.parts) +
             "' does not split feature_dim " + std::to_string(meta.featureDim) +
             " into two or more models";
    }
  }
  return "";
}

// "" when `dataset` has no filter pipeline, else the filters' names. vidfeat writes its tables
// unfiltered, so an allocated chunk costs its full size in the file and the rows a table claims
// are bounded by the file's size (storedRowsBound); a compressed chunk of 300k rows costs a few
// KB, so a filtered table is refused before anything is read from it.
std::string filtersOf(const h5::Dataset& dataset, const char* what) {
  auto dcpl = h5::Handle<h5::PropertyListTraits>::take(H5Dget_create_plist(dataset.id()),
                                                       "H5Dget_create_plist", what);
  const int n = H5Pget_nfilters(dcpl.id());
  std::string names;
  for (int i = 0; i < n; ++i) {
    unsigned flags = 0, config = 0;
    size_t nValues = 0;
    char name[64] = {0};
    const H5Z_filter_t id = H5Pget_filter2(dcpl.id(), unsigned(i), &flags, &nValues, nullptr,
                                           sizeof name, name, &config);
    names += (names.empty() ? "" : ", ") +
             (name[0] ? std::string(name) : "filter " + std::to_string(int(id)));
  }
  return n < 0 ? "an unreadable filter pipeline" : names;
}

}  // namespace

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
    const bool format1 = summary.formatVersion == kFormatVersion1;
    if (summary.formatVersion != kFormatVersion && summary.formatVersion != kFormatVersion2 &&
        !format1) {
      throw InputError(path, "format_version " + summary.formatVersion +
                                 " is not supported by this vidfeat (it reads versions " +
                                 kFormatVersion1 + " to " + kFormatVersion + ")");
    }
    if (!format1 && !h5::linkExists(root, "/manifest")) throw notOurs("no /manifest dataset");
    summary.vidfeatVersion = h5::readStringAttribute(root, "vidfeat_version");
    summary.meta = readMetadata(root);
    if (std::string why = attributesOutOfRange(summary.meta); !why.empty()) throw notOurs(why);
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
      if (std::string filters = filtersOf(d, what); !filters.empty()) {
        throw notOurs(std::string(what) + " is stored through a filter pipeline (" + filters +
                      "); vidfeat writes its tables unfiltered, and a filtered table's rows are "
                      "not bounded by the file's size");
      }
      const hsize_t stored = h5::storedRowsBound(d, what);
      if (rowsNeeded > stored) {
        throw notOurs(std::string(what) + " claims " + std::to_string(rowsNeeded) +
                      " rows but stores at most " + std::to_string(stored));
      }
    };

    auto features =
        h5::Dataset::take(H5Dopen2(root, "features", H5P_DEFAULT), "H5Dopen2", "/features");
    std::vector<hsize_t> featureDims = h5::dimsOf(features, "/features");
    if (featureDims.size() != (summary.meta.crops > 1 ? 3u : 2u))
      throw notOurs("/features has an unexpected rank");
    if (featureDims.back() != static_cast<hsize_t>(summary.meta.featureDim) ||
        (summary.meta.crops > 1 && featureDims[1] != static_cast<hsize_t>(summary.meta.crops))) {
      std::string shape;
      for (size_t i = 1; i < featureDims.size(); ++i)
        shape += (i > 1 ? "x" : "") + std::to_string(featureDims[i]);
      throw notOurs("/features rows are " + shape + " wide but feature_dim is " +
                    std::to_string(summary.meta.featureDim) + " (crops " +
                    std::to_string(summary.meta.crops) + ")");
    }
    if (typeClassOf(features, "/features") != std::make_pair(H5T_FLOAT, sizeof(float))) {
      throw notOurs("/features is not float32");
    }
    summary.featureRows = static_cast<int64_t>(featureDims[0]);

    auto segments =
        h5::Dataset::take(H5Dopen2(root, "segments", H5P_DEFAULT), "H5Dopen2", "/segments");
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
    std::vector<ManifestRow> names(rows.size());
    std::vector<VideoErrorRow> errors(format1 ? rows.size() : 0);
    if (!rows.empty()) {
      // Our memory types: HDF5 matches members by name, so this also reads files whose member
      // order or padding differs, and format 1's /videos (which held the strings too).
      h5::Datatype type = videoType();
      h5::check(H5Dread(videos.id(), type.id(), H5S_ALL, H5S_ALL, H5P_DEFAULT, rows.data()),
                "H5Dread", "/videos");
      h5::Datatype nameType = manifestType();
      if (format1) {
        h5::Datatype errorType = videoErrorType();
        h5::check(H5Dread(videos.id(), nameType.id(), H5S_ALL, H5S_ALL, H5P_DEFAULT, names.data()),
                  "H5Dread", "/videos");
        h5::check(
            H5Dread(videos.id(), errorType.id(), H5S_ALL, H5S_ALL, H5P_DEFAULT, errors.data()),
            "H5Dread", "/videos");
      } else {
        // Compressed, so its extent is not bounded by its storage: it must have /videos' rows
        // (which are), and its chunks are inflated with a bound (h5::readBoundedTable).
        auto manifest =
            h5::Dataset::take(H5Dopen2(root, "manifest", H5P_DEFAULT), "H5Dopen2", "/manifest");
        std::vector<hsize_t> manifestDims = h5::dimsOf(manifest, "/manifest");
        if (manifestDims.size() != 1 || manifestDims[0] != videoDims[0]) {
          throw notOurs("/manifest does not have one row per /videos row");
        }
        std::vector<char> bytes;
        h5::readBoundedTable(manifest, nameType.id(), videoDims[0], 4 * kChunkBytes, bytes,
                             "/manifest");
        std::memcpy(static_cast<void*>(names.data()), bytes.data(), bytes.size());
      }
    }
    summary.videos.reserve(rows.size());
    int64_t referencedEnd = 0;
    for (size_t i = 0; i < rows.size(); ++i) {
      const VideoRow& row = rows[i];
      if (row.status < 0 || row.status > static_cast<int8_t>(VideoStatus::Failed)) {
        throw notOurs("video '" + readFixed(names[i].videoId) + "' has unknown status " +
                      std::to_string(row.status));
      }
      // Written so that no sum can overflow: 0 <= first_row <= rows - segment_count.
      if (row.segmentCount < 0 ||
          (row.segmentCount > 0 && (row.firstRow < 0 || row.segmentCount > summary.featureRows ||
                                    row.firstRow > summary.featureRows - row.segmentCount))) {
        throw notOurs("video '" + readFixed(names[i].videoId) + "' has rows " +
                      std::to_string(row.firstRow) + "+" + std::to_string(row.segmentCount) +
                      ", outside /features (" + std::to_string(summary.featureRows) + " rows)");
      }
      if (row.segmentCount > 0)
        referencedEnd = std::max(referencedEnd, row.firstRow + row.segmentCount);
      summary.videos.push_back(storedVideo(row, names[i]));
      if (format1 && row.status == static_cast<int8_t>(VideoStatus::Failed))
        summary.videos.back().error = readFixed(errors[i].error);
    }
    // (A crash between extending /features and /segments may leave them of different lengths
    // past the referenced rows; a resume cuts both back.)
    if (segmentDims[0] < static_cast<hsize_t>(referencedEnd)) {
      throw notOurs("/segments has " + std::to_string(segmentDims[0]) +
                    " rows but the videos use " + std::to_string(referencedEnd));
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
        if (!format1)
          applyFailureMessage(summary.videos, f.videoRow, summary.failures.back().message);
      }
    }
    return summary;
  } catch (const InputError&) {
    throw;
  } catch (const Error& e) {
    throw InputError(path, std::string("cannot read as a vidfeat output file: ") + e.what());
  }
}

}  // namespace vidfeat
