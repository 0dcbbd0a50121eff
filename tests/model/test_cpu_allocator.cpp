// The caching CPU allocator (model/cpu_allocator.h): freed activation-sized blocks are handed out
// again, small ones are not cached, the cache never exceeds the peak in use, values are intact;
// MKL-DNN tensors' memory is served by it too.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "kernels/cpu_allocator.h"

using namespace vidfeat;

TEST(CachingCpuAllocator, ReusesFreedBlocksWithinThePeak) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "not installed in sanitizer builds";
#endif
  if (!model::installCachingCpuAllocator()) GTEST_SKIP() << "VIDFEAT_CPU_CACHE=0";
  const auto before = model::cpuCacheStats();
  void* first = nullptr;
  {
    auto t = torch::empty({1 << 20}, torch::kFloat32);  // 4 MiB
    first = t.data_ptr();
    t.fill_(3.0f);
  }
  auto again = torch::empty({1 << 20}, torch::kFloat32);
  EXPECT_EQ(again.data_ptr(), first);  // the same block, from the cache
  auto after = model::cpuCacheStats();
  EXPECT_EQ(after.hits, before.hits + 1);
  EXPECT_GE(after.inUseBytes, size_t(4) << 20);
  // Values written into a reused block are the tensor's own.
  again.copy_(torch::arange(1 << 20, torch::kFloat32));
  EXPECT_EQ(again[12345].item<float>(), 12345.0f);
  // Blocks under 1 MiB are not cached.
  const auto small = model::cpuCacheStats();
  { auto s = torch::ones({1000}); }
  EXPECT_EQ(model::cpuCacheStats().cachedBytes, small.cachedBytes);
  // The cache never holds more than the peak of memory in use.
  for (int i = 1; i <= 8; ++i) {
    auto t = torch::empty({int64_t(i) << 20}, torch::kFloat32);
  }
  after = model::cpuCacheStats();
  EXPECT_LE(after.cachedBytes, after.peakInUseBytes);
}

// MKL-DNN (blocked) tensors: LibTorch's ideep engine allocates through c10's CPU allocator
// (raw_allocate), so their memory is served and counted by this one: while one is alive the
// bytes in use grow by at least its size, freeing it gives them back, and a second one of the
// same shape reuses the cached block. Values survive the round trip.
TEST(CachingCpuAllocator, ServesMkldnnTensors) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "not installed in sanitizer builds";
#endif
  if (!model::installCachingCpuAllocator()) GTEST_SKIP() << "VIDFEAT_CPU_CACHE=0";
  auto x = torch::randn({1, 16, 8, 64, 64});  // 2 MiB of floats
  const size_t bytes = size_t(x.numel()) * sizeof(float);
  const auto before = model::cpuCacheStats();
  {
    auto m = x.to_mkldnn();
    const auto alive = model::cpuCacheStats();
    EXPECT_GE(alive.inUseBytes, before.inUseBytes + bytes)
        << "the MKL-DNN tensor's memory is not this allocator's";
    EXPECT_GT(alive.hits + alive.misses, before.hits + before.misses)
        << "no cacheable allocation went through it";
    EXPECT_TRUE(torch::equal(m.to_dense(), x));
  }
  const auto freed = model::cpuCacheStats();
  EXPECT_EQ(freed.inUseBytes, before.inUseBytes) << "freeing it gives the bytes back";
  {
    auto again = x.to_mkldnn();
    const auto reused = model::cpuCacheStats();
    EXPECT_GT(reused.hits, freed.hits) << "the second one reuses the cached block";
    EXPECT_TRUE(torch::equal(again.to_dense(), x));
  }
}
