#include "vidfeat/store/export.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "vidfeat/common/error.h"

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

std::string npyPathFor(const std::string& dir, const std::string& videoId) {
  if (videoId.empty() || videoId.find('\0') != std::string::npos) {
    throw Error("export: video id '" + videoId + "' cannot be a file name");
  }
  fs::path rel(videoId + ".npy");
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

void writeNpy(const std::string& path, const float* data, const std::vector<int64_t>& shape) {
  std::string dims;
  int64_t count = 1;
  for (int64_t d : shape) {
    dims += std::to_string(d) + ", ";
    count *= d;
  }
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + dims + "), }";
  // magic(6) + version(2) + header length(2) + header, padded with spaces to a multiple of 64,
  // ending in a newline.
  size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header += '\n';
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw InputError(path, "cannot create file");
  const char magic[8] = {'\x93', 'N', 'U', 'M', 'P', 'Y', 1, 0};
  out.write(magic, 8);
  uint16_t len = uint16_t(header.size());
  const char lenBytes[2] = {char(len & 0xff), char(len >> 8)};
  out.write(lenBytes, 2);
  out.write(header.data(), std::streamsize(header.size()));
  static_assert(sizeof(float) == 4, "float32");
  out.write(reinterpret_cast<const char*>(data), std::streamsize(sizeof(float) * size_t(count)));
  if (!out) throw InputError(path, "write failed");
}

int64_t exportNpy(const std::string& file, const std::string& dir,
                  const std::vector<std::string>& ids) {
  StoreReader reader(file);
  const StoreSummary& s = reader.summary();
  // The attributes the .npy shapes come from, range-checked (crops = 0 reached HDF5 as a
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
  std::set<std::string> wanted(ids.begin(), ids.end());
  std::set<std::string> found;
  // Check every name before writing anything: inside the folder, and no two ids on one file
  // once the path is normalised ("x/y" and "x//y", "a/./b" is refused above) -- the second
  // would silently overwrite the first.
  std::vector<const StoredVideo*> chosen;
  std::map<std::string, std::string> byPath;  // normalised .npy path -> the id writing it
  for (const auto& v : s.videos) {
    if (!wanted.empty() && !wanted.count(v.videoId)) continue;
    found.insert(v.videoId);
    if (v.status != VideoStatus::Complete) continue;
    if (v.segmentCount < 0) {
      throw InputError(file, "video '" + v.videoId + "' has a negative segment count " +
                                 std::to_string(v.segmentCount));
    }
    const std::string normal = fs::path(npyPathFor(dir, v.videoId)).lexically_normal().string();
    auto [it, added] = byPath.emplace(normal, v.videoId);
    if (!added) {
      throw Error("export: video ids '" + it->second + "' and '" + v.videoId +
                  "' are both written to " + normal +
                  "; refusing to overwrite one with the other (export them to separate folders "
                  "with --ids)");
    }
    chosen.push_back(&v);
  }
  for (const auto& id : wanted) {
    if (!found.count(id)) throw Error("export: video id '" + id + "' is not in " + file);
  }
  std::vector<SegmentRecord> segments;
  std::vector<float> features;
  for (const StoredVideo* v : chosen) {
    const std::string path = npyPathFor(dir, v->videoId);
    fs::create_directories(fs::path(path).parent_path());
    reader.readRows(v->firstRow, v->segmentCount, segments, features);
    std::vector<int64_t> shape{v->segmentCount};
    if (s.meta.crops > 1) shape.push_back(s.meta.crops);
    shape.push_back(s.meta.featureDim);
    if (features.size() !=
        size_t(v->segmentCount) * size_t(s.meta.crops) * size_t(s.meta.featureDim)) {
      throw InputError(file, "video '" + v->videoId + "': " + std::to_string(features.size()) +
                                 " feature values read, " + std::to_string(v->segmentCount) +
                                 " segments x " + std::to_string(s.meta.crops) + " crops x " +
                                 std::to_string(s.meta.featureDim) + " expected");
    }
    writeNpy(path, features.data(), shape);
  }
  return int64_t(chosen.size());
}

}  // namespace vidfeat
