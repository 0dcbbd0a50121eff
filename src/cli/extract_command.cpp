#include <fmt/core.h>
#include <sched.h>

#include <algorithm>
#include <filesystem>
#include <memory>
#include <set>
#include <thread>
#include <tuple>

#include "clip_options.h"
#include "failure_report.h"
#include "options.h"
#include "vidfeat/cli/commands.h"
#include "vidfeat/common/error.h"
#include "vidfeat/common/log.h"
#include "vidfeat/config/config.h"
#include "vidfeat/decode/video_decoder.h"
#include "vidfeat/model/feature_model.h"
#include "vidfeat/mpi/mpi_session.h"
#include "vidfeat/run/extraction.h"
#include "vidfeat/run/output_lock.h"
#include "vidfeat/run/run_metadata.h"
#include "vidfeat/run/stop_signal.h"
#include "vidfeat/store/feature_store.h"
#include "vidfeat/zoo/checkpoint_cache.h"
#include "vidfeat/zoo/model_zoo.h"

namespace vidfeat::cli {

namespace {

// Warns when this process may run on fewer cores than the LibTorch threads it starts: Open MPI
// 4.1 binds each rank to ONE core when it starts 2 ranks or fewer, whatever --threads says, and
// the threads (FFmpeg's too) then share that core.
void warnIfFewerCores(int threads, int rank) {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) return;
  const int cores = CPU_COUNT(&set);
  if (cores >= threads) return;
  spdlog::warn(
      "rank {}: {} LibTorch thread(s) but this process may run on only {} core(s) (its CPU "
      "affinity); the threads will share them. Under Open MPI give each rank its cores: mpirun "
      "--map-by slot:PE={} --bind-to core ..., or --bind-to none",
      rank, threads, cores, threads);
}

}  // namespace

namespace fs = std::filesystem;

