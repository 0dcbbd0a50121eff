#pragma once
// A caching allocator for LibTorch's CPU tensors (MKL-DNN's blocked tensors included: LibTorch
// routes them through the same allocator).
//
// A forward allocates the same activations clip after clip. Through malloc, every block over
// glibc's mmap threshold (at most 32 MiB) is a fresh mmap(): its pages are faulted in, zeroed and
// charged to the cgroup on every forward, then unmapped (SLOWFAST 16x8 R101: ~10 % of the profile
// in the kernel's page-fault path). This allocator keeps freed blocks of 1 MiB and more, by size,
// and hands them out again; smaller blocks go to malloc as before. The cache never holds more than
// the peak of memory in use (so a process holds at most twice its peak), and memory is returned
// when it would.
//
// Installed once per process by installCachingCpuAllocator() (FeatureModel::build calls it); not in
// sanitizer builds (ASan must see every free), nor with VIDFEAT_CPU_CACHE=0 in the environment.
#include <cstddef>

namespace vidfeat::model {

struct CpuCacheStats {
  size_t hits = 0, misses = 0;  // allocations of cacheable size served from / not from the cache
  size_t inUseBytes = 0, peakInUseBytes = 0, cachedBytes = 0;
};

// Returns whether the caching allocator is (now) LibTorch's CPU allocator.
bool installCachingCpuAllocator();
CpuCacheStats cpuCacheStats();

}  // namespace vidfeat::model
