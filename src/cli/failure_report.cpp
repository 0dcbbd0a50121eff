#include "failure_report.h"

#include <fmt/core.h>

#include <map>

#include "vidfeat/common/log.h"

namespace vidfeat::cli {

void reportFailures(const StoreSummary& file, const std::string& note) {
  const std::vector<std::string> stageOf = file.lastFailureStages();
  std::map<std::string, int> byStage;
  int failed = 0;
  for (size_t row = 0; row < file.videos.size(); ++row) {
    if (file.videos[row].status != VideoStatus::Failed) continue;
    ++byStage[stageOf[row]];
    ++failed;
  }
  if (failed == 0) return;
  std::string stages;
  for (const auto& [stage, n] : byStage) {
    stages += fmt::format("{}{} {}", stages.empty() ? "" : ", ", n, stage);
  }
  spdlog::warn("{} video(s) failed ({}; {}):", failed, stages, note);
  for (const auto& v : file.videos) {
    if (v.status == VideoStatus::Failed) spdlog::warn("  {}: {}", v.videoId, v.error);
  }
}

}  // namespace vidfeat::cli
