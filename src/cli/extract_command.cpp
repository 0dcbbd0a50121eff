#include <boost/program_options.hpp>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <iostream>

#include "vidfeat/cli/commands.h"
#include "vidfeat/clip/bucket_plan.h"
#include "vidfeat/clip/preprocess.h"
#include "vidfeat/common/error.h"
#include "vidfeat/common/log.h"
#include "vidfeat/config/config.h"
#include "vidfeat/dist/manifest.h"
#include "vidfeat/dist/mpi_session.h"
#include "vidfeat/model/feature_model.h"
#include "vidfeat/pipeline/video_extractor.h"
#include "vidfeat/store/feature_store.h"

namespace vidfeat::cli {

namespace po = boost::program_options;
namespace fs = std::filesystem;

namespace {

struct ExtractArgs {
  std::string config, manifest, output, checkpoint, device = "auto", tail = "repeat";
  std::vector<std::string> sets;
  long long randomWeights = -1;
  int batch = 1, stride = 0, threads = 0, wave = 8;
  double fps = 0.0;
  unsigned long long tailSeed = 0;
  bool overwrite = false;
};

// Rank 0 reads the manifest; the others get the entries (or the error) from it.
std::vector<VideoEntry> shareManifest(const std::string& path, MPI_Comm comm) {
  std::vector<VideoEntry> entries;
  std::string error;
  if (commRank(comm) == 0) {
    try {
      entries = readManifest(path);
    } catch (const std::exception& e) {
      error = e.what();
    }
  }
  int len = int(error.size());
  MPI_Bcast(&len, 1, MPI_INT, 0, comm);
  error.resize(size_t(len));
  MPI_Bcast(error.data(), len, MPI_CHAR, 0, comm);
  if (len > 0) throw Error(error);
  return broadcastEntries(entries, 0, comm);
}

}  // namespace

int extractCommand(const std::vector<std::string>& argv, MPI_Comm comm) {
  ExtractArgs a;
  po::options_description opts(
      "vidfeat extract: decode each video, cut it into clips (NUM_FRAMES frames every SAMPLING_RATE\n"
      "frames), run the model, and write one row of features per clip into one HDF5 file.\n"
      "Run under mpirun/srun for many ranks.\n\noptions");
  opts.add_options()
      ("help,h", "show this help")
      ("config", po::value(&a.config)->required(), "PySlowFast YAML config of the model")
      ("manifest", po::value(&a.manifest)->required(),
       "videos: a text file of paths, or a CSV with a `path` (and optional `video_id`) column")
      ("output", po::value(&a.output)->required(), "HDF5 file to write")
      ("checkpoint", po::value(&a.checkpoint), "model weights (.pyth/.pth/.pkl)")
      ("random-weights", po::value(&a.randomWeights),
       "use seeded random weights instead of a checkpoint (UNTRAINED: for tests and demos)")
      ("device", po::value(&a.device)->default_value("auto"), "cpu, cuda, cuda:N or auto")
      ("batch", po::value(&a.batch)->default_value(1), "clips per forward pass")
      ("tail", po::value(&a.tail)->default_value("repeat"),
       "last partial clip: repeat (the last frame), sample (seeded random tail frames), drop")
      ("tail-seed", po::value(&a.tailSeed)->default_value(0), "seed of --tail sample")
      ("stride", po::value(&a.stride)->default_value(0),
       "frames between clip starts (default NUM_FRAMES x SAMPLING_RATE; smaller overlaps)")
      ("fps", po::value(&a.fps)->default_value(0.0),
       "resample to this frame rate by presentation time before cutting clips (0 = native)")
      ("set", po::value(&a.sets)->composing(), "override a config value: --set KEY=VALUE (repeatable)")
      ("threads", po::value(&a.threads)->default_value(0), "LibTorch threads per rank (0 = default)")
      ("wave", po::value(&a.wave)->default_value(8), "videos each rank finishes between collective writes")
      ("overwrite", po::bool_switch(&a.overwrite), "replace an existing output file");
  po::variables_map vm;
  std::vector<std::string> args = argv;
  po::store(po::command_line_parser(args).options(opts).style(po::command_line_style::unix_style).run(), vm);
  if (vm.count("help")) {
    if (commRank(comm) == 0) std::cout << opts << "\n";
    return 0;
  }
  po::notify(vm);

  if (a.checkpoint.empty() == (a.randomWeights < 0)) {
    throw Error("give exactly one of --checkpoint FILE or --random-weights SEED (weights are never chosen silently)");
  }
  if (a.batch < 1) throw Error("--batch must be >= 1");
  if (a.wave < 1) throw Error("--wave must be >= 1");
  if (fs::exists(a.output) && !a.overwrite) {
    throw Error(a.output + ": output exists; pass --overwrite to replace it (resuming arrives with the distributed-extraction work)");
  }

  const auto t0 = std::chrono::steady_clock::now();
  const int rank = commRank(comm), size = commSize(comm);
  Config cfg = Config::load(a.config, a.sets);

  ExtractOptions eo;
  eo.buckets.numFrames = cfg.get<int>("DATA.NUM_FRAMES");
  eo.buckets.samplingRate = cfg.get<int>("DATA.SAMPLING_RATE");
  eo.buckets.stride = a.stride;
  eo.buckets.tail = parseTailPolicy(a.tail);
  eo.buckets.validate();
  eo.preprocess = PreprocessSpec::fromConfig(cfg);
  eo.targetFps = a.fps;
  eo.tailSeed = a.tailSeed;
  eo.batch = a.batch;

  const auto entries = shareManifest(a.manifest, comm);

  setComputeThreads(a.threads);
  const std::string device = resolveDevice(a.device);
  auto model = FeatureModel::build(cfg, device);
  std::string weights, checkpointSha256;
  if (!a.checkpoint.empty()) {
    // Every rank reads the file itself: no broadcast of hundreds of MB, and a rank that cannot
    // read it fails the job (main() aborts the communicator) rather than extracting garbage.
    const CheckpointReport report = model->loadCheckpoint(a.checkpoint, cfg.get<std::string>("TEST.CHECKPOINT_TYPE"));
    weights = "checkpoint";
    checkpointSha256 = report.sha256;
    if (rank == 0) {
      spdlog::info("checkpoint {}: {}, {} tensors, sha256 {}", a.checkpoint, checkpointFormatName(report.format),
                   report.tensorsLoaded, report.sha256);
      for (const auto& note : report.notes) spdlog::info("checkpoint: {}", note);
    }
  } else {
    model->randomizeWeights(uint64_t(a.randomWeights));
    weights = "random (UNTRAINED), seed " + std::to_string(a.randomWeights);
    if (rank == 0) {
      spdlog::warn("UNTRAINED MODEL: seeded random weights (seed {}); these features are for tests and "
                   "demos, not research", a.randomWeights);
    }
  }

  FileMetadata meta;
  meta.modelName = fs::path(a.config).stem().string();
  meta.modelArch = cfg.get<std::string>("MODEL.ARCH");
  meta.configYaml = cfg.dump();
  meta.checkpointPath = a.checkpoint;
  meta.checkpointSha256 = checkpointSha256;
  meta.weights = weights;
  meta.tailPolicy = tailPolicyName(eo.buckets.tail);
  meta.featureName = "activation entering the head projection, mean over H and W, flattened over T*C";
  meta.featureDim = model->featureDim();
  meta.numFrames = eo.buckets.numFrames;
  meta.samplingRate = eo.buckets.samplingRate;
  meta.stride = int32_t(eo.buckets.step());
  meta.targetFps = a.fps;

  if (rank == 0) {
    spdlog::info("{} videos, {} rank(s), model {} ({}), feature dim {}, device {}, clips of {}x{} at {}px",
                 entries.size(), size, meta.modelName, meta.modelArch, meta.featureDim, device,
                 eo.buckets.numFrames, eo.buckets.samplingRate, eo.preprocess.cropSize);
  }
  FeatureStore store = FeatureStore::create(a.output, comm, meta);
  const int64_t firstRow = store.addVideos(entries);

  // This rank's share: every size-th video (balanced sharing arrives with the distributed work).
  std::vector<int64_t> share;
  for (int64_t i = rank; i < int64_t(entries.size()); i += size) share.push_back(i);
  const int64_t maxShare = (int64_t(entries.size()) + size - 1) / size;
  const int64_t waves = (maxShare + a.wave - 1) / a.wave;

  VideoExtractor extractor(*model, eo);
  int64_t done = 0, failed = 0, segments = 0;
  for (int64_t w = 0; w < waves; ++w) {
    std::vector<VideoResult> results;
    for (int64_t j = w * a.wave; j < std::min<int64_t>((w + 1) * a.wave, int64_t(share.size())); ++j) {
      const auto& e = entries[size_t(share[size_t(j)])];
      VideoResult r = extractor.run(e, firstRow + share[size_t(j)]);
      if (r.status == VideoStatus::Failed) {
        ++failed;
      } else {
        ++done;
        segments += int64_t(r.segments.size());
        spdlog::info("{}: {} frames, {} segments", e.videoId, r.decodedFrames, r.segments.size());
      }
      results.push_back(std::move(r));
    }
    store.writeWave(results);  // collective: every rank joins every wave
  }
  store.close();

  long long counts[4] = {done, failed, segments, extractor.clipsProcessed()};
  long long totals[4];
  MPI_Reduce(counts, totals, 4, MPI_LONG_LONG, MPI_SUM, 0, comm);
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (rank == 0) {
    spdlog::info("done: {} videos extracted, {} failed, {} segments, {:.1f} s, {:.2f} clips/s -> {}",
                 totals[0], totals[1], totals[2], wall, wall > 0 ? totals[3] / wall : 0.0, a.output);
    if (weights.rfind("random", 0) == 0) spdlog::warn("reminder: {} holds features of an UNTRAINED model", a.output);
  }
  return 0;
}

}  // namespace vidfeat::cli
