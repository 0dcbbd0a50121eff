#include "vidfeat/store/export.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <utility>

#include "hdf5.h"
#include "vidfeat/common/error.h"
#include "vidfeat/store/journal.h"

namespace vidfeat {

namespace fs = std::filesystem;

namespace {
// Bounds of the attributes export shapes its arrays by (far above any model: --crops is 1 or 3,
// the widest feature is SlowFast's 2304).
constexpr int64_t kMaxExportCrops = 64;
constexpr int64_t kMaxExportFeatureDim = 1 << 20;
}  // namespace

Located locateSegments(const StoredVideo& video, const std::vector<SegmentRecord>& segments,
                       double start, double end) {
  if (end < start) throw Error("locate: --end must not be before --start");
  Located out;
  for (const auto& s : segments) {
    if (s.endTime > start && s.startTime <= end) out.segments.push_back(s.index);
  }
  const double n = double(segments.size());
  const double l = double(video.decodedFrames);
  if (l > 0) {
    // The seed maps a time to a feature index by the nominal frame rate alone: t * n * fps / l.
    // It ignores the stream's start offset, the padded tail and variable frame rates, which is
    // where it and the stored times disagree.
    out.seedTau0 = start * n * video.fps / l;
    out.seedTau1 = end * n * video.fps / l;
  }
  return out;
}

std::string exportPathFor(const std::string& dir, const std::string& videoId,
                          const std::string& extension) {
  if (videoId.empty() || videoId.find('\0') != std::string::npos) {
    throw Error("export: video id '" + videoId + "' cannot be a file name");
  }
  fs::path rel(videoId + extension);
  if (rel.is_absolute() || rel.has_root_name() || rel.has_root_directory()) {
    throw Error("export: video id '" + videoId +
                "' is an absolute path; refusing to write outside " + dir);
  }
  for (const auto& part : rel) {
    if (part == ".." || part == ".") {
      throw Error("export: video id '" + videoId + "' contains '" + part.string() +
                  "'; refusing to write outside " + dir);
    }
  }
  return (fs::path(dir) / rel).string();
}

std::string npyPathFor(const std::string& dir, const std::string& videoId) {
  return exportPathFor(dir, videoId, ".npy");
}

namespace {

// The .npy v1.0 header of an array: magic, version, length, the dict padded with spaces to a
// multiple of 64 bytes, ending in a newline.
std::string npyHeader(const std::string& descr, const std::vector<int64_t>& shape) {
  std::string dims;
  for (int64_t d : shape) dims += std::to_string(d) + ", ";
  std::string dict =
      "{'descr': '" + descr + "', 'fortran_order': False, 'shape': (" + dims + "), }";
  size_t total = 10 + dict.size() + 1;
  dict.append((64 - total % 64) % 64, ' ');
  dict += '\n';
  if (dict.size() > 0xffff)
    throw Error("export: array of rank " + std::to_string(shape.size()) +
                " has too long an .npy header");
  std::string out = {'\x93', 'N', 'U', 'M', 'P', 'Y', 1, 0};
  out += char(dict.size() & 0xff);
  out += char(dict.size() >> 8);
  return out + dict;
}

void writeOrThrow(std::ofstream& out, const void* data, size_t bytes, const std::string& path) {
  out.write(static_cast<const char*>(data), std::streamsize(bytes));
  if (!out) throw InputError(path, "write failed");
}

void put16(std::string& b, uint32_t v) {
  b += char(v & 0xff);
  b += char((v >> 8) & 0xff);
}
void put32(std::string& b, uint32_t v) {
  put16(b, v & 0xffff);
  put16(b, v >> 16);
}

// Writes to `path`.part and renames it over `path` once complete: an interrupted export never
// leaves a truncated file under the final name.
class PartFile {
 public:
  explicit PartFile(std::string path) : path_(std::move(path)), part_(path_ + ".part") {
    out_.open(part_, std::ios::binary | std::ios::trunc);
    if (!out_) throw InputError(path_, "cannot create file");
  }
  ~PartFile() {
    if (!done_) {
      out_.close();
      std::error_code ec;
      fs::remove(part_, ec);
    }
  }
  PartFile(const PartFile&) = delete;
  PartFile& operator=(const PartFile&) = delete;
  std::ofstream& out() { return out_; }
  const std::string& path() const { return path_; }
  void commit() {
    out_.close();
    if (!out_) throw InputError(path_, "write failed");
    fs::rename(part_, path_);
    done_ = true;
  }

