// vidfeat verify: does this checkpoint, in vidfeat, give the feature PySlowFast gives?
#include <cstdio>

#include "options.h"
#include "vidfeat/cli/commands.h"
#include "vidfeat/common/error.h"
#include "vidfeat/common/log.h"
#include "vidfeat/config/config.h"
#include "vidfeat/model/feature_model.h"

namespace vidfeat::cli {

int verifyCommand(const std::vector<std::string>& argv) {
  std::string config, checkpoint, io, device;
  std::vector<std::string> sets;
  double tolerance = 1e-4;
  int threads = 0, repeat = 1;
  CommandOptions opts(
      "verify",
      "vidfeat verify: run the model on the inputs stored in an .io.pt file ({\"inputs\": "
      "[pathway\n"
      "tensors], \"feature\": tensor}, as tools/fixtures/ and tools/reference/pysf_ref.py\n"
      "write them) and compare with the stored PySlowFast feature. Exits 1 above the tolerance.");
  opts.add()("config", po::value(&config)->required(), "PySlowFast YAML config of the model")(
      "checkpoint", po::value(&checkpoint)->required(), "model weights (.pyth/.pth/.pkl/.pt)")(
      "io", po::value(&io)->required(), ".io.pt file with the inputs and PySlowFast's feature")(
      "set", po::value(&sets)->composing(),
      "override a config value: --set KEY=VALUE (repeatable)")(
      "device", po::value(&device)->default_value("cpu"), "cpu, cuda, cuda:N or auto")(
      "tolerance", po::value(&tolerance)->default_value(1e-4),
      "largest accepted ||ours - ref|| / ||ref||")("threads", po::value(&threads)->default_value(0),
                                                   "LibTorch threads (0 = default)")(
      "repeat", po::value(&repeat)->default_value(1),
      "timed forwards after the warm-up (the median is printed)");
  if (!opts.parse(argv)) return 0;
  if (repeat < 1) throw Error("--repeat must be >= 1");

  setComputeThreads(threads);
  const Config cfg = Config::load(config, sets);
  auto model = FeatureModel::build(cfg, resolveDevice(device));
  const CheckpointReport report =
      model->loadCheckpoint(checkpoint, cfg.get<std::string>("TEST.CHECKPOINT_TYPE"));
  const auto r = model->verifyIo(io, repeat);
  const bool ok = r.relativeError <= tolerance;
  std::printf("checkpoint   %s (%s, %lld tensors, sha256 %s)\n", checkpoint.c_str(),
              checkpointFormatName(report.format), static_cast<long long>(report.tensorsLoaded),
              report.sha256.c_str());
  std::printf("model        %s, feature dim %lld, device %s\n", model->arch().c_str(),
              static_cast<long long>(model->featureDim()), model->device().c_str());
  std::printf("reference    %s (batch %lld, dim %lld)\n", io.c_str(),
              static_cast<long long>(r.batch), static_cast<long long>(r.featureDim));
  std::printf("rel. error   %.3e  (||ours - ref|| / ||ref||, tolerance %.1e): %s\n",
              r.relativeError, tolerance, ok ? "OK" : "FAILED");
  std::printf("forward      %.4f s", r.forwardSeconds);
  if (r.forwardRuns.size() > 1) {
    std::printf("  (median of %zu:", r.forwardRuns.size());
    for (double s : r.forwardRuns) std::printf(" %.4f", s);
    std::printf(")");
  }
  std::printf("\n");
  return ok ? 0 : 1;
}

}  // namespace vidfeat::cli
