#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "test_support.h"
#include "vidfeat/common/error.h"
#include "vidfeat/mpi/broadcast.h"
#include "vidfeat/run/manifest.h"

using namespace vidfeat;
using vidfeat::testing::ScratchDir;

namespace {
std::string write(const ScratchDir& d, const std::string& name, const std::string& text) {
  auto p = d / name;
  std::ofstream(p, std::ios::binary) << text;
  return p.string();
}
}  // namespace

TEST(Manifest, PlainListResolvesAgainstItsFolderAndDerivesIds) {
  ScratchDir d;
  auto m = write(d, "list.txt",
                 "a/clip.mp4\nb/clip.mp4\n\n# comment\n-video-with-dash-.mp4\n/abs/x y.mkv\r\n");
  auto e = readManifest(m);
  ASSERT_EQ(e.size(), 4u);
  EXPECT_EQ(e[0].videoId, "a/clip");
  EXPECT_EQ(e[1].videoId, "b/clip");  // same file name, different folder: no collision
  EXPECT_EQ(e[0].path, (d.path() / "a/clip.mp4").string());
  EXPECT_EQ(e[2].videoId, "-video-with-dash-");
  EXPECT_EQ(e[2].path, (d.path() / "-video-with-dash-.mp4").string());
  EXPECT_EQ(e[3].path, "/abs/x y.mkv");
  EXPECT_EQ(e[3].videoId, "abs/x y");
}

TEST(Manifest, CsvWithQuotesCommasAndIds) {
  ScratchDir d;
  auto m = write(d, "m.csv",
                 "video_id,path,label\n"
                 "v1,videos/one.mp4,3\n"
                 "\"v,2\",\"videos/with, comma.mp4\",4\n"
                 ",\"videos/say \"\"hi\"\".mp4\",5\n");
  auto e = readManifest(m);
  ASSERT_EQ(e.size(), 3u);
  EXPECT_EQ(e[0].videoId, "v1");
  EXPECT_EQ(e[1].videoId, "v,2");
  EXPECT_EQ(e[1].path, (d.path() / "videos/with, comma.mp4").string());
  EXPECT_EQ(e[2].videoId, "videos/say \"hi\"");  // empty id column: the default id
}

TEST(Manifest, ByteOrderMarkIsNotPartOfTheHeader) {
  // Spreadsheets save CSV with a UTF-8 BOM: the header still names its columns (kept, the BOM
  // made `video_id` unknown and the ids silently came from the paths).
  ScratchDir d;
  auto e = readManifest(
      write(d, "bom.csv", "\xEF\xBB\xBFvideo_id,path\r\nmine,\" spaced , name.mp4\"\r\n"));
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0].videoId, "mine");
  EXPECT_EQ(e[0].path, (d.path() / " spaced , name.mp4").string());
  // Path first: without the fix the file was read as a plain list of "path" lines.
  e = readManifest(write(d, "bom2.csv", "\xEF\xBB\xBFpath,video_id\nx.mp4,y\n"));
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0].videoId, "y");
  EXPECT_EQ(e[0].path, (d.path() / "x.mp4").string());
  // A plain list: the first path does not start with the BOM.
  e = readManifest(write(d, "bom.txt",
                         "\xEF\xBB\xBF"
                         "a.mp4\n"));
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0].videoId, "a");
}

TEST(Manifest, ErrorsNameTheFile) {
  ScratchDir d;
  auto expectError = [&](const std::string& name, const std::string& text,
                         const std::string& what) {
    auto m = write(d, name, text);
    try {
      readManifest(m);
      FAIL() << "expected an error for " << name;
    } catch (const InputError& e) {
      EXPECT_EQ(e.path(), m);
      EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
    }
  };
  expectError("empty.txt", "\n# nothing\n", "no videos");
  expectError("dup.txt", "a.mp4\nsub/../a.mkv\n", "duplicate video id 'a'");
  expectError("quote.csv", "path\n\"unterminated.mp4\n", "unterminated quote");
  expectError("nul.txt", std::string("a.mp4\nb\0.mp4\n", 13), "NUL");
  EXPECT_THROW(readManifest((d / "missing.txt").string()), InputError);
}

// broadcastEntries on 2+ ranks (the ctest entry DistMpi_manifest_broadcast runs 3): what every
// other rank receives equals what the root sent, field by field. On one rank the root returns its
// input unchanged and the serialisation never runs, so there is nothing to check.
TEST(ManifestMpi, BroadcastGivesEveryRankTheRootsEntries) {
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (size < 2)
    GTEST_SKIP()
        << "needs 2 or more ranks (ctest runs it as DistMpi_manifest_broadcast, mpirun -n 3)";

  // Odd characters a manifest can hold (CSV quoting allows commas, quotes, line breaks), UTF-8,
  // an empty field, a long path, and enough entries that the blob is not small.
  std::vector<VideoEntry> sent = {
      {"a", "/x/a.mp4"},
      {"b c", "/y/b c.mp4"},
      {"-dash", "/videos/-video-with-dash-.mp4"},
      {"v,2 \"q\"", "/p/with, comma \"and quotes\".mkv"},
      {"line\nbreak\ttab\rcr", "/p/line\nbreak.mp4"},
      {"vid\xC3\xA9o_\xE6\x97\xA5\xE6\x9C\xAC",
       "/p/caf\xC3\xA9/\xE6\x97\xA5\xE6\x9C\xAC \xF0\x9F\x8E\xAC.webm"},
      {"", "/p/empty id.mp4"},
      {"empty path", ""},
      {"long", "/" + std::string(5000, 'L') + ".mp4"},
  };
  for (int i = 0; i < 1000; ++i)
    sent.push_back({"id" + std::to_string(i), "/many/" + std::to_string(i * 7919) + ".mp4"});

  auto fields = [](const std::vector<VideoEntry>& v) {
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto& e : v) out.emplace_back(e.videoId, e.path);
    return out;
  };
  for (int root : {0, size - 1}) {
    // The other ranks hold something else: it must be replaced, not merged.
    const std::vector<VideoEntry> mine =
        rank == root ? sent
                     : std::vector<VideoEntry>{{"stale" + std::to_string(rank), "/stale.mp4"}};
    const auto got = broadcastEntries(mine, root, MPI_COMM_WORLD);
    EXPECT_EQ(fields(got), fields(sent)) << "rank " << rank << " of " << size << ", root " << root;
    // Nothing: every rank ends with nothing, whatever it held.
    const std::vector<VideoEntry> none;
    const auto empty = broadcastEntries(rank == root ? none : mine, root, MPI_COMM_WORLD);
    EXPECT_TRUE(empty.empty()) << "rank " << rank << ": " << empty.size()
                               << " entries from an empty list";
  }
}
