// The journal (include/vidfeat/store/journal.h): what is written reads back bit for bit, a record a
// kill cut short is ignored, a corrupted one ends its file, a journal of another setup is refused,
// and attempts without results count as crashes only in processes that did not close.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "test_support.h"
#include "vidfeat/common/error.h"
#include "vidfeat/store/journal.h"

namespace vidfeat {
namespace {

using testing::ScratchDir;
namespace fs = std::filesystem;

FileMetadata meta() {
  FileMetadata m;
  m.modelName = "SLOW_8x8_R50";
  m.modelArch = "slow";
  m.configYaml = "MODEL:\n  ARCH: slow\n";
  m.checkpointSha256 = std::string(64, 'b');
  m.weights = "checkpoint";
  m.tailPolicy = "repeat";
  m.featureName = "pooled";
  m.featureDim = 3;
  m.numFrames = 8;
  m.samplingRate = 8;
  m.stride = 64;
  return m;
}

VideoResult complete(int k) {
  VideoResult r;
  r.status = VideoStatus::Complete;
  r.fps = 25.0 + k;
  r.decodedFrames = 100 + k;
  r.duration = 4.0 + k;
  r.decodeErrors = k % 2;
  for (int s = 0; s < k + 1; ++s) {
    SegmentRecord seg;
    seg.index = s;
    seg.firstFrame = s * 16;
    seg.lastFrame = s * 16 + 63;
    seg.startTime = s * 0.64;
    seg.endTime = s * 0.64 + 2.56;
    seg.paddedFrames = s == k ? 3 : 0;
    r.segments.push_back(seg);
    for (int j = 0; j < 3; ++j)
      r.features.push_back(float(k) + 0.5f * float(s) + 0.001f * float(j));
  }
  return r;
}

void expectSame(const VideoResult& a, const VideoResult& b) {
  EXPECT_EQ(a.status, b.status);
  EXPECT_EQ(a.fps, b.fps);
  EXPECT_EQ(a.decodedFrames, b.decodedFrames);
  EXPECT_EQ(a.duration, b.duration);
  EXPECT_EQ(a.decodeErrors, b.decodeErrors);
  EXPECT_EQ(a.error, b.error);
  EXPECT_EQ(a.failureStage, b.failureStage);
  ASSERT_EQ(a.segments.size(), b.segments.size());
  for (size_t i = 0; i < a.segments.size(); ++i) {
    EXPECT_EQ(a.segments[i].index, b.segments[i].index);
    EXPECT_EQ(a.segments[i].firstFrame, b.segments[i].firstFrame);
    EXPECT_EQ(a.segments[i].lastFrame, b.segments[i].lastFrame);
    EXPECT_EQ(a.segments[i].startTime, b.segments[i].startTime);
    EXPECT_EQ(a.segments[i].endTime, b.segments[i].endTime);
    EXPECT_EQ(a.segments[i].paddedFrames, b.segments[i].paddedFrames);
  }
  EXPECT_EQ(a.features, b.features);
}

TEST(Journal, Crc32MatchesTheStandardCheckValue) {
  // The CRC-32 check value of "123456789" (IEEE 802.3 / zlib) is 0xCBF43926.
  EXPECT_EQ(crc32("123456789", 9), 0xCBF43926u);
}

TEST(Journal, ResultsReadBackBitForBit) {
  ScratchDir dir;
  const std::string d = (dir / "out.h5.journal").string();
  fs::create_directories(d);
  auto w = JournalWriter::create(d, "rank-0-a.vfj", "a", 0, meta());
  w.base();
  w.attempt("v0");
  w.result("v0", "/videos/v0.mp4", 0, complete(0));
  w.attempt("v1");
  VideoResult bad;
  bad.status = VideoStatus::Failed;
  bad.error = "v1.mp4: no video stream";
  bad.failureStage = "open";
  w.result("v1", "/videos/v1.mp4", 0, bad);
  w.attempt("v2");
  w.result("v2", "/videos/v2.mp4", 0, complete(2));
  w.close();

  JournalIndex index = scanJournals(d, meta());
  EXPECT_TRUE(index.covers);
  EXPECT_EQ(index.tornRecords, 0);
  ASSERT_EQ(index.results.size(), 3u);
  EXPECT_TRUE(index.crashes.empty());
  expectSame(loadResult(index, index.results.at("v0")).result, complete(0));
  expectSame(loadResult(index, index.results.at("v2")).result, complete(2));
  JournaledResult f = loadResult(index, index.results.at("v1"));
  expectSame(f.result, bad);
  EXPECT_EQ(f.path, "/videos/v1.mp4");
  EXPECT_EQ(index.results.at("v2").segments, 3);
}

TEST(Journal, ATornLastRecordIsAVideoInFlight) {
  ScratchDir dir;
  const std::string d = dir.path().string();
  std::string path;
  {
    auto w = JournalWriter::create(d, "rank-0-a.vfj", "a", 0, meta());
    w.result("v0", "p0", 0, complete(0));
    w.attempt("v1");
    w.result("v1", "p1", 0, complete(1));
    w.sync();
    path = w.path();
    // No close(): the process "died".
  }
  // Cut the last record anywhere inside it: every cut leaves v0 and drops v1.
  const auto size = fs::file_size(path);
  std::ifstream in(path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), {});
  JournalIndex full = scanJournals(d, meta());
  ASSERT_EQ(full.results.size(), 2u);
  const uint64_t v1Start = full.results.at("v1").offset - 16;
  for (uint64_t cut = v1Start + 1; cut < size; cut += 7) {
    std::ofstream(path, std::ios::binary | std::ios::trunc)
        .write(bytes.data(), std::streamsize(cut));
    JournalIndex index = scanJournals(d, meta());
    ASSERT_EQ(index.results.size(), 1u) << "cut at " << cut;
    EXPECT_TRUE(index.results.count("v0"));
    EXPECT_EQ(index.tornRecords, 1);
    // v1 was attempted, never finished, and the process did not close: one crash.
    EXPECT_EQ(index.crashes.at("v1"), 1);
  }
}

TEST(Journal, ACorruptedRecordEndsItsFile) {
  ScratchDir dir;
  const std::string d = dir.path().string();
  std::string path;
  {
    auto w = JournalWriter::create(d, "rank-0-a.vfj", "a", 0, meta());
    w.result("v0", "p0", 0, complete(0));
    w.result("v1", "p1", 0, complete(1));
    w.result("v2", "p2", 0, complete(2));
    w.close();
    path = w.path();
  }
  JournalIndex before = scanJournals(d, meta());
  // Flip one feature byte of v1's record: its CRC fails; v0 stays, v1 and what follows are dropped.
  const uint64_t at = before.results.at("v1").offset + before.results.at("v1").length - 2;
  int fd = ::open(path.c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  char c;
  ASSERT_EQ(::pread(fd, &c, 1, off_t(at)), 1);
  c = char(c ^ 0x40);
  ASSERT_EQ(::pwrite(fd, &c, 1, off_t(at)), 1);
  ::close(fd);
  JournalIndex index = scanJournals(d, meta());
  EXPECT_EQ(index.results.size(), 1u);
  EXPECT_TRUE(index.results.count("v0"));
  EXPECT_EQ(index.tornRecords, 1);
}

TEST(Journal, AJournalOfAnotherSetupIsRefused) {
  ScratchDir dir;
  const std::string d = dir.path().string();
  JournalWriter::create(d, "rank-0-a.vfj", "a", 0, meta()).close();
  FileMetadata other = meta();
  other.checkpointSha256 = std::string(64, 'c');
  try {
    scanJournals(d, other);
    FAIL() << "a journal of another checkpoint was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("rank-0-a.vfj"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("checkpoint"), std::string::npos) << e.what();
  }
}

TEST(Journal, CrashesCountProcessesThatDiedWithTheVideoInFlight) {
  ScratchDir dir;
  const std::string d = dir.path().string();
  {  // run a: died while v1 was in flight
    auto w = JournalWriter::create(d, "rank-0-a.vfj", "a", 0, meta());
    w.attempt("v0");
    w.result("v0", "p0", 0, complete(0));
    w.attempt("v1");
  }
  {  // run b: died again in v1; v2 attempted and finished
    auto w = JournalWriter::create(d, "rank-0-b.vfj", "b", 0, meta());
    w.attempt("v1");
    w.attempt("v2");
    w.result("v2", "p2", 0, complete(2));
  }
  {  // run c: stopped cleanly with v3 in flight: not a crash
    auto w = JournalWriter::create(d, "rank-0-c.vfj", "c", 0, meta());
    w.attempt("v3");
    w.close();
  }
  JournalIndex index = scanJournals(d, meta());
  EXPECT_EQ(index.crashes.size(), 1u);
  EXPECT_EQ(index.crashes.at("v1"), 2);
  EXPECT_FALSE(index.covers);  // no BASE record: these journals do not cover a file
  EXPECT_EQ(index.files.size(), 3u);
}

TEST(Journal, AnErrorStoppingTheRunIsNotACrash) {
  ScratchDir dir;
  const std::string d = dir.path().string();
  try {
    auto w = JournalWriter::create(d, "rank-0-a.vfj", "a", 0, meta());
    w.attempt("v0");
    throw Error("disk full: cannot write out.h5");  // the run stops on an error with v0 in flight
  } catch (const Error&) {
  }
  JournalIndex index = scanJournals(d, meta());
  EXPECT_TRUE(index.crashes.empty());
}

TEST(Journal, CompleteWinsOverFailedAndLaterOverEarlier) {
  ScratchDir dir;
  const std::string d = dir.path().string();
  VideoResult bad;
  bad.status = VideoStatus::Failed;
  bad.error = "timeout";
  bad.failureStage = "timeout";
  {
    auto w = JournalWriter::create(d, "rank-0-a.vfj", "a", 0, meta());
    w.result("v0", "p0", 0, complete(0));
    w.result("v1", "p1", 0, bad);
    w.close();
  }
  {
    auto w = JournalWriter::create(d, "rank-0-b.vfj", "b", 0, meta());
    w.result("v0", "p0", 0, bad);          // a --retry-failed run cannot undo a complete result
    w.result("v1", "p1", 0, complete(1));  // ...but a retry that succeeds wins
    w.close();
  }
  JournalIndex index = scanJournals(d, meta());
  EXPECT_EQ(index.results.at("v0").status, VideoStatus::Complete);
  EXPECT_EQ(index.results.at("v1").status, VideoStatus::Complete);
  expectSame(loadResult(index, index.results.at("v1")).result, complete(1));
}

TEST(Journal, IoErrorsNameThePathAndTheReason) {
  EXPECT_EQ(ioErrorMessage("/x/out.h5.journal/r.vfj", ENOSPC)
                .rfind("disk full: cannot write /x/out.h5.journal/r.vfj: "
                       "No space left on device",
                       0),
            0u);
  EXPECT_EQ(ioErrorMessage("/x/y", EIO, "sync"), "I/O error on /x/y (sync): Input/output error");
  // A folder that cannot be created into: the error names the journal.
  try {
    JournalWriter::create("/nonexistent-dir-vidfeat", "rank-0-a.vfj", "a", 0, meta());
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent-dir-vidfeat/rank-0-a.vfj"),
              std::string::npos)
        << e.what();
  }
}

TEST(Journal, RemovalIsARenameFirst) {
  ScratchDir dir;
  const std::string d = (dir / "out.h5.journal").string();
  fs::create_directories(d);
  JournalWriter::create(d, "rank-0-a.vfj", "a", 0, meta()).close();
  removeJournals(d, "a");
  EXPECT_FALSE(fs::exists(d));
  EXPECT_FALSE(fs::exists(d + ".done-a"));
  fs::create_directories(d + ".done-b");  // left by a kill between the rename and the delete
  removeFinishedJournals(d);
  EXPECT_FALSE(fs::exists(d + ".done-b"));
}

}  // namespace
}  // namespace vidfeat
