#include "vidfeat/common/log.h"

#include <spdlog/sinks/stdout_color_sinks.h>

#include <string>

namespace vidfeat {

void initLogging(int rank, int size, spdlog::level::level_enum level) {
  auto logger = spdlog::stderr_color_mt("vidfeat");
  std::string rankTag = size > 1 ? "[rank " + std::to_string(rank) + "] " : "";
  logger->set_pattern("[%Y-%m-%d %H:%M:%S.%e] [%^%l%$] " + rankTag + "%v");
  logger->set_level(level);
  spdlog::set_default_logger(logger);
}

}  // namespace vidfeat
