// Linked into every gtest binary (tests/CMakeLists.txt): a test that calls GTEST_SKIP() leaves its
// reason in <build>/Testing/skipped/<Suite.Name>, which tests/support/print_skipped.py prints after
// the ctest run. <build> is the folder above the test's working directory that holds
// CTestCustom.cmake (ctest runs each test in its own build subfolder).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

namespace {

namespace fs = std::filesystem;

fs::path skipFolder() {
  std::error_code ec;
  for (fs::path p = fs::current_path(ec); !ec && !p.empty(); p = p.parent_path()) {
    if (fs::exists(p / "CTestCustom.cmake", ec)) return p / "Testing" / "skipped";
    if (p == p.root_path()) break;
  }
  return {};
}

class SkipRecorder : public ::testing::EmptyTestEventListener {
  // At the test's end, not in OnTestPartResult: gtest holds its lock there (current_test_info()
  // would deadlock).
  void OnTestEnd(const ::testing::TestInfo& info) override {
    const ::testing::TestResult* result = info.result();
    if (!result || !result->Skipped()) return;
    std::string message;
    for (int i = 0; i < result->total_part_count(); ++i) {
      if (result->GetTestPartResult(i).skipped()) message += result->GetTestPartResult(i).message();
    }
    const fs::path dir = skipFolder();
    if (dir.empty()) return;
    std::error_code ec;
    fs::create_directories(dir, ec);
    // Parametrised names hold '/' (Prefix/Suite.Test/Param): kept in the file name as "%2F".
    std::string name;
    for (char c : std::string(info.test_suite_name()) + "." + info.name())
      name += c == '/' ? "%2F" : std::string(1, c);
    std::ofstream(dir / name) << message << "\n";
  }
};

const bool kInstalled = [] {
  ::testing::UnitTest::GetInstance()->listeners().Append(new SkipRecorder);
  return true;
}();

}  // namespace
