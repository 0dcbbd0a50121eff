#pragma once
// Published checkpoints fetched once into a cache (`--model NAME`): downloads resume from a
// partial file, land by an atomic rename, and their sha256 is recorded next to them. Offline
// nodes get a message saying which file to put where.
#include <string>

#include "vidfeat/config/model_zoo.h"

namespace vidfeat {

struct CachedCheckpoint {
  std::string path;
  std::string sha256;
  bool downloaded = false;  // fetched by this call (false: was in the cache)
};

// Returns the cached checkpoint of `model`, downloading it into `cacheDir` first when absent
// (unless $VIDFEAT_OFFLINE is set). Throws Error with the URL and the target path when it cannot
// be had.
CachedCheckpoint ensureCheckpoint(const ZooModel& model, const std::string& cacheDir);

}  // namespace vidfeat
