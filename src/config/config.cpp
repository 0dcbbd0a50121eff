#include "vidfeat/config/config.h"

#include <yaml-cpp/yaml.h>

#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>

#include "vidfeat/common/error.h"
#include "vidfeat/common/log.h"

namespace vidfeat {

extern const char* const
    kPySlowFastDefaultsYaml;  // generated from configs/pyslowfast_defaults.yaml

namespace {

// Recursive-descent reader for the Python literals yacs evaluates in config values. Its recursion
// is bounded: a value nested deeper than kMaxLiteralDepth (PySlowFast's deepest is 3, MViT's
// POOL_KV_STRIDE) is an Error, so a 300,000-deep [[[...]]] is refused instead of overflowing the
// stack. Time and memory are linear in the text.
constexpr int kMaxLiteralDepth = 64;

class LiteralParser {
 public:
  explicit LiteralParser(const std::string& s) : s_(s) {}

  bool parse(YAML::Node& out) {
    if (!value(out)) return false;
    skipSpace();
    return pos_ == s_.size();
  }

 private:
  void skipSpace() {
    while (pos_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[pos_]))) ++pos_;
  }

  bool value(YAML::Node& out) {
    skipSpace();
    if (pos_ >= s_.size()) return false;
    char c = s_[pos_];
    if (c == '(' || c == '[') {
      if (++depth_ > kMaxLiteralDepth) {
        throw Error("a config value nested more than " + std::to_string(kMaxLiteralDepth) +
                    " levels deep (at character " + std::to_string(pos_) + "); refusing it");
      }
      const bool ok = sequence(out, c == '(' ? ')' : ']');
      --depth_;
      return ok;
    }
    if (c == '\'' || c == '"') return quoted(out);
    return atom(out);
  }

  bool sequence(YAML::Node& out, char close) {
    ++pos_;
    out = YAML::Node(YAML::NodeType::Sequence);
    skipSpace();
    if (pos_ < s_.size() && s_[pos_] == close) {
      ++pos_;
      return true;
    }
    while (true) {
      YAML::Node item;
      if (!value(item)) return false;
      out.push_back(item);
      skipSpace();
      if (pos_ >= s_.size()) return false;
      if (s_[pos_] == ',') {
        ++pos_;
        skipSpace();
        if (pos_ < s_.size() && s_[pos_] == close) {  // trailing comma: (1,)
          ++pos_;
          return true;
        }
        continue;
      }
      if (s_[pos_] == close) {
        ++pos_;
        return true;
      }
      return false;
    }
  }

  bool quoted(YAML::Node& out) {
    char q = s_[pos_++];
    std::string text;
    while (pos_ < s_.size() && s_[pos_] != q) {
      if (s_[pos_] == '\\' && pos_ + 1 < s_.size()) ++pos_;
      text += s_[pos_++];
    }
    if (pos_ >= s_.size()) return false;
    ++pos_;
    out = YAML::Node(text);
    return true;
  }

  bool atom(YAML::Node& out) {
    size_t start = pos_;
    while (pos_ < s_.size() &&
           (std::isalnum(static_cast<unsigned char>(s_[pos_])) || s_[pos_] == '.' ||
            s_[pos_] == '-' || s_[pos_] == '+' || s_[pos_] == '_')) {
      ++pos_;
    }
    std::string tok = s_.substr(start, pos_ - start);
    if (tok.empty()) return false;
    if (tok == "True") {
      out = YAML::Node(true);
      return true;
    }
    if (tok == "False") {
      out = YAML::Node(false);
      return true;
    }
    if (tok == "None") {
      out = YAML::Node(YAML::NodeType::Null);
      return true;
    }
    // Numbers only: a bare word is not a Python literal.
    char* end = nullptr;
    std::strtod(tok.c_str(), &end);
    if (end != tok.c_str() + tok.size()) return false;
    out = YAML::Load(tok);
    return true;
  }

  const std::string& s_;
  size_t pos_ = 0;
  int depth_ = 0;
};

bool parseLiteral(const std::string& text, YAML::Node& out) {
  LiteralParser p(text);
  return p.parse(out);
}

