#pragma once
// Pillow itself as the reference of DATA.TEST_RESIZE pil_bicubic (test_pil_resize, and the shared
// videos' suite): images written as binary PPM, resized by Debian's python3 with python3-pil
// (tools/setup.sh installs it) as torchvision's Resize calls it, read back.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "test_support.h"

namespace vidfeat::decodetest {

namespace fs = std::filesystem;

struct Image {
  int w = 0, h = 0;
  std::vector<uint8_t> rgb;
};

inline void writePpm(const fs::path& p, const Image& im) {
  std::ofstream f(p, std::ios::binary);
  f << "P6\n" << im.w << " " << im.h << "\n255\n";
  f.write(reinterpret_cast<const char*>(im.rgb.data()), std::streamsize(im.rgb.size()));
}

inline Image readPpm(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::string magic;
  int maxval = 0;
  Image im;
  f >> magic >> im.w >> im.h >> maxval;
  f.get();
  EXPECT_EQ(magic, "P6");
  EXPECT_EQ(maxval, 255);
  im.rgb.resize(size_t(im.w) * size_t(im.h) * 3);
  f.read(reinterpret_cast<char*>(im.rgb.data()), std::streamsize(im.rgb.size()));
  EXPECT_TRUE(f) << p;
  return im;
}

// Pillow's Image.resize((w, h), Image.BICUBIC) of each input file, as torchvision's Resize calls
// it.
inline std::vector<Image> pillowResize(const std::vector<Image>& inputs, int w, int h,
                                       const std::string& tag) {
  std::string safe = tag;  // corpus names have spaces and dashes; the folder is a shell argument
  for (char& ch : safe)
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  const fs::path dir = testing::binaryDir() / ("pil_resize_" + safe);
  fs::create_directories(dir);
  std::string list;
  for (size_t i = 0; i < inputs.size(); ++i) {
    writePpm(dir / (std::to_string(i) + ".ppm"), inputs[i]);
    list += (i ? "," : "") + std::to_string(i);
  }
  const std::string script =
      "import sys\nfrom PIL import Image\nd, w, h = sys.argv[1], int(sys.argv[2]), "
      "int(sys.argv[3])\nfor n in sys.argv[4].split(','):\n"
      "    Image.open(f'{d}/{n}.ppm').resize((w, h), Image.BICUBIC)"
      ".save(f'{d}/{n}.out.ppm')\n";
  std::ofstream(dir / "resize.py") << script;
  const std::string cmd = "/usr/bin/python3 " + (dir / "resize.py").string() + " " + dir.string() +
                          " " + std::to_string(w) + " " + std::to_string(h) + " " + list;
  const int rc = std::system(cmd.c_str());
  EXPECT_EQ(rc, 0) << cmd << " (Debian's python3-pil: tools/setup.sh installs it)";
  std::vector<Image> out;
  for (size_t i = 0; i < inputs.size(); ++i)
    out.push_back(readPpm(dir / (std::to_string(i) + ".out.ppm")));
  return out;
}

inline size_t differing(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
  if (a.size() != b.size()) return std::max(a.size(), b.size());
  size_t n = 0;
  for (size_t i = 0; i < a.size(); ++i) n += a[i] != b[i];
  return n;
}

}  // namespace vidfeat::decodetest
