// Commands that work with a finished output file or list what vidfeat knows: models, locate,
// export.
#include <fmt/core.h>

#include <algorithm>
#include <sstream>

#include "options.h"
#include "vidfeat/cli/commands.h"
#include "vidfeat/common/error.h"
#include "vidfeat/common/log.h"
#include "vidfeat/config/config.h"
#include "vidfeat/store/export.h"
#include "vidfeat/store/feature_store.h"
#include "vidfeat/zoo/model_zoo.h"

namespace vidfeat::cli {

namespace {
std::string formatOf(const std::string& url) {
  auto endsWith = [&](const char* ext) {
    const size_t n = std::char_traits<char>::length(ext);
    return url.size() > n && url.compare(url.size() - n, n, ext) == 0;
  };
  if (endsWith(".pkl")) return "caffe2 .pkl";
  if (endsWith(".pt")) return "TorchScript .pt";
  return "torch .pyth/.pth";
}
}  // namespace

int modelsCommand(const std::vector<std::string>& argv) {
  CommandOptions opts("models",
                      "vidfeat models: the published models vidfeat knows by name (--model NAME)");
  if (!opts.parse(argv)) return 0;
  const auto models = zooModels();  // a broken models.yaml fails before anything is printed
  size_t width = 30;
  for (const auto& m : models) width = std::max(width, m.name.size() + 1);
  fmt::print("{:<{}} {:>7} {:>8} {:>6}  {:<17} {}\n", "name", width, "feature", "frames", "crop",
             "checkpoint", "config");
  for (const auto& m : models) {
    std::string frames = "?", crop = "?";
    try {
      Config c = Config::load(m.config);
      frames =
          fmt::format("{}x{}", c.get<int>("DATA.NUM_FRAMES"), c.get<int>("DATA.SAMPLING_RATE"));
      crop = std::to_string(c.get<int>("DATA.TEST_CROP_SIZE"));
    } catch (const std::exception& e) {
      spdlog::debug("{}: {}", m.name, e.what());
    }
    fmt::print("{:<{}} {:>7} {:>8} {:>6}  {:<17} {}{}\n", m.name, width, m.featureDim, frames, crop,
               formatOf(m.url), m.config.substr(configDir().size() + 1),
               m.note.empty() ? "" : "  (" + m.note + ")");
  }
  fmt::print("\ncheckpoints are downloaded once into {}\n", checkpointCacheDir());
  return 0;
}

int locateCommand(const std::vector<std::string>& argv) {
  std::string file, video;
  double start = 0, end = 0;
  CommandOptions opts(
      "locate",
      "vidfeat locate FILE --video ID --start S --end E: the segments of a video that cover the\n"
      "time span [S, E] (seconds), from the stored per-segment times");
  opts.add()("file", po::value(&file)->required(), "output file")(
      "video", po::value(&video)->required(), "video id")(
      "start", po::value(&start)->required(), "seconds")("end", po::value(&end)->required(),
                                                         "seconds");
  opts.positional("file");
  if (!opts.parse(argv)) return 0;
  StoreReader reader(file);
  const StoredVideo* v = nullptr;
  for (const auto& x : reader.summary().videos) {
    if (x.videoId == video) v = &x;
  }
  if (!v) throw InputError(file, "no video with id '" + video + "'");
  if (v->status != VideoStatus::Complete)
    throw InputError(file, "video '" + video + "' is not complete");
  std::vector<SegmentRecord> segments;
  std::vector<float> features;
  reader.readRows(v->firstRow, v->segmentCount, segments, features);
  Located l = locateSegments(*v, segments, start, end);
  fmt::print("video {}: {} segments, {:.3f} fps, {} frames, {:.3f} s\n", video, segments.size(),
             v->fps, v->decodedFrames, v->duration);
  fmt::print("[{}, {}] s -> segments", start, end);
  for (int32_t s : l.segments) fmt::print(" {}", s);
  fmt::print("\n");
  for (int32_t s : l.segments) {
    const auto& r = segments[size_t(s)];
    fmt::print("  segment {:>4}: {:9.3f} - {:9.3f} s  frames {}-{}{}\n", s, r.startTime, r.endTime,
               r.firstFrame, r.lastFrame,
               r.paddedFrames ? fmt::format("  ({} padded)", r.paddedFrames) : "");
  }
  fmt::print(
      "seed's tau = t*n*fps/l: {:.3f} - {:.3f} (fractional segment index; ignores the start "
      "offset, "
      "padded tails and variable frame rate)\n",
      l.seedTau0, l.seedTau1);
  return 0;
}

int exportCommand(const std::vector<std::string>& argv) {
  std::string file, ids, concat;
  ExportRequest request;
  CommandOptions opts(
      "export",
      "vidfeat export FILE [--npy DIR] [--npz DIR] [--h5-per-video FILE] [--concat A,B] "
      "[--ids a,b,...]:\n"
      "the features of every complete video (or --ids) in the layouts grounding code reads");
  opts.add()("file", po::value(&file)->required(), "output file")(
      "npy", po::value(&request.npyDir),
      "folder to write one <video_id>.npy [segments, D] float32 per video into (the seed's "
      "layout)")("npz", po::value(&request.npzDir),
                 "folder to write one <video_id>.npz per video into: key `features` [segments, D] "
                 "float32 (Moment-DETR / QD-DETR), `start_time` / `end_time` [segments] seconds")(
      "h5-per-video", po::value(&request.h5PerVideo),
      "new HDF5 file with one dataset [segments, D] per video, named by its id (a/b: group a, "
      "dataset b; 2D-TAN / MAD), its start_time / end_time attributes in seconds")(
      "concat", po::value(&concat),
      "comma-separated model names whose features are joined along D, in this order (default: "
      "the file's model; one output holds one model today)")(
      "ids", po::value(&ids), "comma-separated video ids (default: all)");
  opts.positional("file");
  if (!opts.parse(argv)) return 0;
  auto split = [](const std::string& text) {
    std::vector<std::string> list;
    std::stringstream ss(text);
    for (std::string item; std::getline(ss, item, ',');) {
      if (!item.empty()) list.push_back(item);
    }
    return list;
  };
  request.ids = split(ids);
  request.concat = split(concat);
  int64_t n = exportFeatures(file, request);
  for (const auto& [what, where] : {std::pair{".npy files into", request.npyDir},
                                    {".npz files into", request.npzDir},
                                    {"datasets into", request.h5PerVideo}}) {
    if (!where.empty()) spdlog::info("wrote {} {} {}", n, what, where);
  }
  return 0;
}

}  // namespace vidfeat::cli
