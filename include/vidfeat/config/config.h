#pragma once
// PySlowFast configuration: a YAML file read unchanged, on top of PySlowFast's own defaults
// (configs/pyslowfast_defaults.yaml, compiled in), with `--set KEY=VALUE` overrides.
//
// As in yacs, a string value that is a Python literal ("(2, 4, 4)", "[[1], [2]]", "True") is
// read as that literal. Keys PySlowFast does not know (the seed's NUMBER_CSV, DATA.VID_EXT) are
// ignored with one warning each; an override of an unknown key is an error (it is a typo).
#include <memory>
#include <string>
#include <vector>

namespace vidfeat {

class Config {
 public:
  // Defaults only.
  Config();
  // Defaults, then the file, then each "KEY=VALUE" override. Throws InputError naming the file
  // for unreadable YAML, Error for a bad override.
  static Config load(const std::string& path, const std::vector<std::string>& overrides = {});
  // Same from YAML text (tests, configs embedded in output files). `origin` names it in errors.
  static Config fromYaml(const std::string& yaml, const std::vector<std::string>& overrides = {},
                         const std::string& origin = "<yaml>");

  Config(const Config&);
  Config& operator=(const Config&);
  Config(Config&&) noexcept;
  Config& operator=(Config&&) noexcept;
  ~Config();

  // Typed access by dotted key ("DATA.NUM_FRAMES"). Throws Error naming the key when it is
  // missing or has another type. Supported T: bool, int, int64_t, double, std::string and
  // (nested) std::vector of int, double, std::string.
  template <typename T>
  T get(const std::string& key) const;
  bool has(const std::string& key) const;

  // Applies one "KEY=VALUE" override (VALUE is YAML / a Python literal).
  void set(const std::string& assignment);

  // The effective configuration as YAML text (stored in the output file).
  std::string dump() const;
  // Where it came from (the file path, or the origin given).
  const std::string& origin() const;
  // Keys of the file PySlowFast does not know, in file order (already logged).
  const std::vector<std::string>& ignoredKeys() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Parses a Python literal (numbers, strings, True/False/None, tuples and lists, nested) into
// YAML text of the same value; returns false when `text` is not such a literal.
bool pythonLiteralToYaml(const std::string& text, std::string& yaml);

// The folder of the shipped configs (models.yaml, Kinetics/, ...): $VIDFEAT_CONFIG_DIR when set,
// else the first share/vidfeat/configs found in the running executable's folder or one of the
// four above it (/proc/self/exe): PREFIX/share/vidfeat/configs for an installed PREFIX/bin/vidfeat
// (cmake --install), BUILD/share/vidfeat/configs (a link to the source tree's configs/, made at
// configure time) for build/vidfeat and the test programs below BUILD. Throws Error when
// $VIDFEAT_CONFIG_DIR holds no models.yaml, or nothing is found (naming where it looked).
std::string configDir();

}  // namespace vidfeat