 private:
  std::string path_, part_;
  std::ofstream out_;
  bool done_ = false;
};

}  // namespace

void writeNpy(const std::string& path, const float* data, const std::vector<int64_t>& shape) {
  static_assert(sizeof(float) == 4, "float32");
  int64_t count = 1;
  for (int64_t d : shape) count *= d;
  const std::string header = npyHeader("<f4", shape);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw InputError(path, "cannot create file");
  writeOrThrow(out, header.data(), header.size(), path);
  writeOrThrow(out, data, sizeof(float) * size_t(count), path);
}

void writeNpz(const std::string& path, const std::vector<NpyArray>& arrays) {
  constexpr uint64_t kZipLimit = 0xffffffffull;              // without zip64
  constexpr uint32_t kDosDate = (0u << 9) | (1u << 5) | 1u;  // 1980-01-01, zip's epoch
  PartFile file(path);
  std::string central;
  uint64_t offset = 0;
  for (const NpyArray& a : arrays) {
    const std::string header = npyHeader(a.descr, a.shape);
    const std::string name = a.name + ".npy";
    const uint64_t size = header.size() + a.bytes;
    if (size > kZipLimit || offset + size + 30 + name.size() > kZipLimit) {
      throw InputError(path, "array '" + a.name +
                                 "' takes the .npz past 4 GiB, which needs zip64 (not "
                                 "written); export fewer videos per file or use --h5-per-video");
    }
    const uint32_t crc = crc32(a.data, a.bytes, crc32(header.data(), header.size()));
    std::string local;
    put32(local, 0x04034b50);  // local file header
    put16(local, 20);          // version needed: 2.0
    put16(local, 0);           // flags
    put16(local, 0);           // method: stored
    put16(local, 0);           // time
    put16(local, kDosDate);
    put32(local, crc);
    put32(local, uint32_t(size));  // compressed = uncompressed
    put32(local, uint32_t(size));
    put16(local, uint32_t(name.size()));
    put16(local, 0);  // extra
    local += name;
    writeOrThrow(file.out(), local.data(), local.size(), path);
    writeOrThrow(file.out(), header.data(), header.size(), path);
    if (a.bytes > 0) writeOrThrow(file.out(), a.data, a.bytes, path);

    put32(central, 0x02014b50);  // central directory header
    put16(central, 20);          // made by: 2.0, MS-DOS
    put16(central, 20);
    put16(central, 0);
    put16(central, 0);
    put16(central, 0);
    put16(central, kDosDate);
    put32(central, crc);
    put32(central, uint32_t(size));
    put32(central, uint32_t(size));
    put16(central, uint32_t(name.size()));
    put16(central, 0);  // extra
    put16(central, 0);  // comment
    put16(central, 0);  // disk
    put16(central, 0);  // internal attributes
    put32(central, 0);  // external attributes
    put32(central, uint32_t(offset));
    central += name;
    offset += local.size() + size;
  }
  if (offset + central.size() > kZipLimit || arrays.size() > 0xffff) {
    throw InputError(path,
                     "the .npz passes 4 GiB or 65535 entries, which needs zip64 (not written)");
  }
  std::string end;
  put32(end, 0x06054b50);  // end of central directory
  put16(end, 0);
  put16(end, 0);
  put16(end, uint32_t(arrays.size()));
  put16(end, uint32_t(arrays.size()));
  put32(end, uint32_t(central.size()));
  put32(end, uint32_t(offset));
  put16(end, 0);  // comment
  writeOrThrow(file.out(), central.data(), central.size(), path);
  writeOrThrow(file.out(), end.data(), end.size(), path);
  file.commit();
}

namespace {

// The features an export joins, by model name: a file of one model holds one source (its whole
// row); a file of several (model_parts) holds one per model, its columns of the row.
struct FeatureSource {
  std::string name;
  int64_t dim = 0;
  int64_t column = 0;  // first column of the stored row
};

std::vector<FeatureSource> resolveSources(const std::string& file, const StoreSummary& s,
                                          const std::vector<std::string>& names) {
  std::vector<FeatureSource> held;
  if (s.meta.parts.empty()) {
    held.push_back({s.meta.modelName, s.meta.featureDim, 0});
  } else {
    int64_t column = 0;
    for (const auto& [name, dim] : s.meta.parts) {
      held.push_back({name, dim, column});
      column += dim;
    }
  }
  if (names.empty()) {
    if (held.size() == 1) return held;
    return {{s.meta.modelName, s.meta.featureDim, 0}};  // the whole row: every model, in order
  }
  std::vector<FeatureSource> out;
  std::set<std::string> seen;
  std::vector<std::string> missing;
  for (const auto& name : names) {
    if (!seen.insert(name).second) throw Error("export: --concat names '" + name + "' twice");
    auto it = std::find_if(held.begin(), held.end(),
                           [&](const FeatureSource& h) { return h.name == name; });
    if (it != held.end()) {
      out.push_back(*it);
    } else {
      missing.push_back(name);
    }
  }
  if (!missing.empty()) {
    std::string list, have;
    for (const auto& m : missing) list += (list.empty() ? "'" : ", '") + m + "'";
    for (const auto& h : held) have += (have.empty() ? "'" : ", '") + h.name + "'";
    throw Error("export --concat: " + file + " holds the features of " + have + "; " + list +
                (missing.size() > 1 ? " are" : " is") + " not in it");
  }
  return out;
}

// The HDF5 name of a video id in the per-video file: its path components (ids were already
// checked by exportPathFor), "a//b" and "a/b" alike.
std::string h5NameFor(const std::string& videoId) {
  std::string name;
  for (const auto& part : fs::path(videoId)) {
    if (part.empty()) continue;
    name += (name.empty() ? "" : "/") + part.string();
  }
  return name;
}

// The one-dataset-per-video HDF5 file, written to FILE.part and renamed when complete.
class PerVideoH5 {
 public:
  PerVideoH5(const std::string& path, const std::string& source, const StoreSummary& s,
             const std::vector<FeatureSource>& sources)
      : path_(path), part_(path + ".part") {
    h5::QuietErrors quiet;
    h5::FileAccessProps fapl;
    // The 1.8 file format or later: attributes over 64 KiB (the times of a long video) live in
    // dense attribute storage, which the 1.6 format lacks.
    h5::check(H5Pset_libver_bounds(fapl.id(), H5F_LIBVER_V18, H5F_LIBVER_LATEST),
              "H5Pset_libver_bounds", part_);
    file_ = h5::File::take(H5Fcreate(part_.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.id()),
                           "H5Fcreate", part_);
    std::string names, descriptions;
    int64_t dim = 0;
    for (const auto& src : sources) {
      names += (names.empty() ? "" : ",") + src.name;
      dim += src.dim;
    }
    h5::writeAttribute(file_.id(), "source", source);
    h5::writeAttribute(file_.id(), "models", names);
    h5::writeAttribute(file_.id(), "feature_name", s.meta.featureName);
    h5::writeAttribute(file_.id(), "feature_dim", dim);
    h5::writeAttribute(file_.id(), "crops", int64_t(s.meta.crops));
  }
  ~PerVideoH5() {
    if (!done_) {
      file_.reset();
      std::error_code ec;
      fs::remove(part_, ec);
    }
  }
  PerVideoH5(const PerVideoH5&) = delete;
  PerVideoH5& operator=(const PerVideoH5&) = delete;

