#pragma once
// The published models vidfeat knows by name (configs/models.yaml): `--model NAME` resolves the
// config shipped in configs/ and the published checkpoint, downloaded once into a cache.
#include <string>
#include <vector>

namespace vidfeat {

struct ZooModel {
  std::string name;
  std::string config;  // absolute path of the YAML
  std::string url;     // published checkpoint
  std::string note;
  // models.yaml's `sha256` (64 hex digits) when the checkpoint's hash is pinned there; empty: the
  // hash recorded at the first download is the pin (checkpoint_cache.h).
  std::string sha256;
  int featureDim = 0;
  std::string fileName() const;  // the checkpoint's file name in the cache (from the URL)
};

// Every model of configs/models.yaml. Throws InputError naming the file when it is unreadable.
std::vector<ZooModel> zooModels();

// The model called `name`; throws Error listing the known names when there is none.
ZooModel findZooModel(const std::string& name);

// Cache folder for checkpoints: $VIDFEAT_CACHE_DIR, else $XDG_CACHE_HOME/vidfeat, else
// ~/.cache/vidfeat.
std::string checkpointCacheDir();

}  // namespace vidfeat
