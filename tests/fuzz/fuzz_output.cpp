// libFuzzer target: the validation of an untrusted vidfeat output, the path every command that
// opens an existing file takes (inspect, merge, export, locate, resume): readStoreSummary through
// StoreReader, then every complete video's rows read back as merge and export read them.
//
// The input is the whole file. It stays in memory: the bytes go into a memfd, which HDF5 opens by
// its /proc/self/fd path with its ordinary (sec2) driver, so the code under test is exactly the
// one that opens a file on disk. Any exception is a clean refusal; a crash, a sanitizer report, an
// allocation over libFuzzer's -malloc_limit_mb or a run over -timeout is a bug (run_fuzz.sh).
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <exception>
#include <new>
#include <string>
#include <vector>

#include "vidfeat/store/feature_store.h"

namespace {

int memoryFile() {
  static const int fd = memfd_create("vidfeat-fuzz-output", 0);
  if (fd < 0) std::abort();
  return fd;
}

void fill(int fd, const uint8_t* data, size_t size) {
  if (ftruncate(fd, 0) != 0) std::abort();
  for (size_t done = 0; done < size;) {
    const ssize_t n = pwrite(fd, data + done, size - done, off_t(done));
    if (n <= 0) std::abort();
    done += size_t(n);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const int fd = memoryFile();
  fill(fd, data, size);
  const std::string path = "/proc/self/fd/" + std::to_string(fd);
  try {
    vidfeat::StoreReader reader(path);
    const vidfeat::StoreSummary& summary = reader.summary();
    std::vector<vidfeat::SegmentRecord> segments;
    std::vector<float> features;
    for (const vidfeat::StoredVideo& video : summary.videos) {
      if (video.status != vidfeat::VideoStatus::Complete || video.segmentCount == 0) continue;
      reader.readRows(video.firstRow, video.segmentCount, segments, features);
      if (segments.size() != size_t(video.segmentCount) ||
          features.size() !=
              size_t(video.segmentCount * summary.meta.crops * summary.meta.featureDim)) {
        std::abort();  // the reader returned other than what it validated
      }
    }
  } catch (const std::bad_alloc&) {
    std::abort();  // memory sized by the file, not refused by the validation: a bug
  } catch (const std::exception&) {
    // a clean refusal
  }
  return 0;
}