  void write(const std::string& name, const std::vector<float>& data,
             const std::vector<int64_t>& shape, const std::vector<double>& start,
             const std::vector<double>& end) {
    h5::QuietErrors quiet;
    // Nested ids: the groups on the way are created with the dataset.
    auto links = h5::Handle<h5::PropertyListTraits>::take(H5Pcreate(H5P_LINK_CREATE),
                                                          "H5Pcreate(H5P_LINK_CREATE)");
    h5::check(H5Pset_create_intermediate_group(links.id(), 1), "H5Pset_create_intermediate_group");
    std::vector<hsize_t> dims(shape.begin(), shape.end());
    h5::Dataspace space = h5::simpleSpace(dims);
    h5::Dataset ds = h5::Dataset::take(H5Dcreate2(file_.id(), name.c_str(), H5T_IEEE_F32LE,
                                                  space.id(), links.id(), H5P_DEFAULT, H5P_DEFAULT),
                                       "H5Dcreate2", path_ + ":" + name);
    const float dummy = 0;
    h5::check(H5Dwrite(ds.id(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT,
                       data.empty() ? &dummy : data.data()),
              "H5Dwrite", path_ + ":" + name);
    writeTimes(ds, "start_time", start);
    writeTimes(ds, "end_time", end);
  }

  void commit() {
    file_.close();
    fs::rename(part_, path_);
    done_ = true;
  }

 private:
  void writeTimes(const h5::Dataset& ds, const char* attr, const std::vector<double>& times) {
    h5::Dataspace space = h5::simpleSpace({hsize_t(times.size())});
    h5::Attribute a = h5::Attribute::take(
        H5Acreate2(ds.id(), attr, H5T_IEEE_F64LE, space.id(), H5P_DEFAULT, H5P_DEFAULT),
        "H5Acreate2", attr);
    const double dummy = 0;
    h5::check(H5Awrite(a.id(), H5T_NATIVE_DOUBLE, times.empty() ? &dummy : times.data()),
              "H5Awrite", attr);
  }

  std::string path_, part_;
  h5::File file_;
  bool done_ = false;
};

}  // namespace

int64_t exportFeatures(const std::string& file, const ExportRequest& request) {
  if (request.npyDir.empty() && request.npzDir.empty() && request.h5PerVideo.empty()) {
    throw Error("export: give --npy DIR, --npz DIR and/or --h5-per-video FILE");
  }
  StoreReader reader(file);
  const StoreSummary& s = reader.summary();
  // The attributes the arrays are shaped by, range-checked (crops = 0 reached HDF5 as a
  // "no output buffer" error).
  if (s.meta.crops < 1 || s.meta.crops > kMaxExportCrops) {
    throw InputError(file, "attribute crops = " + std::to_string(s.meta.crops) +
                               " is out of range (1.." + std::to_string(kMaxExportCrops) + ")");
  }
  if (s.meta.featureDim < 1 || s.meta.featureDim > kMaxExportFeatureDim) {
    throw InputError(file, "attribute feature_dim = " + std::to_string(s.meta.featureDim) +
                               " is out of range (1.." + std::to_string(kMaxExportFeatureDim) +
                               ")");
  }
  const std::vector<FeatureSource> sources = resolveSources(file, s, request.concat);
  std::set<std::string> wanted(request.ids.begin(), request.ids.end());
  std::set<std::string> found;
  // Check every name before writing anything: inside the folder, and no two ids on one file or
  // HDF5 name once normalised ("x/y" and "x//y"; "a/./b" is refused by exportPathFor) -- the
  // second would silently overwrite the first -- and no id both a dataset and a group ("a" and
  // "a/b") in the per-video HDF5 file.
  std::vector<const StoredVideo*> chosen;
  std::map<std::string, std::string> byName;  // normalised path or HDF5 name -> the id writing it
  std::map<std::string, std::string> groups;  // HDF5 groups the names need -> an id needing it
  auto claim = [&](const std::string& name, const std::string& id) {
    auto [it, added] = byName.emplace(name, id);
    if (!added) {
      throw Error("export: video ids '" + it->second + "' and '" + id + "' are both written to " +
                  name +
                  "; refusing to overwrite one with the other (export them to separate folders "
                  "with --ids)");
    }
  };
  for (const auto& v : s.videos) {
    if (!wanted.empty() && !wanted.count(v.videoId)) continue;
    found.insert(v.videoId);
    if (v.status != VideoStatus::Complete) continue;
    if (v.segmentCount < 0) {
      throw InputError(file, "video '" + v.videoId + "' has a negative segment count " +
                                 std::to_string(v.segmentCount));
    }
    for (const auto& [dir, ext] : {std::pair{request.npyDir, ".npy"}, {request.npzDir, ".npz"}}) {
      if (dir.empty()) continue;
      claim(fs::path(exportPathFor(dir, v.videoId, ext)).lexically_normal().string(), v.videoId);
    }
    if (!request.h5PerVideo.empty()) {
      exportPathFor(request.h5PerVideo, v.videoId, "");  // the same refusals
      const std::string name = h5NameFor(v.videoId);
      claim(request.h5PerVideo + ":" + name, v.videoId);
      for (size_t at = name.find('/'); at != std::string::npos; at = name.find('/', at + 1)) {
        groups.emplace(name.substr(0, at), v.videoId);
      }
    }
    chosen.push_back(&v);
  }
  for (const auto& id : wanted) {
    if (!found.count(id)) throw Error("export: video id '" + id + "' is not in " + file);
  }
  for (const auto& [group, id] : groups) {
    auto it = byName.find(request.h5PerVideo + ":" + group);
    if (it != byName.end()) {
      throw Error("export --h5-per-video: video id '" + it->second +
                  "' would be a dataset where video id '" + id +
                  "' needs a group of the same name; export them to separate files with --ids");
    }
  }

  std::unique_ptr<PerVideoH5> h5out;
  if (!request.h5PerVideo.empty()) {
    h5out = std::make_unique<PerVideoH5>(request.h5PerVideo, file, s, sources);
  }
  const int64_t crops = s.meta.crops;
  int64_t joinedDim = 0;
  for (const auto& src : sources) joinedDim += src.dim;
  std::vector<SegmentRecord> segments;
  std::vector<float> features, joined;
  for (const StoredVideo* v : chosen) {
    const int64_t n = v->segmentCount;
    // Each source's columns of the stored rows, joined along D per segment and crop.
    joined.assign(size_t(n * crops * joinedDim), 0.0f);
    reader.readRows(v->firstRow, n, segments, features);
    const int64_t rowDim = s.meta.featureDim;
    if (features.size() != size_t(n) * size_t(crops) * size_t(rowDim) ||
        segments.size() != size_t(n)) {
      throw InputError(file, "video '" + v->videoId + "': " + std::to_string(features.size()) +
                                 " feature values read, " + std::to_string(n) + " segments x " +
                                 std::to_string(crops) + " crops x " + std::to_string(rowDim) +
                                 " expected");
    }
    int64_t offset = 0;
    for (const auto& src : sources) {
      for (int64_t row = 0; row < n * crops; ++row) {
        std::copy_n(features.data() + row * rowDim + src.column, src.dim,
                    joined.data() + row * joinedDim + offset);
      }
      offset += src.dim;
    }
    std::vector<int64_t> shape{n};
    if (crops > 1) shape.push_back(crops);
    shape.push_back(joinedDim);
    std::vector<double> start(static_cast<size_t>(n)), end(static_cast<size_t>(n));
    for (size_t k = 0; k < size_t(n); ++k) {
      start[k] = segments[k].startTime;
      end[k] = segments[k].endTime;
    }
    if (!request.npyDir.empty()) {
      const std::string path = npyPathFor(request.npyDir, v->videoId);
      fs::create_directories(fs::path(path).parent_path());
      writeNpy(path, joined.data(), shape);
    }
    if (!request.npzDir.empty()) {
      const std::string path = exportPathFor(request.npzDir, v->videoId, ".npz");
      fs::create_directories(fs::path(path).parent_path());
      writeNpz(path, {{"features", "<f4", shape, joined.data(), joined.size() * sizeof(float)},
                      {"start_time", "<f8", {n}, start.data(), start.size() * sizeof(double)},
                      {"end_time", "<f8", {n}, end.data(), end.size() * sizeof(double)}});
    }
    if (h5out) h5out->write(h5NameFor(v->videoId), joined, shape, start, end);
  }
  if (h5out) h5out->commit();
  return int64_t(chosen.size());
}

int64_t exportNpy(const std::string& file, const std::string& dir,
                  const std::vector<std::string>& ids) {
  ExportRequest request;
  request.npyDir = dir;
  request.ids = ids;
  return exportFeatures(file, request);
}

}  // namespace vidfeat