// yacs' _decode_cfg_value: strings that are Python literals become their value.
YAML::Node decodeValue(const YAML::Node& v) {
  if (v.IsSequence()) {
    YAML::Node seq(YAML::NodeType::Sequence);
    for (const auto& item : v) seq.push_back(decodeValue(item));
    return seq;
  }
  if (v.IsScalar()) {
    const std::string& s = v.Scalar();
    size_t first = s.find_first_not_of(" \t");
    if (first != std::string::npos && (s[first] == '(' || s[first] == '[')) {
      YAML::Node parsed;
      if (parseLiteral(s, parsed)) return parsed;
    }
  }
  return YAML::Clone(v);
}

std::vector<std::string> splitKey(const std::string& key) {
  std::vector<std::string> parts;
  std::stringstream ss(key);
  std::string p;
  while (std::getline(ss, p, '.')) parts.push_back(p);
  return parts;
}

}  // namespace

struct Config::Impl {
  YAML::Node root;
  std::string origin = "<defaults>";
  std::vector<std::string> ignored;

  // Looks a key up without creating it. Returns an invalid node when absent.
  YAML::Node find(const std::string& key) const {
    YAML::Node cur = root;  // yaml-cpp nodes are handles; reassigning walks, it does not copy
    for (const auto& part : splitKey(key)) {
      if (!cur.IsMap()) return YAML::Node(YAML::NodeType::Undefined);
      YAML::Node next = cur[part];  // operator[] on a copy of a map handle may add a null entry
      if (!next.IsDefined()) return YAML::Node(YAML::NodeType::Undefined);
      cur.reset(next);
    }
    return cur;
  }

  void merge(YAML::Node dst, const YAML::Node& src, const std::string& prefix) {
    for (const auto& kv : src) {
      std::string k = kv.first.as<std::string>();
      std::string full = prefix.empty() ? k : prefix + "." + k;
      bool known = false;
      for (const auto& d : dst) {
        if (d.first.as<std::string>() == k) {
          known = true;
          break;
        }
      }
      if (!known) {
        ignored.push_back(full);
        spdlog::warn("{}: config key {} is not a PySlowFast key; ignored", origin, full);
        continue;
      }
      YAML::Node target = dst[k];
      if (target.IsMap()) {
        if (!kv.second.IsMap()) {
          throw InputError(origin,
                           "config key " + full + " is a section, but the file gives a value");
        }
        merge(target, kv.second, full);
      } else {
        if (kv.second.IsMap()) {
          throw InputError(origin,
                           "config key " + full + " is a value, but the file gives a section");
        }
        dst[k] = decodeValue(kv.second);
      }
    }
  }
};

Config::Config() : impl_(std::make_unique<Impl>()) {
  impl_->root = YAML::Load(kPySlowFastDefaultsYaml);
}

Config::Config(const Config& o) : impl_(std::make_unique<Impl>(*o.impl_)) {
  impl_->root = YAML::Clone(o.impl_->root);
}
Config& Config::operator=(const Config& o) {
  if (this != &o) {
    impl_ = std::make_unique<Impl>(*o.impl_);
    impl_->root = YAML::Clone(o.impl_->root);
  }
  return *this;
}
Config::Config(Config&&) noexcept = default;
Config& Config::operator=(Config&&) noexcept = default;
Config::~Config() = default;

Config Config::fromYaml(const std::string& yaml, const std::vector<std::string>& overrides,
                        const std::string& origin) {
  Config cfg;
  cfg.impl_->origin = origin;
  YAML::Node file;
  try {
    file = YAML::Load(yaml);
  } catch (const YAML::Exception& e) {
    throw InputError(origin, std::string("not valid YAML: ") + e.what());
  }
  if (file.IsDefined() && !file.IsNull()) {
    if (!file.IsMap()) throw InputError(origin, "a config file must be a YAML mapping");
    try {
      cfg.impl_->merge(cfg.impl_->root, file, "");
    } catch (const InputError&) {
      throw;
    } catch (const Error& e) {
      throw InputError(origin, e.what());
    }
  }
  for (const auto& o : overrides) cfg.set(o);
  return cfg;
}