namespace {

struct ExtractArgs {
  // --model / --config / --checkpoint: once each for one model; several models (one decode,
  // their features side by side) repeat --model (or --config) once per model, with one
  // --checkpoint per model or none.
  std::vector<std::string> models, configs, checkpoints;
  std::string manifest, output, device = "auto", decodePriority = "normal";
  std::vector<std::string> sets;
  long long randomWeights = -1;
  int batch = 1, queue = 0, threads = 0, wave = 256;
  double waveMegabytes = 256.0, waveSeconds = 60.0, videoTimeout = -1.0, watchdog = 600.0;
  ClipArgs clip;
  bool overwrite = false, skipInvalid = false, retryFailed = false;
  std::string shard = "0/1";
  std::string precision = "fp32", decodeDevice = "cpu";
};

void declareOptions(CommandOptions& opts, ExtractArgs& a) {
  opts.add()(
      "model", po::value(&a.models)->composing(),
      "a published model by name (`vidfeat models`): its config from configs/ and its checkpoint, "
      "downloaded once into the cache; repeat it for several models from one decode (each row: "
      "their features side by side; needs --clip-seconds)")(
      "config", po::value(&a.configs)->composing(),
      "PySlowFast YAML config of the model (default with --model: its own); repeatable, one per "
      "model, instead of --model")(
      "manifest", po::value(&a.manifest)->required(),
      "videos: a text file of paths, or a CSV with a `path` (and optional `video_id`) column")(
      "output", po::value(&a.output)->required(), "HDF5 file to write")(
      "checkpoint", po::value(&a.checkpoints)->composing(),
      "model weights (.pyth/.pth/.pkl/.pt); with several models, one per model in their order")(
      "random-weights", po::value(&a.randomWeights),
      "use seeded random weights instead of a checkpoint (UNTRAINED: for tests and demos)")(
      "device", po::value(&a.device)->default_value("auto"), "cpu, cuda, cuda:N or auto")(
      "precision", po::value(&a.precision)->default_value("fp32"),
      "forward pass arithmetic: fp32 (PySlowFast's), or bf16 / fp16 (weights and input cast on the "
      "device; "
      "feature error in docs/MODELS.md; fp16 needs a CUDA device)")(
      "decode-device", po::value(&a.decodeDevice)->default_value("cpu"),
      "cpu, or cuda: decode with NVDEC through FFmpeg (on the model's GPU when it has one); falls "
      "back to "
      "the CPU with a warning when there is no CUDA device or NVDEC cannot decode a stream")(
      "batch", po::value(&a.batch)->default_value(1),
      "clips per forward pass (clips of several videos may share one)")(
      "decode-priority", po::value(&a.decodePriority)->default_value("normal"),
      "the decode worker's CPU scheduling: normal, or idle (Linux SCHED_IDLE: it runs on cores the "
      "model leaves "
      "free and is preempted by the model at once)")(
      "queue", po::value(&a.queue)->default_value(0),
      "decoded, preprocessed clips a rank may hold ready ahead of the model (0 = 2 x --batch); "
      "bounds memory")("set", po::value(&a.sets)->composing(),
                       "override a config value: --set KEY=VALUE (repeatable)")(
      "threads", po::value(&a.threads)->default_value(0),
      "LibTorch threads per rank (0 = the node's cores / ranks on the node)")(
      "wave", po::value(&a.wave)->default_value(256),
      "a rank asks for a collective write once it holds this many finished videos")(
      "wave-mb", po::value(&a.waveMegabytes)->default_value(256.0),
      "...or this many MB of their features")("wave-seconds",
                                              po::value(&a.waveSeconds)->default_value(60.0),
                                              "...or once it has held finished videos this long")(
      "shard", po::value(&a.shard)->default_value("0/1"),
      "K/N: extract only the K-th of N contiguous slices of the manifest (SLURM arrays)")(
      "skip-invalid", po::bool_switch(&a.skipInvalid),
      "record manifest problems (missing files, duplicate ids) as failed instead of stopping")(
      "retry-failed", po::bool_switch(&a.retryFailed), "on resume, attempt failed videos again")(
      "video-timeout", po::value(&a.videoTimeout)->default_value(-1.0, "auto"),
      "fail a video still decoding after this many seconds (0 = no limit; auto: 1 hour, or 1 s per "
      "100 KB "
      "of the file when that is longer)")("watchdog", po::value(&a.watchdog)->default_value(600.0),
                                          "abort the whole job with a message when no collective "
                                          "step (a wave-sync round, which every rank joins "
                                          "between two forward passes, or a wave) completes for "
                                          "this many seconds: a rank is stuck (0 = off)")(
      "overwrite", po::bool_switch(&a.overwrite),
      "start afresh even if the output exists (default: resume it)");
  declareClipOptions(opts, a.clip);
}

// "K/N" -> {K, N}.
std::pair<int, int> parseShard(const std::string& text) {
  auto slash = text.find('/');
  try {
    if (slash == std::string::npos) throw std::invalid_argument("no slash");
    return {std::stoi(text.substr(0, slash)), std::stoi(text.substr(slash + 1))};
  } catch (const std::exception&) {
    throw Error("--shard expects K/N (e.g. 0/4), got '" + text + "'");
  }
}

// One model of the run: its name in the output, its config and its checkpoint (empty with
// --random-weights).
struct ModelChoice {
  std::string name, config, checkpoint;
};

// --model NAME: its config (unless --config) and, unless weights are given, its checkpoint, which
// rank 0 fetches (or finds in the cache) and the others then use. The name for the output: the
// published name, or the config file's stem. Several models: one --model (or --config) each, and
// one --checkpoint each or none.
std::vector<ModelChoice> chooseModels(const ExtractArgs& a, MPI_Comm comm) {
  const size_t n = std::max(a.models.size(), a.configs.size());
  if (n == 0) throw Error("give --config FILE or --model NAME");
  if (n > 1 && !a.models.empty() && !a.configs.empty()) {
    throw Error(
        "several models: give --model NAME for each, or --config FILE for each (with one "
        "--checkpoint each), not both");
  }
  if (a.models.size() > 1 || a.configs.size() > 1 || a.checkpoints.size() > 1) {
    if (!a.checkpoints.empty() && a.checkpoints.size() != n) {
      throw Error("several models: " + std::to_string(n) + " models but " +
                  std::to_string(a.checkpoints.size()) +
                  " --checkpoint files (give one per model, in the models' order, or none)");
    }
  }
  if (!a.checkpoints.empty() && a.randomWeights >= 0) {
    throw Error(
        "give exactly one of --checkpoint FILE or --random-weights SEED (weights are never chosen "
        "silently)");
  }
  std::vector<ModelChoice> out(n);
  std::set<std::string> names;
  for (size_t i = 0; i < n; ++i) {
    ModelChoice& m = out[i];
    if (i < a.checkpoints.size()) m.checkpoint = a.checkpoints[i];
    if (a.models.empty()) {
      m.config = a.configs[i];
      m.name = fs::path(m.config).stem().string();
    } else {
      const ZooModel zoo = findZooModel(a.models[i]);
      m.name = zoo.name;
      m.config = a.configs.empty() ? zoo.config : a.configs[0];
      if (m.checkpoint.empty() && a.randomWeights < 0) {
        std::string error;
        if (commRank(comm) == 0) {
          try {
            m.checkpoint = ensureCheckpoint(zoo, checkpointCacheDir()).path;
          } catch (const std::exception& e) {
            error = e.what();
          }
        }
        broadcastString(error, 0, comm);
        broadcastString(m.checkpoint, 0, comm);
        if (!error.empty()) throw CollectiveError(error);
      }
    }
    if (!names.insert(m.name).second)
      throw Error("model '" + m.name + "' is named twice: each model of a run once");
  }
  if (out[0].checkpoint.empty() && a.randomWeights < 0) {
    throw Error(
        "give exactly one of --checkpoint FILE or --random-weights SEED (weights are never chosen "
        "silently)");
  }
  return out;
}

// The run's settings from the arguments and the config, checked once (ExtractOptions::validate)
// before any model is built or output touched; the file metadata comes later, from the model.
ExtractionPlan planRun(const ExtractArgs& a, const Config& cfg) {
  if (a.wave < 1) throw Error("--wave must be >= 1");
  if (!(a.waveMegabytes > 0)) throw Error("--wave-mb must be > 0");
  if (!(a.watchdog >= 0)) throw Error("--watchdog must be >= 0 seconds (0 = off)");
  ExtractionPlan plan;
  plan.manifestPath = a.manifest;
  plan.outputPath = a.output;
  plan.overwrite = a.overwrite;
  plan.skipInvalid = a.skipInvalid;
  plan.retryFailed = a.retryFailed;
  std::tie(plan.shardIndex, plan.shardCount) = parseShard(a.shard);
  plan.waveVideos = a.wave;
  plan.waveMegabytes = a.waveMegabytes;
  plan.waveSeconds = a.waveSeconds;
  plan.watchdogSeconds = a.watchdog;
  plan.outputLocked = true;
  ExtractOptions& eo = plan.extract;
  eo = clipOptions(a.clip, cfg);
  eo.batch = a.batch;
  eo.queueClips = a.queue;
  eo.decodePriority = parseDecodePriority(a.decodePriority);
  eo.timeoutSeconds = a.videoTimeout;
  eo.validate();
  return plan;
}

// Rank 0's summary of a finished run: totals, then one line per rank.
void logSummary(const ExtractionSummary& s, int size, const std::string& output) {
  spdlog::info(
      "done: {} videos in the manifest: {} extracted now, {} already complete, {} failed; "
      "{} segments, {:.1f} s, {:.2f} clips/s -> {}",
      s.videos, s.complete, s.skipped, s.failed, s.segments, s.wallSeconds,
      s.wallSeconds > 0 ? s.clips / s.wallSeconds : 0.0, output);
  spdlog::info("HDF5 writes {:.3f} s ({:.2f}% of {:.1f} s)", s.writeSeconds,
               100.0 * s.writeSeconds / std::max(1e-9, s.wallSeconds), s.wallSeconds);
  for (int r = 0; r < size; ++r) {
    const size_t i = size_t(r);
    const double busy = s.busySeconds[i];
    spdlog::info(
        "rank {}: {} videos, {} clips, {:.2f} clips/s, busy {:.1f} s of {:.1f} s ({:.0f}% idle); "
        "model {:.1f} s, waiting for decoded clips {:.1f} s, writing {:.2f} s",
        r, s.videosPerRank[i], s.clipsPerRank[i], busy > 0 ? s.clipsPerRank[i] / busy : 0.0, busy,
        s.wallSeconds, 100.0 * (1.0 - busy / std::max(1e-9, s.wallSeconds)), s.modelSeconds[i],
        s.starvedSeconds[i], s.storeSeconds[i]);
  }
}

}  // namespace

