// libFuzzer target for the manifest reader (CSV with RFC 4180 quoting, a BOM, plain lists, ids
// and paths too long for the output), built by run_fuzz.sh with clang -fsanitize=fuzzer,address
// against src/run/manifest.cpp. The input is written to a file in a private folder and read as
// a manifest (parseManifest + checkManifestFiles, which only stats the paths it names).
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

#include "vidfeat/common/error.h"
#include "vidfeat/run/manifest.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = [] {
    const auto dir = std::filesystem::temp_directory_path() /
                     ("vidfeat-fuzz-manifest-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    return (dir / "m.csv").string();
  }();
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), std::streamsize(size));
  }
  try {
    vidfeat::Manifest m = vidfeat::parseManifest(path);
    vidfeat::checkManifestFiles(m);
  } catch (const vidfeat::Error&) {
  }
  return 0;
}
