#include <fmt/core.h>

#include "options.h"
#include "vidfeat/cli/commands.h"
#include "vidfeat/store/feature_store.h"

namespace vidfeat::cli {

namespace {
const char* statusName(VideoStatus s) {
  switch (s) {
    case VideoStatus::Pending:
      return "pending";
    case VideoStatus::Complete:
      return "complete";
    case VideoStatus::Failed:
      return "failed";
  }
  return "?";
}
}  // namespace

int inspectCommand(const std::vector<std::string>& argv) {
  std::string file;
  bool videos = false;
  CommandOptions opts("inspect", "vidfeat inspect FILE: what an output file holds");
  opts.add()("file", po::value(&file)->required(), "output file")(
      "videos", po::bool_switch(&videos), "list every video");
  opts.positional("file");
  if (!opts.parse(argv)) return 0;

  StoreSummary s = readStoreSummary(file);
  int64_t complete = 0, failedCount = 0, pending = 0, segments = 0;
  for (const auto& v : s.videos) {
    complete += v.status == VideoStatus::Complete;
    failedCount += v.status == VideoStatus::Failed;
    pending += v.status == VideoStatus::Pending;
    segments += v.segmentCount;
  }
  fmt::print("file:           {}\n", file);
  fmt::print("format:         vidfeat {} (format {}), created {}\n", s.vidfeatVersion,
             s.formatVersion, s.createdUtc);
  fmt::print("model:          {} (arch {})\n", s.meta.modelName, s.meta.modelArch);
  int64_t column = 0;
  for (const auto& [name, dim] : s.meta.parts) {  // several models, side by side in each row
    fmt::print("  columns {}-{}: {} ({}-d)\n", column, column + dim - 1, name, dim);
    column += dim;
  }
  fmt::print("weights:        {}\n", s.meta.weights);
  if (!s.meta.checkpointPath.empty()) {
    fmt::print("checkpoint:     {} (sha256 {})\n", s.meta.checkpointPath, s.meta.checkpointSha256);
  }
  fmt::print("feature:        {} floats{}: {}\n", s.meta.featureDim,
             s.meta.crops > 1 ? fmt::format(" x {} crops", s.meta.crops) : "", s.meta.featureName);
  fmt::print("clips:          {} frames every {} frames, stride {}, tail {}{}\n", s.meta.numFrames,
             s.meta.samplingRate, s.meta.stride, s.meta.tailPolicy,
             s.meta.targetFps > 0 ? fmt::format(", resampled to {} fps", s.meta.targetFps) : "");
  fmt::print("videos:         {} ({} complete, {} failed, {} pending)\n", s.videos.size(), complete,
             failedCount, pending);
  fmt::print("segments:       {} ({} feature rows)\n", segments, s.featureRows);
  if (videos || s.videos.size() <= 50) {
    fmt::print("\n{:<40} {:>9} {:>7} {:>8} {:>9} {:>8}  {}\n", "video_id", "status", "frames",
               "fps", "duration", "segments", "note");
    for (const auto& v : s.videos) {
      std::string note = v.error;
      if (note.empty() && v.decodeErrors > 0)
        note = fmt::format("{} decode errors skipped", v.decodeErrors);
      fmt::print("{:<40} {:>9} {:>7} {:>8.3f} {:>9.3f} {:>8}  {}\n", v.videoId,
                 statusName(v.status), v.decodedFrames, v.fps, v.duration, v.segmentCount, note);
    }
  }
  return 0;
}

}  // namespace vidfeat::cli