int extractCommand(const std::vector<std::string>& argv, MPI_Comm comm) {
  // SIGTERM / SIGINT / SIGUSR1 from here on: a graceful stop (stop_signal.h); before any thread
  // of ours (LibTorch's, the decode worker) starts, so that they inherit the blocked mask.
  installStopHandlers();
  const int rank = commRank(comm), size = commSize(comm);
  ExtractArgs a;
  CommandOptions opts(
      "extract",
      "vidfeat extract: decode each video, cut it into clips (NUM_FRAMES frames every "
      "SAMPLING_RATE\n"
      "frames), run the model, and write one row of features per clip into one HDF5 file.\n"
      "Run under mpirun/srun for many ranks.");
  declareOptions(opts, a);
  if (!opts.parse(argv, rank == 0)) return 0;
  // One writer per output, checked before anything slow (checkpoint download, model build) so a
  // second job is refused at once; held (rank 0, with its heartbeat) until this command returns.
  const std::unique_ptr<OutputLock> lock = lockOutput(a.output, comm);

  const std::vector<ModelChoice> choices = chooseModels(a, comm);
  const Precision precision = parsePrecision(a.precision);
  checkDecodeDevice(a.decodeDevice);
  std::vector<Config> cfgs;
  for (const auto& c : choices) cfgs.push_back(Config::load(c.config, a.sets));
  ExtractionPlan plan = planRun(a, cfgs[0]);
  // The other models' clips from the same windows: their own frames and geometry.
  for (size_t i = 1; i < cfgs.size(); ++i) {
    const ExtractOptions other = clipOptions(a.clip, cfgs[i]);
    plan.extract.moreStreams.push_back({other.buckets, other.preprocess});
  }
  plan.extract.validate();

  // One device and a fair share of the node's cores per rank.
  const NodeRanks node = nodeRanks(comm);
  const int threads = a.threads > 0
                          ? a.threads
                          : std::max(1, int(std::thread::hardware_concurrency()) / node.localSize);
  setComputeThreads(threads);
  warnIfFewerCores(threads, rank);
  const std::string device = resolveDevice(a.device, node.localRank);
  std::vector<std::unique_ptr<FeatureModel>> models;
  std::vector<FeatureModel*> modelPtrs;
  std::vector<FileMetadata> metas;
  bool untrained = false;
  for (size_t i = 0; i < choices.size(); ++i) {
    models.push_back(FeatureModel::build(cfgs[i], device, precision));
    modelPtrs.push_back(models.back().get());
    const LoadedWeights weights =
        setWeights(*models.back(), cfgs[i], {choices[i].checkpoint, a.randomWeights}, rank == 0);
    untrained |= weights.untrained();
    ExtractOptions own = plan.extract;  // model i's clip settings, for its metadata
    if (i > 0) {
      own.buckets = plan.extract.moreStreams[i - 1].buckets;
      own.preprocess = plan.extract.moreStreams[i - 1].preprocess;
    }
    metas.push_back(runMetadata(choices[i].name, cfgs[i], *models.back(), weights, own));
  }
  // NVDEC on the model's GPU: "cuda" follows the rank's device when that is a GPU.
  plan.extract.decodeDevice =
      a.decodeDevice == "cuda" && device.rfind("cuda:", 0) == 0 ? device : a.decodeDevice;
  plan.meta = combinedMetadata(metas);
  if (rank == 0) {
    const BucketSpec& b = plan.extract.buckets;
    const std::string clips = b.byTime()
                                  ? fmt::format("{}-frame clips of {:g} s every {:g} s",
                                                b.numFrames, b.clipSeconds, b.windowStride())
                                  : fmt::format("clips of {}x{}", b.numFrames, b.samplingRate);
    spdlog::info("{} rank(s), model {} ({}), feature dim {}, {} at {}px", size, plan.meta.modelName,
                 plan.meta.modelArch, plan.meta.featureDim, clips,
                 plan.extract.preprocess.cropSize);
    for (size_t i = 1; i < choices.size(); ++i) {
      const StreamSpec& st = plan.extract.moreStreams[i - 1];
      spdlog::info("model {} of the same decode: {} ({}-d), {}-frame clips at {}px", i + 1,
                   metas[i].modelName, metas[i].featureDim, st.buckets.numFrames,
                   st.preprocess.cropSize);
    }
  }
  spdlog::info("device {}, {} LibTorch thread(s)", device, threads);

  const ExtractionSummary s = runExtraction(plan, modelPtrs, comm);
  const bool someFailed = s.failed + s.failedBefore > 0;
  if (rank == 0) {
    logSummary(s, size, a.output);
    if (someFailed)
      reportFailures(readStoreSummary(a.output), fmt::format("exit code {}", kSomeVideosFailed));
    if (untrained) spdlog::warn("reminder: {} holds features of an UNTRAINED model", a.output);
  }
  if (s.interrupted) return kInterrupted;
  return someFailed ? kSomeVideosFailed : 0;
}

}  // namespace vidfeat::cli
