#include "kernels/cpu_allocator.h"

#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>
#include <torch/version.h>

#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <string>
#include <unordered_map>
#include <vector>

namespace vidfeat::model {

namespace {

constexpr size_t kAlignment = 64;       // as c10's default CPU allocator (AVX-512 loads)
constexpr size_t kHeader = kAlignment;  // the block's size, in front of the data
constexpr size_t kMinCached = size_t(1) << 20;
constexpr size_t kPage = 4096;

// Never destroyed: tensors freed during static destruction still find it.
struct Cache {
  std::mutex mutex;
  std::unordered_map<size_t, std::vector<void*>> free;  // by block size (data bytes)
  CpuCacheStats stats;
};
Cache& cache() {
  static Cache* c = new Cache;
  return *c;
}

size_t blockSize(size_t n) { return n < kMinCached ? n : (n + kPage - 1) / kPage * kPage; }

void* allocateBlock(size_t size) {
  void* raw = nullptr;
  if (posix_memalign(&raw, kAlignment, size + kHeader) != 0 || !raw) throw std::bad_alloc();
  std::memcpy(raw, &size, sizeof size);
  return static_cast<char*>(raw) + kHeader;
}

void* acquire(size_t n) {
  if (n == 0) return nullptr;
  const size_t size = blockSize(n);
  if (size >= kMinCached) {
    Cache& c = cache();
    std::lock_guard<std::mutex> lock(c.mutex);
    c.stats.inUseBytes += size;
    if (c.stats.inUseBytes > c.stats.peakInUseBytes) c.stats.peakInUseBytes = c.stats.inUseBytes;
    auto it = c.free.find(size);
    if (it != c.free.end() && !it->second.empty()) {
      void* p = it->second.back();
      it->second.pop_back();
      c.stats.cachedBytes -= size;
      ++c.stats.hits;
      return p;
    }
    ++c.stats.misses;
  }
  return allocateBlock(size);
}

void release(void* p) {
  if (!p) return;
  char* raw = static_cast<char*>(p) - kHeader;
  size_t size = 0;
  std::memcpy(&size, raw, sizeof size);
  if (size >= kMinCached) {
    Cache& c = cache();
    std::lock_guard<std::mutex> lock(c.mutex);
    c.stats.inUseBytes -= size;
    // Keep it unless the cache would exceed the peak in use.
    if (c.stats.cachedBytes + size <= c.stats.peakInUseBytes) {
      c.free[size].push_back(p);
      c.stats.cachedBytes += size;
      return;
    }
  }
  std::free(raw);
}

class CachingCpuAllocator final : public c10::Allocator {
 public:
#if TORCH_VERSION_MAJOR >= 2
  c10::DataPtr allocate(size_t n) override {
#else
  c10::DataPtr allocate(size_t n) const override {
#endif
    void* p = acquire(n);
    return {p, p, &release, c10::Device(c10::DeviceType::CPU)};
  }
  c10::DeleterFnPtr raw_deleter() const override { return &release; }
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 3)
  void copy_data(void* dest, const void* src, std::size_t count) const override {
    default_copy_data(dest, src, count);
  }
#endif
};

}  // namespace

bool installCachingCpuAllocator() {
#if defined(__SANITIZE_ADDRESS__)
  return false;
#else
  static const bool installed = [] {
    const char* v = std::getenv("VIDFEAT_CPU_CACHE");
    if (v && std::string(v) == "0") return false;
    // Never destroyed: LibTorch keeps the pointer for the life of the process.
    c10::SetCPUAllocator(new CachingCpuAllocator, /*priority=*/1);
    return true;
  }();
  return installed;
#endif
}

CpuCacheStats cpuCacheStats() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  return c.stats;
}

}  // namespace vidfeat::model
