// FeatureStore: the parallel HDF5 output. Store.* are serial (MPI_COMM_SELF); StoreMpi.* use
// MPI_COMM_WORLD and run both as one process (ctest discovery) and as a 3-rank job
// (store_mpi_3ranks). Files are checked twice: through readStoreSummary and raw through the HDF5
// C API, by member name, as an outside reader (h5py) would see them.
#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <regex>
#include <set>
#include <sstream>

#include "store/hdf5.h"  // the store's RAII wrappers (src/store; not a public header)
#include "test_support.h"
#include "vidfeat/common/error.h"
#include "vidfeat/store/feature_store.h"
#include "vidfeat/version.h"

namespace vidfeat {
namespace {

using testing::ScratchDir;
namespace fs = std::filesystem;

constexpr int64_t kDim = 5;

FileMetadata testMeta(int64_t dim = kDim) {
  FileMetadata meta;
  meta.modelName = "SLOW_8x8_R50";
  meta.modelArch = "slow";
  meta.configYaml = "MODEL:\n  ARCH: slow\nDATA:\n  NUM_FRAMES: 8\n";
  meta.checkpointPath = "/ckpt/slow.pyth";
  meta.checkpointSha256 = std::string(64, 'a');
  meta.weights = "checkpoint";
  meta.tailPolicy = "repeat";
  meta.featureName = "pooled res5 output";
  meta.featureDim = dim;
  meta.numFrames = 8;
  meta.samplingRate = 8;
  meta.stride = 64;
  meta.targetFps = 29.97;
  return meta;
}

float featureValue(int64_t row, int32_t seg, int64_t j) {
  return static_cast<float>(row * 1000 + seg * 10) + static_cast<float>(j) * 0.001f;
}

SegmentRecord segmentFor(int64_t row, int32_t seg) {
  SegmentRecord s;
  s.index = seg;
  s.firstFrame = seg * 16 + row;
  s.lastFrame = seg * 16 + row + 63;
  s.startTime = s.firstFrame / 30.0;
  s.endTime = (s.lastFrame + 1) / 30.0;
  s.paddedFrames = seg == 0 ? 0 : seg + 1;
  return s;
}

// A complete video with deterministic content derived from its row.
VideoResult completeResult(int64_t row, int32_t segments, int64_t dim = kDim) {
  VideoResult r;
  r.videoRow = row;
  r.status = VideoStatus::Complete;
  r.fps = 30.0 + row;
  r.decodedFrames = 100 + row;
  r.duration = (100.0 + row) / 30.0;
  r.decodeErrors = row % 3;
  for (int32_t s = 0; s < segments; ++s) {
    r.segments.push_back(segmentFor(row, s));
    for (int64_t j = 0; j < dim; ++j) r.features.push_back(featureValue(row, s, j));
  }
  return r;
}

VideoResult failedResult(int64_t row, const std::string& error) {
  VideoResult r;
  r.videoRow = row;
  r.status = VideoStatus::Failed;
  r.decodedFrames = 0;
  r.decodeErrors = 7;
  r.error = error;
  return r;
}

std::vector<VideoEntry> entries(int n, const std::string& prefix = "vid") {
  std::vector<VideoEntry> v;
  for (int i = 0; i < n; ++i)
    v.push_back({prefix + std::to_string(i), "/data/" + prefix + std::to_string(i) + ".mp4"});
  return v;
}

// ---- raw reads through the C API, by member name (independent of the store's structs) ----

struct RawSegment {
  int64_t videoRow;
  int32_t segment;
  int64_t firstFrame;
  int64_t lastFrame;
  double startTime;
  double endTime;
  int32_t paddedFrames;
};

struct RawVideo {
  char videoId[256];  // from /manifest
  char path[1024];    // from /manifest
  int8_t status;
  int64_t firstRow;
  int64_t segmentCount;
  char error[512];  // the message of the video's last /failures row
};

struct RawFile {
  std::vector<hsize_t> featureDims;
  std::vector<float> features;
  std::vector<RawSegment> segments;
  std::vector<RawVideo> videos;
};

h5::Datatype rawString(size_t n) {
  auto t = h5::Datatype::take(H5Tcopy(H5T_C_S1), "H5Tcopy");
  h5::check(H5Tset_size(t.id(), n), "H5Tset_size");
  h5::check(H5Tset_strpad(t.id(), H5T_STR_NULLPAD), "H5Tset_strpad");
  h5::check(H5Tset_cset(t.id(), H5T_CSET_UTF8), "H5Tset_cset");
  return t;
}

RawFile readRaw(const fs::path& path) {
  h5::QuietErrors quiet;
  RawFile raw;
  auto file = h5::File::take(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), "H5Fopen");

