// The caching CPU allocator (model/cpu_allocator.h): freed activation-sized blocks are handed out
// again, small ones are not cached, the cache never exceeds the peak in use, values are intact.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "vidfeat/model/cpu_allocator.h"

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
  for (int i = 1; i <= 8; ++i) { auto t = torch::empty({int64_t(i) << 20}, torch::kFloat32); }
  after = model::cpuCacheStats();
  EXPECT_LE(after.cachedBytes, after.peakInUseBytes);
  // MKL-DNN tensors come from the same allocator and convert back intact.
  auto x = torch::randn({1, 16, 4, 64, 64});
  EXPECT_TRUE(torch::equal(x.to_mkldnn().to_dense(), x));
}
