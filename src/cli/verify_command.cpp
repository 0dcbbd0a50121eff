// vidfeat verify: does this checkpoint, in vidfeat, give the feature PySlowFast gives?
#include <boost/program_options.hpp>

#include <cstdio>
#include <iostream>

#include "vidfeat/cli/commands.h"
#include "vidfeat/common/error.h"
#include "vidfeat/common/log.h"
#include "vidfeat/config/config.h"
#include "vidfeat/model/feature_model.h"

namespace vidfeat::cli {

namespace po = boost::program_options;

int verifyCommand(const std::vector<std::string>& argv) {
  std::string config, checkpoint, io, device;
  std::vector<std::string> sets;
  double tolerance = 1e-4;
  int threads = 0, repeat = 1;
  po::options_description opts(
      "vidfeat verify: run the model on the inputs stored in an .io.pt file ({\"inputs\": [pathway\n"
      "tensors], \"feature\": tensor}, as tools/fixtures/ and tools/reference/pysf_ref.py\n"
      "write them) and compare with the stored PySlowFast feature. Exits 1 above the tolerance.\n\noptions");
  opts.add_options()
      ("help,h", "show this help")
      ("config", po::value(&config)->required(), "PySlowFast YAML config of the model")
      ("checkpoint", po::value(&checkpoint)->required(), "model weights (.pyth/.pth/.pkl)")
      ("io", po::value(&io)->required(), ".io.pt file with the inputs and PySlowFast's feature")
      ("set", po::value(&sets)->composing(), "override a config value: --set KEY=VALUE (repeatable)")
      ("device", po::value(&device)->default_value("cpu"), "cpu, cuda, cuda:N or auto")
      ("tolerance", po::value(&tolerance)->default_value(1e-4), "largest accepted ||ours - ref|| / ||ref||")
      ("threads", po::value(&threads)->default_value(0), "LibTorch threads (0 = default)")
      ("repeat", po::value(&repeat)->default_value(1), "timed forwards after the warm-up (the median is printed)");
  po::variables_map vm;
  po::store(po::command_line_parser(argv).options(opts).style(po::command_line_style::unix_style).run(), vm);
  if (vm.count("help")) {
    std::cout << opts << "\n";
    return 0;
  }
  po::notify(vm);
  if (repeat < 1) throw Error("--repeat must be >= 1");

  setComputeThreads(threads);
  const Config cfg = Config::load(config, sets);
  auto model = FeatureModel::build(cfg, resolveDevice(device));
  const CheckpointReport report = model->loadCheckpoint(checkpoint, cfg.get<std::string>("TEST.CHECKPOINT_TYPE"));
  const auto r = model->verifyIo(io, repeat);
  const bool ok = r.relativeError <= tolerance;
  std::printf("checkpoint   %s (%s, %lld tensors, sha256 %s)\n", checkpoint.c_str(), checkpointFormatName(report.format),
              static_cast<long long>(report.tensorsLoaded), report.sha256.c_str());
  std::printf("model        %s, feature dim %lld, device %s\n", model->arch().c_str(),
              static_cast<long long>(model->featureDim()), model->device().c_str());
  std::printf("reference    %s (batch %lld, dim %lld)\n", io.c_str(), static_cast<long long>(r.batch),
              static_cast<long long>(r.featureDim));
  std::printf("rel. error   %.3e  (||ours - ref|| / ||ref||, tolerance %.1e): %s\n", r.relativeError, tolerance,
              ok ? "OK" : "FAILED");
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