  auto features = h5::Dataset::take(H5Dopen2(file.id(), "/features", H5P_DEFAULT), "H5Dopen2");
  raw.featureDims = h5::dimsOf(features, "/features");
  raw.features.resize(raw.featureDims.at(0) * raw.featureDims.at(1));
  if (!raw.features.empty()) {
    h5::check(H5Dread(features.id(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT,
                      raw.features.data()),
              "H5Dread");
  }

  auto segType = h5::Datatype::take(H5Tcreate(H5T_COMPOUND, sizeof(RawSegment)), "H5Tcreate");
  h5::check(H5Tinsert(segType.id(), "video_row", HOFFSET(RawSegment, videoRow), H5T_NATIVE_INT64),
            "H5Tinsert");
  h5::check(H5Tinsert(segType.id(), "segment", HOFFSET(RawSegment, segment), H5T_NATIVE_INT32),
            "H5Tinsert");
  h5::check(
      H5Tinsert(segType.id(), "first_frame", HOFFSET(RawSegment, firstFrame), H5T_NATIVE_INT64),
      "H5Tinsert");
  h5::check(H5Tinsert(segType.id(), "last_frame", HOFFSET(RawSegment, lastFrame), H5T_NATIVE_INT64),
            "H5Tinsert");
  h5::check(
      H5Tinsert(segType.id(), "start_time", HOFFSET(RawSegment, startTime), H5T_NATIVE_DOUBLE),
      "H5Tinsert");
  h5::check(H5Tinsert(segType.id(), "end_time", HOFFSET(RawSegment, endTime), H5T_NATIVE_DOUBLE),
            "H5Tinsert");
  h5::check(
      H5Tinsert(segType.id(), "padded_frames", HOFFSET(RawSegment, paddedFrames), H5T_NATIVE_INT32),
      "H5Tinsert");
  auto segments = h5::Dataset::take(H5Dopen2(file.id(), "/segments", H5P_DEFAULT), "H5Dopen2");
  raw.segments.resize(h5::dimsOf(segments, "/segments").at(0));
  if (!raw.segments.empty()) {
    h5::check(
        H5Dread(segments.id(), segType.id(), H5S_ALL, H5S_ALL, H5P_DEFAULT, raw.segments.data()),
        "H5Dread");
  }

  // status read as a plain int8 (HDF5 converts enum -> integer)
  auto vidType = h5::Datatype::take(H5Tcreate(H5T_COMPOUND, sizeof(RawVideo)), "H5Tcreate");
  auto s256 = rawString(256), s1024 = rawString(1024), s512 = rawString(512);
  auto nameType = h5::Datatype::take(H5Tcreate(H5T_COMPOUND, sizeof(RawVideo)), "H5Tcreate");
  h5::check(H5Tinsert(nameType.id(), "video_id", HOFFSET(RawVideo, videoId), s256.id()),
            "H5Tinsert");
  h5::check(H5Tinsert(nameType.id(), "path", HOFFSET(RawVideo, path), s1024.id()), "H5Tinsert");
  h5::check(H5Tinsert(vidType.id(), "first_row", HOFFSET(RawVideo, firstRow), H5T_NATIVE_INT64),
            "H5Tinsert");
  h5::check(
      H5Tinsert(vidType.id(), "segment_count", HOFFSET(RawVideo, segmentCount), H5T_NATIVE_INT64),
      "H5Tinsert");
  auto videos = h5::Dataset::take(H5Dopen2(file.id(), "/videos", H5P_DEFAULT), "H5Dopen2");
  auto manifest = h5::Dataset::take(H5Dopen2(file.id(), "/manifest", H5P_DEFAULT), "H5Dopen2");
  raw.videos.resize(h5::dimsOf(videos, "/videos").at(0));
  EXPECT_EQ(h5::dimsOf(manifest, "/manifest").at(0), raw.videos.size());
  if (!raw.videos.empty()) {
    h5::check(H5Dread(videos.id(), vidType.id(), H5S_ALL, H5S_ALL, H5P_DEFAULT, raw.videos.data()),
              "H5Dread");
    h5::check(
        H5Dread(manifest.id(), nameType.id(), H5S_ALL, H5S_ALL, H5P_DEFAULT, raw.videos.data()),
        "H5Dread");
    struct RawFailure {
      int64_t videoRow;
      char message[512];
    };
    auto failType = h5::Datatype::take(H5Tcreate(H5T_COMPOUND, sizeof(RawFailure)), "H5Tcreate");
    h5::check(
        H5Tinsert(failType.id(), "video_row", HOFFSET(RawFailure, videoRow), H5T_NATIVE_INT64),
        "H5Tinsert");
    h5::check(H5Tinsert(failType.id(), "message", HOFFSET(RawFailure, message), s512.id()),
              "H5Tinsert");
    auto failures = h5::Dataset::take(H5Dopen2(file.id(), "/failures", H5P_DEFAULT), "H5Dopen2");
    std::vector<RawFailure> fails(h5::dimsOf(failures, "/failures").at(0));
    if (!fails.empty()) {
      h5::check(H5Dread(failures.id(), failType.id(), H5S_ALL, H5S_ALL, H5P_DEFAULT, fails.data()),
                "H5Dread");
    }
    for (const auto& f : fails) {
      if (f.videoRow >= 0 && size_t(f.videoRow) < raw.videos.size())
        std::memcpy(raw.videos[size_t(f.videoRow)].error, f.message, sizeof f.message);
    }
    // The enum member separately, with the file's own enum type: HDF5 has no enum -> integer
    // conversion (h5py likewise reads it as its base integer type via the enum).
    auto fileType = h5::Datatype::take(H5Dget_type(videos.id()), "H5Dget_type");
    int idx = h5::check(H5Tget_member_index(fileType.id(), "status"), "H5Tget_member_index");
    auto enumType = h5::Datatype::take(
        H5Tget_member_type(fileType.id(), static_cast<unsigned>(idx)), "H5Tget_member_type");
    auto statusOnly = h5::Datatype::take(H5Tcreate(H5T_COMPOUND, 1), "H5Tcreate");
    h5::check(H5Tinsert(statusOnly.id(), "status", 0, enumType.id()), "H5Tinsert");
    std::vector<int8_t> status(raw.videos.size());
    h5::check(H5Dread(videos.id(), statusOnly.id(), H5S_ALL, H5S_ALL, H5P_DEFAULT, status.data()),
              "H5Dread");
    for (size_t i = 0; i < status.size(); ++i) raw.videos[i].status = status[i];
  }
  return raw;
}

std::string fixedToString(const char* s, size_t n) { return std::string(s, strnlen(s, n)); }

// Checks that `row`'s features and segments in the file are exactly what completeResult(row,
// nseg) produced, wherever they landed.
void expectVideoContent(const RawFile& raw, const StoredVideo& v, int64_t row, int32_t nseg) {
  ASSERT_EQ(v.segmentCount, nseg) << "video row " << row;
  ASSERT_GE(v.firstRow, 0);
  ASSERT_LE(static_cast<size_t>(v.firstRow + nseg), raw.segments.size());
  const int64_t dim = static_cast<int64_t>(raw.featureDims.at(1));
  for (int32_t s = 0; s < nseg; ++s) {
    const size_t r = static_cast<size_t>(v.firstRow + s);
    const RawSegment& seg = raw.segments[r];
    SegmentRecord want = segmentFor(row, s);
    EXPECT_EQ(seg.videoRow, row) << "segment row " << r;
    EXPECT_EQ(seg.segment, s);
    EXPECT_EQ(seg.firstFrame, want.firstFrame);
    EXPECT_EQ(seg.lastFrame, want.lastFrame);
    EXPECT_EQ(seg.startTime, want.startTime);
    EXPECT_EQ(seg.endTime, want.endTime);
    EXPECT_EQ(seg.paddedFrames, want.paddedFrames);
    for (int64_t j = 0; j < dim; ++j) {
      // Bit-exact: the store must not convert or reorder values.
      EXPECT_EQ(raw.features[r * dim + j], featureValue(row, s, j)) << "row " << r << " col " << j;
    }
  }
}

// VIDFEAT_TEST_DEBUG=1 shows the store's debug log (e.g. the I/O mode of every write).
const bool kDebugLog = [] {
  if (std::getenv("VIDFEAT_TEST_DEBUG")) spdlog::set_level(spdlog::level::debug);
  return true;
}();

// ---- serial tests ----

TEST(Store, CollectiveCheckDetectsIndependentFallback) {
  // The check the store relies on must be able to say "no": a float dataset written from doubles
  // needs a conversion, which parallel HDF5 1.10 does only independently.
  ScratchDir dir;
  h5::QuietErrors quiet;
  h5::FileAccessProps fapl;
  fapl.add(h5::MpioAccess{MPI_COMM_SELF}).add(h5::CollectiveMetadata{});
  auto file = h5::File::take(
      H5Fcreate((dir / "check.h5").c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.id()), "H5Fcreate");
  auto space = h5::simpleSpace({4});
  h5::DatasetCreateProps dcpl;
  dcpl.add(h5::Chunked{{2}});
  auto ds = h5::Dataset::take(
      H5Dcreate2(file.id(), "x", H5T_IEEE_F32LE, space.id(), H5P_DEFAULT, dcpl.id(), H5P_DEFAULT),
      "H5Dcreate2");
  h5::TransferProps dxpl;
  dxpl.add(h5::CollectiveTransfer{});
  const float f[4] = {1, 2, 3, 4};
  h5::check(H5Dwrite(ds.id(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, dxpl.id(), f), "H5Dwrite");
  EXPECT_TRUE(h5::ioMode(dxpl).collective()) << h5::ioMode(dxpl).describe();
  const double d[4] = {1, 2, 3, 4};
  h5::check(H5Dwrite(ds.id(), H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, dxpl.id(), d), "H5Dwrite");
  h5::IoModeReport report = h5::ioMode(dxpl);
  EXPECT_FALSE(report.collective());
  EXPECT_NE(report.describe().find("datatype conversion"), std::string::npos) << report.describe();
  EXPECT_FALSE(h5::warnIfNotCollective(dxpl, "test write"));
  ds.close();
  file.close();
}

TEST(Store, SingleRankRoundTrip) {
  ScratchDir dir;
  const fs::path path = dir / "out.h5";
  {
    FeatureStore store = FeatureStore::create(path, MPI_COMM_SELF, testMeta());
    EXPECT_EQ(store.featureDim(), kDim);
    EXPECT_EQ(store.addVideos(entries(4)), 0);
    EXPECT_EQ(store.addVideos({{"late", "/data/late.mkv"}}), 4);
    EXPECT_TRUE(store.lastWriteCollective());

    // Wave 1, deliberately not in row order.
    store.writeWave({completeResult(2, 3), completeResult(0, 2),
                     failedResult(1, "cannot decode: moov atom not found")});
    EXPECT_TRUE(store.lastWriteCollective())
        << "features/segments/videos were not written collectively";
    // Wave 2: one more; row 4 stays pending.
    store.writeWave({completeResult(3, 1)});
    EXPECT_TRUE(store.lastWriteCollective());
    store.close();
    store.close();  // idempotent
  }

  StoreSummary sum = readStoreSummary(path);
  FileMetadata want = testMeta();
  EXPECT_EQ(sum.formatVersion, "3");
  EXPECT_EQ(sum.vidfeatVersion, VIDFEAT_VERSION);
  EXPECT_TRUE(std::regex_match(sum.createdUtc, std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)")))
      << sum.createdUtc;
  EXPECT_EQ(sum.meta.modelName, want.modelName);
  EXPECT_EQ(sum.meta.modelArch, want.modelArch);
  EXPECT_EQ(sum.meta.configYaml, want.configYaml);
  EXPECT_EQ(sum.meta.checkpointPath, want.checkpointPath);
  EXPECT_EQ(sum.meta.checkpointSha256, want.checkpointSha256);
  EXPECT_EQ(sum.meta.weights, want.weights);
  EXPECT_EQ(sum.meta.tailPolicy, want.tailPolicy);
  EXPECT_EQ(sum.meta.featureName, want.featureName);
  EXPECT_EQ(sum.meta.featureDim, kDim);
  EXPECT_EQ(sum.meta.numFrames, 8);
  EXPECT_EQ(sum.meta.samplingRate, 8);
  EXPECT_EQ(sum.meta.stride, 64);
  EXPECT_EQ(sum.meta.targetFps, 29.97);
  EXPECT_EQ(sum.featureRows, 6);

  ASSERT_EQ(sum.videos.size(), 5u);
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(sum.videos[i].videoId, "vid" + std::to_string(i));
    EXPECT_EQ(sum.videos[i].path, "/data/vid" + std::to_string(i) + ".mp4");
  }
  EXPECT_EQ(sum.videos[4].videoId, "late");
  EXPECT_EQ(sum.videos[4].path, "/data/late.mkv");

  // Within a rank's wave, rows follow the order the videos were passed in.
  EXPECT_EQ(sum.videos[2].firstRow, 0);
  EXPECT_EQ(sum.videos[0].firstRow, 3);
  EXPECT_EQ(sum.videos[3].firstRow, 5);

  for (int64_t row : {0, 2, 3}) {
    const StoredVideo& v = sum.videos[row];
    EXPECT_EQ(v.status, VideoStatus::Complete);
    EXPECT_EQ(v.fps, 30.0 + row);
    EXPECT_EQ(v.decodedFrames, 100 + row);
    EXPECT_EQ(v.duration, (100.0 + row) / 30.0);
    EXPECT_EQ(v.decodeErrors, row % 3);
    EXPECT_EQ(v.error, "");
  }
  const StoredVideo& failed = sum.videos[1];
  EXPECT_EQ(failed.status, VideoStatus::Failed);
  EXPECT_EQ(failed.segmentCount, 0);
  EXPECT_EQ(failed.error, "cannot decode: moov atom not found");
  EXPECT_EQ(failed.decodeErrors, 7);
  const StoredVideo& pending = sum.videos[4];
  EXPECT_EQ(pending.status, VideoStatus::Pending);
  EXPECT_EQ(pending.firstRow, -1);
  EXPECT_EQ(pending.segmentCount, 0);

  RawFile raw = readRaw(path);
  ASSERT_EQ(raw.featureDims, (std::vector<hsize_t>{6, kDim}));
  ASSERT_EQ(raw.segments.size(), 6u);
  expectVideoContent(raw, sum.videos[0], 0, 2);
  expectVideoContent(raw, sum.videos[2], 2, 3);
  expectVideoContent(raw, sum.videos[3], 3, 1);
  ASSERT_EQ(raw.videos.size(), 5u);
  EXPECT_EQ(fixedToString(raw.videos[1].videoId, 256), "vid1");
  EXPECT_EQ(raw.videos[1].status, 2);
  EXPECT_EQ(raw.videos[2].status, 1);
  EXPECT_EQ(raw.videos[4].status, 0);
  EXPECT_EQ(fixedToString(raw.videos[1].error, 512), "cannot decode: moov atom not found");
  EXPECT_EQ(raw.videos[3].firstRow, 5);
  EXPECT_EQ(raw.videos[3].segmentCount, 1);
}

TEST(Store, LargeManifestIsWrittenInRounds) {
  // More videos than one addVideos round holds (4096 rows per rank).
  ScratchDir dir;
  const fs::path path = dir / "many.h5";
  {
    FeatureStore store = FeatureStore::create(path, MPI_COMM_SELF, testMeta());
    EXPECT_EQ(store.addVideos(entries(2)), 0);
    EXPECT_EQ(store.addVideos(entries(9000, "m")), 2);
    EXPECT_TRUE(store.lastWriteCollective());
    store.writeWave({completeResult(9001, 1)});
    store.close();
  }
  StoreSummary sum = readStoreSummary(path);
  ASSERT_EQ(sum.videos.size(), 9002u);
  for (int i : {0, 4095, 4096, 4097, 8191, 8192, 8999}) {
    EXPECT_EQ(sum.videos[2 + i].videoId, "m" + std::to_string(i));
    EXPECT_EQ(sum.videos[2 + i].path, "/data/m" + std::to_string(i) + ".mp4");
  }
  EXPECT_EQ(sum.videos[9001].status, VideoStatus::Complete);
  EXPECT_EQ(sum.videos[9000].status, VideoStatus::Pending);
}

TEST(Store, EmptyWavesWork) {
  ScratchDir dir;
  const fs::path path = dir / "empty.h5";
  {
    FeatureStore store = FeatureStore::create(path, MPI_COMM_SELF, testMeta());
    store.writeWave({});  // before any video exists
    EXPECT_EQ(store.addVideos({}), 0);
    EXPECT_EQ(store.addVideos(entries(2)), 0);
    store.writeWave({});
    // Only a failure: no feature rows in the wave, but a /videos update.
    store.writeWave({failedResult(0, "too short")});
    store.close();
  }
  StoreSummary sum = readStoreSummary(path);
  EXPECT_EQ(sum.featureRows, 0);
  ASSERT_EQ(sum.videos.size(), 2u);
  EXPECT_EQ(sum.videos[0].status, VideoStatus::Failed);
  EXPECT_EQ(sum.videos[0].error, "too short");
  EXPECT_EQ(sum.videos[0].segmentCount, 0);
  EXPECT_EQ(sum.videos[1].status, VideoStatus::Pending);
  RawFile raw = readRaw(path);
  EXPECT_EQ(raw.featureDims, (std::vector<hsize_t>{0, kDim}));
  EXPECT_TRUE(raw.segments.empty());
}

TEST(Store, TooLongVideoIdOrPathIsAClearError) {
  ScratchDir dir;
  FeatureStore store = FeatureStore::create(dir / "long.h5", MPI_COMM_SELF, testMeta());
  const std::string longId = "clip_" + std::string(300, 'x');
  try {
    store.addVideos({{"ok", "/a.mp4"}, {longId, "/b.mp4"}});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    std::string what = e.what();
    EXPECT_NE(what.find(longId), std::string::npos) << what;
    EXPECT_NE(what.find("305 bytes"), std::string::npos) << what;
    EXPECT_NE(what.find("256"), std::string::npos) << what;
  }
  EXPECT_THROW(store.addVideos({{"p", "/" + std::string(1100, 'p')}}), Error);
  // An id of exactly 256 bytes fits (NUL-padded strings need no terminator); nothing of the
  // rejected lists was added.
  const std::string maxId(256, 'm');
  EXPECT_EQ(store.addVideos({{maxId, "/c.mp4"}}), 0);
  store.close();
  StoreSummary sum = readStoreSummary(dir / "long.h5");
  ASSERT_EQ(sum.videos.size(), 1u);
  EXPECT_EQ(sum.videos[0].videoId, maxId);
}

TEST(Store, InvalidResultsAreRejectedBeforeWriting) {
  ScratchDir dir;
  const fs::path path = dir / "bad.h5";
  FeatureStore store = FeatureStore::create(path, MPI_COMM_SELF, testMeta());
  store.addVideos(entries(2));
  VideoResult wrongSize = completeResult(0, 2);
  wrongSize.features.pop_back();
  EXPECT_THROW(store.writeWave({wrongSize}), Error);
  EXPECT_THROW(store.writeWave({completeResult(5, 1)}), Error);  // no such row
  VideoResult failedWithSegments = completeResult(1, 1);
  failedWithSegments.status = VideoStatus::Failed;
  EXPECT_THROW(store.writeWave({failedWithSegments}), Error);
  EXPECT_THROW(store.writeWave({completeResult(1, 1), completeResult(1, 1)}), Error);  // twice
  // The store is still usable and nothing of the rejected waves reached the file.
  store.writeWave({completeResult(1, 2)});
  store.close();
  EXPECT_THROW(store.writeWave({}), Error);  // closed
  StoreSummary sum = readStoreSummary(path);
  EXPECT_EQ(sum.featureRows, 2);
  EXPECT_EQ(sum.videos[0].status, VideoStatus::Pending);
  EXPECT_EQ(sum.videos[1].firstRow, 0);
}

TEST(Store, LongErrorIsTruncatedOnACharacterBoundary) {
  ScratchDir dir;
  const fs::path path = dir / "err.h5";
  // 'a' then 300 two-byte characters: byte 512 falls in the middle of one.
  std::string error = "a";
  for (int i = 0; i < 300; ++i) error += "\xC3\xA9";  // é
  {
    FeatureStore store = FeatureStore::create(path, MPI_COMM_SELF, testMeta());
    store.addVideos(entries(1));
    store.writeWave({failedResult(0, error)});
    store.close();
  }
  StoreSummary sum = readStoreSummary(path);
  EXPECT_EQ(sum.videos[0].error, error.substr(0, 511));
}

TEST(Store, CreateInMissingFolderReportsHdf5Reason) {
  try {
    FeatureStore::create("/nonexistent-vidfeat-dir/out.h5", MPI_COMM_SELF, testMeta());
    FAIL() << "expected an error";
  } catch (const Error& e) {
    std::string what = e.what();
    EXPECT_NE(what.find("H5Fcreate(/nonexistent-vidfeat-dir/out.h5) failed"), std::string::npos)
        << what;
    EXPECT_NE(what.find("unable to"), std::string::npos) << "HDF5's own message missing: " << what;
  }
  EXPECT_THROW(FeatureStore::create("x.h5", MPI_COMM_SELF, testMeta(0)), Error);
}

TEST(Store, SummaryOfTextFileIsInputError) {
  ScratchDir dir;
  const fs::path path = dir / "notes.txt";
  std::ofstream(path) << "this is not HDF5\n";
  try {
    readStoreSummary(path);
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    EXPECT_EQ(e.path(), path.string());
    EXPECT_NE(std::string(e.what()).find(path.string()), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("not a vidfeat output file"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW(readStoreSummary((dir / "missing.h5").string()), InputError);
}

TEST(Store, SummaryOfForeignHdf5IsInputError) {
  ScratchDir dir;
  const fs::path path = dir / "foreign.h5";
  {
    auto file = h5::File::take(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT),
                               "H5Fcreate");
    h5::writeAttribute(file.id(), "format_version",
                       std::string("1"));  // right attribute, no tables
    file.close();
  }
  try {
    readStoreSummary(path);
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    EXPECT_EQ(e.path(), path.string());
    EXPECT_NE(std::string(e.what()).find("not a vidfeat output file: no /features"),
              std::string::npos)
        << e.what();
  }
}

TEST(Store, FileLayoutMatchesFormatDoc) {
  ScratchDir dir;
  const fs::path path = dir / "layout.h5";
  const int64_t dim = 2048;
  {
    FeatureStore store = FeatureStore::create(path, MPI_COMM_SELF, testMeta(dim));
    store.close();
  }
  h5::QuietErrors quiet;
  auto file = h5::File::take(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), "H5Fopen");
  auto features = h5::Dataset::take(H5Dopen2(file.id(), "features", H5P_DEFAULT), "H5Dopen2");
  auto ftype = h5::Datatype::take(H5Dget_type(features.id()), "H5Dget_type");
  EXPECT_GT(H5Tequal(ftype.id(), H5T_IEEE_F32LE), 0);
  auto dcpl = h5::Handle<h5::PropertyListTraits>::take(H5Dget_create_plist(features.id()),
                                                       "H5Dget_create_plist");
  hsize_t chunk[2] = {0, 0};
  ASSERT_EQ(H5Pget_chunk(dcpl.id(), 2, chunk), 2);
  EXPECT_EQ(chunk[0], 128u);  // 1 MiB / (2048 * 4 bytes)
  EXPECT_EQ(chunk[1], 2048u);
  hsize_t maxDims[2];
  auto space = h5::spaceOf(features, "features");
  H5Sget_simple_extent_dims(space.id(), nullptr, maxDims);
  EXPECT_EQ(maxDims[0], H5S_UNLIMITED);
  EXPECT_EQ(maxDims[1], 2048u);

  auto memberNames = [&](const char* name) {
    auto ds = h5::Dataset::take(H5Dopen2(file.id(), name, H5P_DEFAULT), "H5Dopen2");
    auto type = h5::Datatype::take(H5Dget_type(ds.id()), "H5Dget_type");
    std::vector<std::string> names;
    for (int i = 0; i < H5Tget_nmembers(type.id()); ++i) {
      char* n = H5Tget_member_name(type.id(), static_cast<unsigned>(i));
      names.emplace_back(n);
      H5free_memory(n);
    }
    return names;
  };
  EXPECT_EQ(memberNames("segments"),
            (std::vector<std::string>{"video_row", "segment", "padded_frames", "first_frame",
                                      "last_frame", "start_time", "end_time"}));
  EXPECT_EQ(memberNames("videos"),
            (std::vector<std::string>{"status", "fps", "decoded_frames", "duration",
                                      "decode_errors", "first_row", "segment_count"}));
  EXPECT_EQ(memberNames("manifest"), (std::vector<std::string>{"video_id", "path"}));

  auto videos = h5::Dataset::take(H5Dopen2(file.id(), "videos", H5P_DEFAULT), "H5Dopen2");
  auto vtype = h5::Datatype::take(H5Dget_type(videos.id()), "H5Dget_type");
  EXPECT_EQ(H5Tget_size(vtype.id()), 56u);
  auto status = h5::Datatype::take(H5Tget_member_type(vtype.id(), 0), "H5Tget_member_type");
  EXPECT_EQ(H5Tget_class(status.id()), H5T_ENUM);
  char name[16];
  int8_t value = 2;
  ASSERT_GE(H5Tenum_nameof(status.id(), &value, name, sizeof name), 0);
  EXPECT_STREQ(name, "failed");
  auto manifest = h5::Dataset::take(H5Dopen2(file.id(), "manifest", H5P_DEFAULT), "H5Dopen2");
  auto mtype = h5::Datatype::take(H5Dget_type(manifest.id()), "H5Dget_type");
  auto idType = h5::Datatype::take(H5Tget_member_type(mtype.id(), 0), "H5Tget_member_type");
  EXPECT_EQ(H5Tget_size(idType.id()), 256u);
  auto pathType = h5::Datatype::take(H5Tget_member_type(mtype.id(), 1), "H5Tget_member_type");
  EXPECT_EQ(H5Tget_size(pathType.id()), 1024u);
  // /manifest is deflated (level 1) in chunks of 819 rows (1 MiB / 1280 bytes).
  auto mdcpl = h5::Handle<h5::PropertyListTraits>::take(H5Dget_create_plist(manifest.id()),
                                                        "H5Dget_create_plist");
  ASSERT_EQ(H5Pget_nfilters(mdcpl.id()), 1);
  unsigned flags = 0, level = 0, config = 0;
  size_t nValues = 1;
  EXPECT_EQ(H5Pget_filter2(mdcpl.id(), 0, &flags, &nValues, &level, 0, nullptr, &config),
            H5Z_FILTER_DEFLATE);
  EXPECT_EQ(level, 1u);
  hsize_t manifestChunk = 0;
  ASSERT_GE(H5Pget_chunk(mdcpl.id(), 1, &manifestChunk), 0);
  EXPECT_EQ(manifestChunk, 819u);

  for (const char* attr :
       {"format_version", "vidfeat_version", "model_name", "model_arch", "config_yaml",
        "checkpoint_path", "checkpoint_sha256", "weights", "tail_policy", "feature_name",
        "feature_dim", "num_frames", "sampling_rate", "stride", "target_fps", "created_utc"}) {
    EXPECT_TRUE(h5::hasAttribute(file.id(), attr)) << attr;
  }
}

TEST(Store, ManifestCostsLittleOnDisk) {
  // 5000 videos with ids and paths like a real dataset's: /manifest's 1280-byte rows (6.4 MB of
  // fixed-length strings) take under 1/20 of that once deflated, and /videos is 56 bytes a row.
  ScratchDir dir;
  const fs::path path = dir / "many.h5";
  constexpr int kVideos = 5000;
  {
    FeatureStore store = FeatureStore::create(path, MPI_COMM_SELF, testMeta());
    std::vector<VideoEntry> list;
    for (int i = 0; i < kVideos; ++i) {
      char id[32];
      std::snprintf(id, sizeof id, "v_%011d", i * 7919);
      list.push_back({id, std::string("/datasets/activitynet/videos/") + id + ".mp4"});
    }
    store.addVideos(list);
    store.close();
  }
  h5::QuietErrors quiet;
  auto file = h5::File::take(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), "H5Fopen");
  auto manifest = h5::Dataset::take(H5Dopen2(file.id(), "manifest", H5P_DEFAULT), "H5Dopen2");
  auto videos = h5::Dataset::take(H5Dopen2(file.id(), "videos", H5P_DEFAULT), "H5Dopen2");
  const double manifestBytes = double(H5Dget_storage_size(manifest.id()));
  EXPECT_GT(manifestBytes, 0.0);
  EXPECT_LT(manifestBytes, kVideos * 1280.0 / 20) << manifestBytes / kVideos << " bytes a row";
  EXPECT_EQ(H5Tget_size(h5::Datatype::take(H5Dget_type(videos.id()), "H5Dget_type").id()), 56u);
  const StoreSummary sum = readStoreSummary(path);
  ASSERT_EQ(sum.videos.size(), size_t(kVideos));
  EXPECT_EQ(sum.videos[4321].videoId, "v_00034217999");
  EXPECT_EQ(sum.videos[4321].path, "/datasets/activitynet/videos/v_00034217999.mp4");
}

TEST(Store, H5dumpReadsTheFile) {
  ScratchDir dir;
  const fs::path path = dir / "dump.h5";
  {
    FeatureStore store = FeatureStore::create(path, MPI_COMM_SELF, testMeta());
    store.addVideos(entries(2));
    store.writeWave({completeResult(0, 2), failedResult(1, "broken")});
    store.close();
  }
  const fs::path out = dir / "dump.txt";
  ASSERT_EQ(testing::run("h5dump -H '" + path.string() + "' > '" + out.string() + "' 2>&1"), 0);
  std::stringstream text;
  text << std::ifstream(out).rdbuf();
  for (const char* needle :
       {"DATASET \"features\"", "DATASET \"segments\"", "DATASET \"videos\"",
        "DATASET \"manifest\"", "ATTRIBUTE \"format_version\"", "H5T_ENUM", "\"video_id\""}) {
    EXPECT_NE(text.str().find(needle), std::string::npos) << needle << " missing in:\n"
                                                          << text.str();
  }
}

TEST(Store, FormatDocSnippetRunsWithH5py) {
  // The 3-line h5py recipe in docs/FORMAT.md, run verbatim on a real file (only the file name and
  // id are substituted). Needs python3 with h5py; skipped where that is missing.
  if (testing::run("/usr/bin/python3 -c 'import h5py' > /dev/null 2>&1") != 0)
    GTEST_SKIP() << "no h5py";
  ScratchDir dir;
  const fs::path path = dir / "doc.h5";
  {
    FeatureStore store = FeatureStore::create(path, MPI_COMM_SELF, testMeta());
    store.addVideos(entries(3));
    store.writeWave({completeResult(2, 1), completeResult(1, 3)});
    store.close();
  }
  std::stringstream doc;
  doc << std::ifstream(testing::sourceDir() / "docs" / "FORMAT.md").rdbuf();
  std::smatch block;
  const std::string text = doc.str();
  ASSERT_TRUE(std::regex_search(text, block, std::regex("```python\\n([^`]*)```")));
  std::string code = block[1];
  code = std::regex_replace(code, std::regex("\"features\\.h5\""), "\"" + path.string() + "\"");
  code = std::regex_replace(code, std::regex("b\"abc123\""), "b\"vid1\"");
  // The recipe's results must be video 1's rows, exactly.
  code +=
      "expect = np.array([[1000 + s * 10 + np.float32(j * 0.001) for j in range(5)] for s in "
      "range(3)], np.float32)\n"
      "assert feats.dtype == np.float32 and (feats == expect).all(), feats\n"
      "assert list(times['start_time']) == [(s * 16 + 1) / 30.0 for s in range(3)], times\n";
  const fs::path script = dir / "snippet.py";
  std::ofstream(script) << code;
  EXPECT_EQ(testing::run("/usr/bin/python3 '" + script.string() + "'"), 0) << code;
}

TEST(Store, MovedStoreKeepsWorking) {
  ScratchDir dir;
  const fs::path path = dir / "move.h5";
  {
    FeatureStore a = FeatureStore::create(path, MPI_COMM_SELF, testMeta());
    FeatureStore b = std::move(a);
    b.addVideos(entries(1));
    FeatureStore c = FeatureStore::create(dir / "other.h5", MPI_COMM_SELF, testMeta());
    c = std::move(b);  // closes other.h5
    c.writeWave({completeResult(0, 1)});
    EXPECT_THROW(a.writeWave({}), Error);  // moved from: reported, not a crash
    // no close(): the destructor closes the file
  }
  EXPECT_EQ(readStoreSummary(path).featureRows, 1);
  EXPECT_EQ(readStoreSummary(dir / "other.h5").videos.size(), 0u);
}

// ---- MPI tests (any number of ranks) ----

// One folder shared by all ranks of `comm`: rank 0 owns it, the others learn its name.
class SharedDir {
 public:
  explicit SharedDir(MPI_Comm comm) : comm_(comm) {
    int rank = 0;
    MPI_Comm_rank(comm, &rank);
    std::string name;
    if (rank == 0) {
      owned_ = std::make_unique<ScratchDir>();
      name = owned_->path().string();
    }
    int length = static_cast<int>(name.size());
    MPI_Bcast(&length, 1, MPI_INT, 0, comm);
    name.resize(static_cast<size_t>(length));
    MPI_Bcast(name.data(), length, MPI_CHAR, 0, comm);
    path_ = name;
  }
  ~SharedDir() { MPI_Barrier(comm_); }  // nobody removes it while others still read
  fs::path operator/(const std::string& name) const { return path_ / name; }

 private:
  MPI_Comm comm_;
  fs::path path_;
  std::unique_ptr<ScratchDir> owned_;  // destroyed after the barrier in ~SharedDir's body
};

int rankOf(MPI_Comm comm) {
  int r = 0;
  MPI_Comm_rank(comm, &r);
  return r;
}
int sizeOf(MPI_Comm comm) {
  int s = 1;
  MPI_Comm_size(comm, &s);
  return s;
}

int32_t segmentsOf(int64_t row) { return static_cast<int32_t>(1 + (row * 7) % 5); }
bool failsOf(int64_t row) { return row % 4 == 3; }

// Writes `videos` videos over two waves from all ranks of `comm`, with uneven shares:
// wave 1 leaves the last rank without work, wave 2 leaves rank 0 without work, and the last
// video stays pending. Returns whether every write was collective on this rank.
bool writeUneven(const fs::path& path, MPI_Comm comm, int videos, int64_t dim = kDim) {
  const int rank = rankOf(comm), size = sizeOf(comm);
  FeatureStore store = FeatureStore::create(path, comm, testMeta(dim));
  int64_t first = store.addVideos(entries(videos));
  EXPECT_EQ(first, 0);
  bool collective = store.lastWriteCollective();
  const int half = videos / 2;
  for (int wave = 0; wave < 2; ++wave) {
    std::vector<VideoResult> local;
    const int lo = wave == 0 ? 0 : half, hi = wave == 0 ? half : videos - 1;
    // Ranks that work in this wave: all but the last (wave 0) / all but rank 0 (wave 1).
    const int workers = size > 1 ? size - 1 : 1;
    const int myIndex = size == 1 ? 0 : (wave == 0 ? rank : rank - 1);
    const bool idle = size > 1 && (wave == 0 ? rank == size - 1 : rank == 0);
    if (!idle) {
      for (int row = lo; row < hi; ++row) {
        // Uneven on purpose: rank index k takes rows with (row * 3) % workers == k.
        if ((row * 3) % workers != myIndex) continue;
        local.push_back(failsOf(row) ? failedResult(row, "error of video " + std::to_string(row))
                                     : completeResult(row, segmentsOf(row), dim));
      }
    }
    store.writeWave(local);
    collective = collective && store.lastWriteCollective();
  }
  store.close();
  return collective;
}

// Every rank checks the finished file independently (serial reads).
void checkUneven(const fs::path& path, int videos, int64_t dim = kDim) {
  StoreSummary sum = readStoreSummary(path);
  RawFile raw = readRaw(path);
  ASSERT_EQ(sum.videos.size(), static_cast<size_t>(videos));
  ASSERT_EQ(raw.featureDims.at(1), static_cast<hsize_t>(dim));
  int64_t expectRows = 0;
  std::set<int64_t> covered;
  for (int row = 0; row < videos; ++row) {
    const StoredVideo& v = sum.videos[row];
    EXPECT_EQ(v.videoId, "vid" + std::to_string(row));
    if (row == videos - 1) {
      EXPECT_EQ(v.status, VideoStatus::Pending);
      continue;
    }
    if (failsOf(row)) {
      EXPECT_EQ(v.status, VideoStatus::Failed) << row;
      EXPECT_EQ(v.segmentCount, 0);
      EXPECT_EQ(v.error, "error of video " + std::to_string(row));
      continue;
    }
    EXPECT_EQ(v.status, VideoStatus::Complete) << row;
    EXPECT_EQ(v.decodedFrames, 100 + row);
    expectVideoContent(raw, v, row, segmentsOf(row));
    expectRows += segmentsOf(row);
    for (int64_t r = v.firstRow; r < v.firstRow + v.segmentCount; ++r) {
      EXPECT_TRUE(covered.insert(r).second) << "row " << r << " claimed by two videos";
    }
  }
  EXPECT_EQ(sum.featureRows, expectRows);
  EXPECT_EQ(static_cast<int64_t>(covered.size()), expectRows) << "rows not covered by any video";
}

TEST(StoreMpi, RanksContributeDifferentCounts) {
  SharedDir dir(MPI_COMM_WORLD);
  const fs::path path = dir / "mpi.h5";
  const int videos = 23;
  EXPECT_TRUE(writeUneven(path, MPI_COMM_WORLD, videos))
      << "a transfer fell back to independent I/O on rank " << rankOf(MPI_COMM_WORLD);
  MPI_Barrier(MPI_COMM_WORLD);
  checkUneven(path, videos);
}

TEST(StoreMpi, RanksWriteAcrossManyChunks) {
  // Wide features make /features chunks 4 rows tall, so every rank's block spans several chunks
  // and ranks share chunks at their boundaries.
  SharedDir dir(MPI_COMM_WORLD);
  const fs::path path = dir / "wide.h5";
  const int videos = 23;
  const int64_t dim = 65536;
  EXPECT_TRUE(writeUneven(path, MPI_COMM_WORLD, videos, dim));
  MPI_Barrier(MPI_COMM_WORLD);
  checkUneven(path, videos, dim);
}

TEST(StoreMpi, SubCommunicatorsWriteSeparateFiles) {
  // If the store used MPI_COMM_WORLD anywhere, the two groups' collectives would mix and hang or
  // corrupt each other's files.
  SharedDir dir(MPI_COMM_WORLD);
  const int color = rankOf(MPI_COMM_WORLD) % 2;
  MPI_Comm half = MPI_COMM_NULL;
  MPI_Comm_split(MPI_COMM_WORLD, color, 0, &half);
  const fs::path path = dir / ("group" + std::to_string(color) + ".h5");
  const int videos = 9 + color * 4;
  EXPECT_TRUE(writeUneven(path, half, videos));
  MPI_Barrier(half);
  checkUneven(path, videos);
  MPI_Comm_free(&half);
}

TEST(StoreMpi, InvalidResultOnOneRankThrowsOnAll) {
  SharedDir dir(MPI_COMM_WORLD);
  const fs::path path = dir / "agree.h5";
  const int rank = rankOf(MPI_COMM_WORLD), size = sizeOf(MPI_COMM_WORLD);
  FeatureStore store = FeatureStore::create(path, MPI_COMM_WORLD, testMeta());
  store.addVideos(entries(size));
  VideoResult mine = completeResult(rank, 2);
  VideoResult broken = mine;
  if (rank == size - 1) broken.features.resize(3);
  try {
    store.writeWave({broken});
    ADD_FAILURE() << "expected an error on every rank";
  } catch (const Error& e) {
    std::string what = e.what();
    if (rank == size - 1) {
      EXPECT_NE(what.find("video row " + std::to_string(rank)), std::string::npos) << what;
    } else {
      EXPECT_NE(what.find("another rank"), std::string::npos) << what;
    }
  }
  // Nothing was written and the store still works for everyone.
  store.writeWave({mine});
  store.close();
  MPI_Barrier(MPI_COMM_WORLD);
  StoreSummary sum = readStoreSummary(path);
  EXPECT_EQ(sum.featureRows, 2 * size);
  RawFile raw = readRaw(path);
  for (int r = 0; r < size; ++r) expectVideoContent(raw, sum.videos[r], r, 2);
}

}  // namespace
}  // namespace vidfeat
