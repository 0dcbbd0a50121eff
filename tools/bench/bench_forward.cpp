// Benchmark (tools/bench, not a test): times one model's forward in the three ways the model code
// can run it, interleaved, so a busy machine slows all three alike. Wall and process CPU seconds
// per forward (min over rounds), relative error of each against the .io.pt's stored PySlowFast
// feature.
//   bench_forward CONFIG CKPT IO [ROUNDS] [THREADS] [--set KEY=VALUE ...]
// Modes: plain (two modules per conv+BN, dense), folded (dense), folded+blocked (MKL-DNN layout).
// VIDFEAT_PROFILE=FILE in the environment: one more folded+blocked forward at the end under
// LibTorch's profiler, its per-op trace written to FILE (Chrome trace JSON).
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/profiler_legacy.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <limits>
#include <string>
#include <vector>

#include "checkpoint/state_dict.h"
#include "kernels/conv_bn.h"
#include "kernels/cpu_allocator.h"
#include "networks/video_net.h"
#include "vidfeat/config/config.h"

using namespace vidfeat;

static double cpuNow() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr,
                 "usage: bench_forward CONFIG CKPT IO [ROUNDS] [THREADS] [KEY=VALUE ...]\n");
    return 2;
  }
  const int rounds = argc > 4 ? std::stoi(argv[4]) : 3;
  const int threads = argc > 5 ? std::stoi(argv[5]) : 2;
  std::vector<std::string> sets(argv + std::min(argc, 6), argv + argc);
  at::set_num_threads(threads);
  model::installCachingCpuAllocator();  // as vidfeat extract / verify run
  auto cfg = Config::load(argv[1], sets);
  auto net = model::buildVideoNet(cfg);
  net->eval();
  auto dict = model::readStateDict(argv[2]);
  model::dropIgnoredKeys(*net, dict);  // CLIP's text tower
  model::applyStateDict(*net, dict);
  auto io = model::readIoFile(argv[3]);
  c10::InferenceMode guard;
  std::vector<torch::Tensor> in;
  for (auto& t : io.inputs) in.push_back(t.to(torch::kFloat32));
  auto ref = io.feature.to(torch::kFloat64);
  const char* names[] = {"plain", "folded", "blocked"};
  double wall[3], cpu[3], err[3];
  std::fill(wall, wall + 3, std::numeric_limits<double>::infinity());
  std::fill(cpu, cpu + 3, std::numeric_limits<double>::infinity());
  for (int r = 0; r < rounds; ++r) {
    for (int m = 0; m < 3; ++m) {
      model::setBlockedLayout(m == 2);
      model::foldBatchNorms(*net, m > 0);
      net->forwardFeatures(in, false);  // warm-up
      const double c0 = cpuNow();
      const auto t0 = std::chrono::steady_clock::now();
      auto f = net->forwardFeatures(in, false).features.to(torch::kFloat64);
      wall[m] = std::min(
          wall[m], std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      cpu[m] = std::min(cpu[m], cpuNow() - c0);
      err[m] = (f - ref).norm().item<double>() / ref.norm().item<double>();
    }
  }
  if (const char* trace = std::getenv("VIDFEAT_PROFILE")) {
    torch::autograd::profiler::RecordProfile profile(std::string{trace});
    net->forwardFeatures(in, false);
  }
  std::printf("{");
  for (int m = 0; m < 3; ++m) {
    std::printf("\"%s\": {\"wall\": %.4f, \"cpu\": %.4f, \"rel_err\": %.3g}%s", names[m], wall[m],
                cpu[m], err[m], m < 2 ? ", " : "");
  }
  std::printf("}\n");
  return 0;
}
