#include "vidfeat/zoo/model_zoo.h"

#include <yaml-cpp/yaml.h>

#include <cctype>
#include <cstdlib>
#include <filesystem>

#include "vidfeat/common/error.h"
#include "vidfeat/config/config.h"

namespace vidfeat {

namespace fs = std::filesystem;

std::string ZooModel::fileName() const {
  auto slash = url.find_last_of('/');
  return slash == std::string::npos ? url : url.substr(slash + 1);
}

std::vector<ZooModel> zooModels() {
  const std::string path = (fs::path(configDir()) / "models.yaml").string();
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::Exception& e) {
    throw InputError(path, std::string("cannot read the model list: ") + e.what());
  }
  std::vector<ZooModel> out;
  for (const auto& m : root["models"]) {
    ZooModel z;
    z.name = m["name"].as<std::string>();
    z.config = (fs::path(configDir()) / m["config"].as<std::string>()).string();
    z.url = m["url"].as<std::string>();
    z.featureDim = m["feature_dim"].as<int>();
    if (m["note"]) z.note = m["note"].as<std::string>();
    if (m["sha256"]) {
      z.sha256 = m["sha256"].as<std::string>();
      bool hex = z.sha256.size() == 64;
      for (char& c : z.sha256) {
        c = char(std::tolower(static_cast<unsigned char>(c)));
        hex = hex && std::isxdigit(static_cast<unsigned char>(c));
      }
      if (!hex) throw InputError(path, "model " + z.name + ": sha256 must be 64 hex digits");
    }
    out.push_back(std::move(z));
  }
  return out;
}

ZooModel findZooModel(const std::string& name) {
  auto models = zooModels();
  std::string known;
  for (const auto& m : models) {
    if (m.name == name) return m;
    known += (known.empty() ? "" : ", ") + m.name;
  }
  throw Error("--model " + name + ": unknown model (known: " + known +
              "; `vidfeat models` lists them)");
}

std::string checkpointCacheDir() {
  if (const char* env = std::getenv("VIDFEAT_CACHE_DIR"); env && *env) return env;
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg)
    return (fs::path(xdg) / "vidfeat").string();
  const char* home = std::getenv("HOME");
  return (fs::path(home && *home ? home : ".") / ".cache" / "vidfeat").string();
}

}  // namespace vidfeat
