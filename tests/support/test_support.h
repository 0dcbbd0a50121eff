#pragma once
// Helpers shared by the test suites: where the shared real videos are, scratch folders, and
// generating synthetic videos with the ffmpeg command-line tool (tests only; vidfeat itself never
// runs the ffmpeg CLI).
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>

namespace vidfeat::testing {

namespace fs = std::filesystem;

inline fs::path sharedDir() { return fs::path(VIDFEAT_SHARED_DIR); }
inline fs::path sharedVideo(const std::string& name) { return sharedDir() / "videos" / name; }
inline fs::path sourceDir() { return fs::path(VIDFEAT_SOURCE_DIR); }
inline fs::path binaryDir() { return fs::path(VIDFEAT_BINARY_DIR); }

// A fresh folder under the system temp dir, removed when the object goes out of scope.
class ScratchDir {
 public:
  ScratchDir() {
    std::random_device rd;
    path_ = fs::temp_directory_path() / ("vidfeat-test-" + std::to_string(rd()) + std::to_string(rd()));
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
