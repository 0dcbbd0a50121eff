#pragma once
// Published checkpoints fetched once into a cache (`--model NAME`): downloads resume from a
// partial file, land by an atomic rename, and their sha256 is recorded next to them. Offline
// nodes get a message saying which file to put where.
#include <string>

#include "vidfeat/zoo/model_zoo.h"

namespace vidfeat {

struct CachedCheckpoint {
  std::string path;
  std::string sha256;
  bool downloaded = false;  // fetched by this call (false: was in the cache)
};

// Integrity: the file's sha256 is checked against its pin -- the model's `sha256` in models.yaml
// when given, else the hash recorded in <file>.sha256 at its first download (trust on first
// use) -- after every download and before every use of a cached file (the file is hashed again
// each time, never trusted by its sidecar). A mismatch is an Error saying both hashes; a download
// that does not match is not kept.
// Returns the cached checkpoint of `model`, downloading it into `cacheDir` first when absent
// (unless $VIDFEAT_OFFLINE is set). Throws Error with the URL and the target path when it cannot
// be had.
CachedCheckpoint ensureCheckpoint(const ZooModel& model, const std::string& cacheDir);

}  // namespace vidfeat