std::string configDir() {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (const char* env = std::getenv("VIDFEAT_CONFIG_DIR"); env && *env) {
    if (!fs::is_regular_file(fs::path(env) / "models.yaml", ec))
      throw Error("VIDFEAT_CONFIG_DIR=" + std::string(env) +
                  " is not a vidfeat configs folder: it has no models.yaml (unset it to use the "
                  "configs installed with vidfeat)");
    return env;
  }
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (ec)
    throw Error("cannot find vidfeat's configs: /proc/self/exe: " + ec.message() +
                " (set VIDFEAT_CONFIG_DIR to the configs folder)");
  fs::path dir = exe.parent_path();
  for (int up = 0; up <= 4 && !dir.empty(); ++up, dir = dir.parent_path()) {
    const fs::path candidate = dir / "share" / "vidfeat" / "configs";
    if (fs::is_regular_file(candidate / "models.yaml", ec)) return candidate.string();
    if (dir == dir.root_path()) break;
  }
  throw Error("cannot find vidfeat's configs: no share/vidfeat/configs/models.yaml in " +
              exe.parent_path().string() +
              " or the 4 folders above it (install vidfeat with "
              "`cmake --install`, or set VIDFEAT_CONFIG_DIR to the configs folder)");
}

Config Config::load(const std::string& path, const std::vector<std::string>& overrides) {
  std::ifstream in(path);
  if (!in) throw InputError(path, "cannot open config file");
  std::stringstream ss;
  ss << in.rdbuf();
  return fromYaml(ss.str(), overrides, path);
}

bool Config::has(const std::string& key) const { return impl_->find(key).IsDefined(); }

void Config::set(const std::string& assignment) {
  auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0) {
    throw Error("--set expects KEY=VALUE, got '" + assignment + "'");
  }
  std::string key = assignment.substr(0, eq);
  std::string text = assignment.substr(eq + 1);
  YAML::Node target = impl_->find(key);
  if (!target.IsDefined()) throw Error("--set " + key + ": not a PySlowFast config key");
  if (target.IsMap()) throw Error("--set " + key + ": is a section, not a value");
  YAML::Node value;
  try {
    value = text.empty() ? YAML::Node(std::string()) : YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw Error("--set " + key + ": cannot parse value '" + text + "': " + e.what());
  }
  if (value.IsMap()) throw Error("--set " + key + ": value must not be a mapping");
  // Walk again with operator[] on the real tree to assign in place.
  auto parts = splitKey(key);
  YAML::Node cur = impl_->root;
  for (size_t i = 0; i + 1 < parts.size(); ++i) cur.reset(cur[parts[i]]);
  try {
    cur[parts.back()] = decodeValue(value);
  } catch (const Error& e) {
    throw Error("--set " + key + ": " + e.what());
  }
}

template <typename T>
T Config::get(const std::string& key) const {
  YAML::Node n = impl_->find(key);
  if (!n.IsDefined()) throw Error("config key " + key + " does not exist");
  try {
    if constexpr (std::is_same_v<T, std::string>) {
      if (n.IsNull()) return std::string();
    }
    return n.as<T>();
  } catch (const YAML::Exception&) {
    YAML::Emitter e;
    e << YAML::Flow << n;
    throw Error("config key " + key + " has an unexpected value: " + e.c_str());
  }
}

template bool Config::get<bool>(const std::string&) const;
template int Config::get<int>(const std::string&) const;
template int64_t Config::get<int64_t>(const std::string&) const;
template double Config::get<double>(const std::string&) const;
template std::string Config::get<std::string>(const std::string&) const;
template std::vector<int> Config::get<std::vector<int>>(const std::string&) const;
template std::vector<double> Config::get<std::vector<double>>(const std::string&) const;
template std::vector<std::string> Config::get<std::vector<std::string>>(const std::string&) const;
template std::vector<std::vector<int>> Config::get<std::vector<std::vector<int>>>(
    const std::string&) const;
// MViT's DIM_MUL / HEAD_MUL: [[block, multiplier], ...] pairs of an index and a float.
template std::vector<std::vector<double>> Config::get<std::vector<std::vector<double>>>(
    const std::string&) const;
template std::vector<std::vector<std::vector<int>>>
Config::get<std::vector<std::vector<std::vector<int>>>>(const std::string&) const;

std::string Config::dump() const {
  YAML::Emitter e;
  e << impl_->root;
  return std::string(e.c_str()) + "\n";
}

const std::string& Config::origin() const { return impl_->origin; }
const std::vector<std::string>& Config::ignoredKeys() const { return impl_->ignored; }

bool pythonLiteralToYaml(const std::string& text, std::string& yaml) {
  YAML::Node n;
  if (!parseLiteral(text, n)) return false;
  YAML::Emitter e;
  e << YAML::Flow << n;
  yaml = e.c_str();
  return true;
}

}  // namespace vidfeat
