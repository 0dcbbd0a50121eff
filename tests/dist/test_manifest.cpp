#include <gtest/gtest.h>

#include <fstream>

#include "test_support.h"
#include "vidfeat/common/error.h"
#include "vidfeat/dist/manifest.h"

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
  auto m = write(d, "list.txt", "a/clip.mp4\nb/clip.mp4\n\n# comment\n-video-with-dash-.mp4\n/abs/x y.mkv\r\n");
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
  auto e = readManifest(write(d, "bom.csv", "\xEF\xBB\xBFvideo_id,path\r\nmine,\" spaced , name.mp4\"\r\n"));
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0].videoId, "mine");
  EXPECT_EQ(e[0].path, (d.path() / " spaced , name.mp4").string());
  // Path first: without the fix the file was read as a plain list of "path" lines.
  e = readManifest(write(d, "bom2.csv", "\xEF\xBB\xBFpath,video_id\nx.mp4,y\n"));
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0].videoId, "y");
  EXPECT_EQ(e[0].path, (d.path() / "x.mp4").string());
  // A plain list: the first path does not start with the BOM.
  e = readManifest(write(d, "bom.txt", "\xEF\xBB\xBF" "a.mp4\n"));
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0].videoId, "a");
}

TEST(Manifest, ErrorsNameTheFile) {
  ScratchDir d;
  auto expectError = [&](const std::string& name, const std::string& text, const std::string& what) {
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

TEST(Manifest, BroadcastRoundTripsOnOneRank) {
  std::vector<VideoEntry> e = {{"a", "/x/a.mp4"}, {"b c", "/y/b c.mp4"}};
  auto out = broadcastEntries(e, 0, MPI_COMM_WORLD);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[1].videoId, "b c");
  EXPECT_EQ(out[1].path, "/y/b c.mp4");
}
