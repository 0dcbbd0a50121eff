#pragma once
// Helpers shared by the test suites: the generated test corpus (tests/support/make_corpus.py, made
// by the ctest fixture `corpus_generate`) and its table corpus.tsv, where the optional shared real
// videos are, scratch folders, and generating synthetic videos with the ffmpeg command-line tool
// (tests only; vidfeat itself never runs the ffmpeg CLI).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace vidfeat::testing {

namespace fs = std::filesystem;

// ../shared (CMake's VIDFEAT_SHARED_DIR); the environment variable VIDFEAT_SHARED_DIR, when set,
// overrides it (e.g. VIDFEAT_SHARED_DIR=/nonexistent to see the shared suite skip).
inline fs::path sharedDir() {
  const char* env = std::getenv("VIDFEAT_SHARED_DIR");
  return fs::path(env != nullptr && *env != '\0' ? env : VIDFEAT_SHARED_DIR);
}
inline fs::path sharedVideo(const std::string& name) { return sharedDir() / "videos" / name; }
inline fs::path sourceDir() { return fs::path(VIDFEAT_SOURCE_DIR); }
inline fs::path binaryDir() { return fs::path(VIDFEAT_BINARY_DIR); }

// The real videos of ../shared/videos are an optional extra suite (ctest label `shared`): its
// tests start with this, which reports them SKIPPED (never failed) when the folder is absent.
inline bool sharedVideosPresent() { return fs::is_directory(sharedDir() / "videos"); }
#define VIDFEAT_SKIP_WITHOUT_SHARED_VIDEOS()                                        \
  do {                                                                              \
    if (!::vidfeat::testing::sharedVideosPresent())                                 \
      GTEST_SKIP() << "../shared/videos absent ("                                   \
                   << (::vidfeat::testing::sharedDir() / "videos").string() << ")"; \
  } while (0)

// ---- the generated corpus (docs: notes in tests/support/make_corpus.py) ----

inline fs::path corpusDir() {
#ifdef VIDFEAT_CORPUS_DIR
  return fs::path(VIDFEAT_CORPUS_DIR);
#else
  return binaryDir() / "test-corpus";
#endif
}
inline fs::path corpusVideo(const std::string& name) { return corpusDir() / name; }

// One row of corpus.tsv: what ffprobe reported for the file the generator wrote.
struct CorpusEntry {
  std::string name;
  int64_t frames = -1;  // ffprobe -count_frames of the first video stream; -1: no decodable video
  int width = 0, height = 0;                // coded size
  int displayWidth = 0, displayHeight = 0;  // after rotation
  int rotation = 0;                         // 0/90/180/270
  std::string fps;                          // r_frame_rate, e.g. "30000/1001"
  std::string codec, pixFmt;
  double startTime = 0.0;  // format start_time in seconds (0 when ffprobe gave none)
  std::string kind;        // good | damaged | bad
  std::string notes;

  fs::path path() const { return corpusVideo(name); }
  // r_frame_rate as a number, 0 when absent or 0/0.
  double fpsValue() const {
    const size_t slash = fps.find('/');
    const double num = std::atof(fps.substr(0, slash).c_str());
    const double den = slash == std::string::npos ? 1.0 : std::atof(fps.substr(slash + 1).c_str());
    return num > 0 && den > 0 ? num / den : 0.0;
  }
  bool notesSay(const std::string& word) const { return notes.find(word) != std::string::npos; }
};

// Parses corpus.tsv (header line naming the columns, then one tab-separated row per file).
// Columns are found by their header names, so added columns do not break it. Throws
// std::runtime_error naming the file when it is missing or malformed.
inline std::vector<CorpusEntry> readCorpusTable(const fs::path& tsv) {
  std::ifstream in(tsv);
  if (!in)
    throw std::runtime_error(tsv.string() + ": cannot open (is the corpus_generate fixture run?)");
  auto split = [](const std::string& line) {
    std::vector<std::string> cells;
    std::string cell;
    std::istringstream s(line);
    while (std::getline(s, cell, '\t')) cells.push_back(cell);
    if (!line.empty() && line.back() == '\t') cells.emplace_back();
    return cells;
  };
  std::string line;
  if (!std::getline(in, line)) throw std::runtime_error(tsv.string() + ": empty");
  const std::vector<std::string> header = split(line);
  auto column = [&](const std::string& name) {
    for (size_t i = 0; i < header.size(); ++i)
      if (header[i] == name) return i;
    throw std::runtime_error(tsv.string() + ": no column '" + name + "'");
  };
  const size_t cName = column("name"), cFrames = column("frames"), cW = column("width"),
               cH = column("height"), cDw = column("display_width"), cDh = column("display_height"),
               cRot = column("rotation"), cFps = column("fps"), cCodec = column("codec"),
               cPix = column("pix_fmt"), cStart = column("start_time"), cKind = column("kind"),
               cNotes = column("notes");
  auto integer = [](const std::string& s, int64_t empty) {
    return s.empty() ? empty : static_cast<int64_t>(std::stoll(s));
  };
  std::vector<CorpusEntry> rows;
  int lineNo = 1;
  while (std::getline(in, line)) {
    ++lineNo;
    if (line.empty()) continue;
    std::vector<std::string> c = split(line);
    c.resize(std::max(c.size(), header.size()));
    try {
      CorpusEntry e;
      e.name = c[cName];
      e.frames = integer(c[cFrames], -1);
      e.width = static_cast<int>(integer(c[cW], 0));
      e.height = static_cast<int>(integer(c[cH], 0));
      e.displayWidth = static_cast<int>(integer(c[cDw], 0));
      e.displayHeight = static_cast<int>(integer(c[cDh], 0));
      e.rotation = static_cast<int>(integer(c[cRot], 0));
      e.fps = c[cFps];
      e.codec = c[cCodec];
      e.pixFmt = c[cPix];
      e.startTime = c[cStart].empty() ? 0.0 : std::stod(c[cStart]);
      e.kind = c[cKind];
      e.notes = c[cNotes];
      rows.push_back(std::move(e));
    } catch (const std::exception& ex) {
      throw std::runtime_error(tsv.string() + ":" + std::to_string(lineNo) + ": " + ex.what());
    }
  }
  return rows;
}

// corpus.tsv of corpusDir(), read once per process.
inline const std::vector<CorpusEntry>& corpus() {
  static const std::vector<CorpusEntry> rows = readCorpusTable(corpusDir() / "corpus.tsv");
  return rows;
}

// The row named `name`; throws std::runtime_error when the corpus has no such file.
inline const CorpusEntry& corpusEntry(const std::string& name) {
  for (const CorpusEntry& e : corpus())
    if (e.name == name) return e;
  throw std::runtime_error("corpus.tsv has no file '" + name + "'");
}

// A fresh folder under the system temp dir, removed when the object goes out of scope.
class ScratchDir {
 public:
  ScratchDir() {
    std::random_device rd;
    path_ =
        fs::temp_directory_path() / ("vidfeat-test-" + std::to_string(rd()) + std::to_string(rd()));
    fs::create_directories(path_);
  }
  ~ScratchDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const fs::path& path() const { return path_; }
  fs::path operator/(const std::string& name) const { return path_ / name; }

 private:
  fs::path path_;
};

// Runs a shell command; returns its exit status.
inline int run(const std::string& cmd) {
  int rc = std::system(cmd.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

// Writes a video with the ffmpeg CLI. `filter` is an lavfi source such as
// "testsrc2=size=64x48:rate=30:duration=2"; `codecArgs` e.g. "-c:v libx264 -pix_fmt yuv420p".
inline void makeVideo(const fs::path& out, const std::string& filter,
                      const std::string& codecArgs = "-c:v libx264 -pix_fmt yuv420p") {
  std::string cmd = "ffmpeg -nostdin -loglevel error -y -f lavfi -i '" + filter + "' " + codecArgs +
                    " '" + out.string() + "'";
  ASSERT_EQ(run(cmd), 0) << cmd;
}

}  // namespace vidfeat::testing
