#include "checkpoint/state_dict.h"

#include <caffe2/serialize/inline_container.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <regex>
#include <set>
#include <sstream>

#include "checkpoint/pickle_reader.h"
#include "vidfeat/common/error.h"

namespace vidfeat::model {

namespace {

using ckpt::PyKind;
using ckpt::PyValue;

torch::Dtype torchType(ckpt::ScalarType t) {
  switch (t) {
    case ckpt::ScalarType::Float32:
      return torch::kFloat32;
    case ckpt::ScalarType::Float64:
      return torch::kFloat64;
    case ckpt::ScalarType::Float16:
      return torch::kFloat16;
    case ckpt::ScalarType::BFloat16:
      return torch::kBFloat16;
    case ckpt::ScalarType::Int64:
      return torch::kInt64;
    case ckpt::ScalarType::Int32:
      return torch::kInt32;
    case ckpt::ScalarType::Int16:
      return torch::kInt16;
    case ckpt::ScalarType::Int8:
      return torch::kInt8;
    case ckpt::ScalarType::UInt8:
      return torch::kUInt8;
    case ckpt::ScalarType::Bool:
      return torch::kBool;
  }
  return torch::kFloat32;
}

std::vector<char> readWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) throw InputError(path, "cannot open");
  const std::streamoff size = in.tellg();
  std::vector<char> bytes(size > 0 ? size_t(size) : 0);
  in.seekg(0);
  in.read(bytes.data(), std::streamsize(bytes.size()));
  if (!in) throw InputError(path, "read error");
  return bytes;
}

// torch.save writes every record of its zip stored (uncompressed). A compressed record is sized by
// the uncompressed size its header declares (a 2.5 MB file declaring 2 GiB of deflated zeros made
// LibTorch's reader take 4.4 GB), so the central directory is read first and any record that is
// not stored, or that does not lie inside the file, is refused before anything is inflated.
// Cost: one read of the central directory (bounded by the file's size), no allocation per record.
// A TorchScript archive (torch.jit.save) deflates its compiled code ("<archive>/code/...", with
// ".debug_pkl" source maps) and may carry "extra/" files: vidfeat never reads those, so nothing of
// them is inflated and their compression is allowed.
bool neverRead(const std::string& record) {
  const size_t slash = record.find('/');
  const std::string inArchive = slash == std::string::npos ? record : record.substr(slash + 1);
  return inArchive.rfind("code/", 0) == 0 || inArchive.rfind("extra/", 0) == 0;
}

void checkZipRecordsStored(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) throw InputError(path, "cannot open");
  const uint64_t fileSize = uint64_t(in.tellg());
  auto readAt = [&](uint64_t at, size_t n) {
    if (at > fileSize || n > fileSize - at)
      throw Error("zip container: a structure lies outside the file");
    std::string b(n, '\0');
    in.seekg(std::streamoff(at));
    in.read(b.data(), std::streamsize(n));
    if (!in) throw Error("zip container: read error");
    return b;
  };
  auto u16 = [](const std::string& b, size_t at) {
    return uint32_t(uint8_t(b[at])) | (uint32_t(uint8_t(b[at + 1])) << 8);
  };
  auto u32 = [&](const std::string& b, size_t at) { return u16(b, at) | (u16(b, at + 2) << 16); };
  auto u64 = [&](const std::string& b, size_t at) {
    return uint64_t(u32(b, at)) | (uint64_t(u32(b, at + 4)) << 32);
  };
  const size_t tailSize = size_t(std::min<uint64_t>(fileSize, 22 + 65535));
  const std::string tail = readAt(fileSize - tailSize, tailSize);
  size_t eocd = std::string::npos;
  for (size_t i = tail.size() >= 22 ? tail.size() - 22 + 1 : 0; i-- > 0;) {
    if (tail.compare(i, 4, "PK\x05\x06") == 0) {
      eocd = i;
      break;
    }
  }
  if (eocd == std::string::npos) throw Error("zip container: no end of central directory record");
  uint64_t entries = u16(tail, eocd + 10), cdSize = u32(tail, eocd + 12),
           cdOffset = u32(tail, eocd + 16);
  if (entries == 0xFFFF || cdSize == 0xFFFFFFFF || cdOffset == 0xFFFFFFFF) {  // zip64
    const uint64_t eocdAt = fileSize - tailSize + eocd;
    if (eocdAt < 20) throw Error("zip container: zip64 locator missing");
    const std::string loc = readAt(eocdAt - 20, 20);
    if (loc.compare(0, 4, "PK\x06\x07") != 0) throw Error("zip container: zip64 locator missing");
    const std::string z = readAt(u64(loc, 8), 56);
    if (z.compare(0, 4, "PK\x06\x06") != 0)
      throw Error("zip container: zip64 end of central directory missing");
    entries = u64(z, 32);
    cdSize = u64(z, 40);
    cdOffset = u64(z, 48);
  }
  const std::string cd = readAt(cdOffset, size_t(cdSize));
  size_t at = 0;
  for (uint64_t e = 0; e < entries; ++e) {
    if (cd.size() - at < 46 || cd.compare(at, 4, "PK\x01\x02") != 0)
      throw Error("zip container: malformed central directory");
    const uint32_t method = u16(cd, at + 10);
    uint64_t comp = u32(cd, at + 20), uncomp = u32(cd, at + 24), local = u32(cd, at + 42);
    const size_t nameLen = u16(cd, at + 28), extraLen = u16(cd, at + 30),
                 commentLen = u16(cd, at + 32);
    if (cd.size() - at - 46 < nameLen + extraLen + commentLen)
      throw Error("zip container: malformed central directory");
    const std::string name = cd.substr(at + 46, nameLen);
    for (size_t x = at + 46 + nameLen;
         x + 4 <= at + 46 + nameLen + extraLen;) {  // zip64 extra field
      const uint32_t id = u16(cd, x), len = u16(cd, x + 2);
      if (x + 4 + len > at + 46 + nameLen + extraLen) break;
      if (id == 0x0001) {
        size_t f = x + 4;
        auto next = [&](uint64_t& v) {
          if (v == 0xFFFFFFFF && f + 8 <= x + 4 + len) {
            v = u64(cd, f);
            f += 8;
          }
        };
        next(uncomp);
        next(comp);
        next(local);
      }
      x += 4 + len;
    }
    if ((method != 0 || comp != uncomp) && !neverRead(name)) {
      throw Error("zip record " + name + " is compressed (method " + std::to_string(method) + ", " +
                  std::to_string(comp) + " bytes declaring " + std::to_string(uncomp) +
                  "); torch.save writes its records stored: refusing it");
    }
    if (local > fileSize || comp > fileSize - local) {  // stored: comp == uncomp
      throw Error("zip record " + name + " of " + std::to_string(comp) +
                  " bytes lies outside the file");
    }
    at += 46 + nameLen + extraLen + commentLen;
  }
}

// A torch.save file: its unpickled object and the raw bytes of each storage.
class TorchFile {
 public:
  TorchFile(const std::string& path, CheckpointFormat format) : path_(path) {
    if (format == CheckpointFormat::TorchZip) {
      readZip();
    } else {
      readLegacy();
    }
  }

  const PyValue& root() const { return *tree_.root(); }

  // `dense`: the tensor may not have more elements than its storage holds (zero or overlapping
  // strides), for a caller that makes it contiguous: a crafted 4-byte storage viewed with stride 0
  // as 10^12 elements is refused instead of materialised.
  torch::Tensor tensor(const PyValue& v, bool dense = false) const {
    const ckpt::TensorRef ref = ckpt::tensorRef(v);
    auto it = storages_.find(ref.storageKey);
    if (it == storages_.end())
      throw Error("tensor storage '" + ref.storageKey + "' is not in the file");
    const auto& [type, base] = it->second;
    if (type != ref.type)
      throw Error("storage '" + ref.storageKey + "' is used with two element types");
    if (base.numel() < ref.storageNumel) {
      throw Error("storage '" + ref.storageKey + "' holds " + std::to_string(base.numel()) +
                  " elements, the pickle says " + std::to_string(ref.storageNumel));
    }
    if (dense && ref.numel() > base.numel()) {
      throw Error("tensor of " + std::to_string(ref.numel()) + " elements on storage '" +
                  ref.storageKey + "' of " + std::to_string(base.numel()) +
                  " (zero or overlapping strides): refusing to materialise it");
    }
    // as_strided's offset counts from the storage's start, so a legacy view's offset adds in.
    return base.as_strided(ref.sizes, ref.strides, ref.viewOffset + ref.offset);
  }

 private:
  // Storage element types are known only from the pickle's tensors: collect them first.
  std::map<std::string, ckpt::ScalarType> storageTypes() const {
    std::map<std::string, ckpt::ScalarType> types;
    std::vector<const PyValue*> todo = {tree_.root()};
    std::set<const PyValue*> seen;
    while (!todo.empty()) {  // iterative: the tree may be cyclic
      const PyValue* v = todo.back();
      todo.pop_back();
      if (!seen.insert(v).second) continue;
      if (ckpt::isTensor(*v)) {
        const auto ref = ckpt::tensorRef(*v);
        types.emplace(ref.storageKey, ref.type);
        continue;
      }
      for (const PyValue* c : v->items) todo.push_back(c);
      for (const auto& [k, x] : v->entries) todo.push_back(x);
      // A TorchScript module's attributes are its BUILD state.
      if (v->state) todo.push_back(v->state);
    }
    return types;
  }

  static torch::Tensor fromBytes(const void* data, size_t bytes, ckpt::ScalarType type) {
    const int64_t n = int64_t(bytes / ckpt::scalarSize(type));
    auto t = torch::empty({n}, torch::TensorOptions().dtype(torchType(type)));
    if (bytes) std::memcpy(t.data_ptr(), data, size_t(n) * ckpt::scalarSize(type));
    return t;
  }

  // The record's buffer itself as a tensor (no second copy of the weights).
  static torch::Tensor adopt(at::DataPtr ptr, size_t bytes, ckpt::ScalarType type) {
    const int64_t n = int64_t(bytes / ckpt::scalarSize(type));
    if (n == 0) return torch::empty({0}, torch::TensorOptions().dtype(torchType(type)));
    auto owner = std::make_shared<at::DataPtr>(std::move(ptr));
    void* data = owner->get();
    return torch::from_blob(
        data, {n}, [owner](void*) mutable { owner.reset(); },
        torch::TensorOptions().dtype(torchType(type)));
  }

  void readZip() {
    checkZipRecordsStored(path_);
    try {
      caffe2::serialize::PyTorchStreamReader reader(path_);
      auto [pkl, size] = reader.getRecord("data.pkl");
      tree_ = ckpt::parsePickle(static_cast<const uint8_t*>(pkl.get()), size);
      for (const auto& [key, type] : storageTypes()) {
        const std::string record = "data/" + key;
        if (!reader.hasRecord(record)) throw Error("storage record " + record + " is missing");
        auto [ptr, bytes] = reader.getRecord(record);
        storages_.emplace(key, std::make_pair(type, adopt(std::move(ptr), bytes, type)));
      }
    } catch (const c10::Error& e) {
      throw Error(std::string("zip container: ") + e.what_without_backtrace());
    }
  }

  void readLegacy() {
    bytes_ = readWholeFile(path_);
    const auto* p = reinterpret_cast<const uint8_t*>(bytes_.data());
    size_t at = 0;
    auto next = [&]() {
      auto tree = ckpt::parsePickle(p + at, bytes_.size() - at);
      at += tree.consumed();
      return tree;
    };
    next();  // magic number (detectCheckpointFormat checked it)
    auto protocol = next();
    if (ckpt::intOf(*protocol.root(), "legacy protocol version") != 1001)
      throw Error("legacy protocol version is not 1001");
    auto sysInfo = next();
    if (const PyValue* le = ckpt::dictGet(*sysInfo.root(), "little_endian");
        le && le->kind == PyKind::Bool && !le->boolean) {
      throw Error("written on a big-endian machine; not supported");
    }
    tree_ = next();
    auto keys = next();
    if (keys.root()->kind != PyKind::List) throw Error("legacy storage key list is not a list");
    const auto types = storageTypes();
    for (const PyValue* k : keys.root()->items) {
      const std::string key = ckpt::textOf(*k, "storage key");
      auto it = types.find(key);
      if (it == types.end()) throw Error("legacy storage '" + key + "' is used by no tensor");
      int64_t numel;
      if (bytes_.size() - at < 8) throw Error("truncated before storage '" + key + "'");
      std::memcpy(&numel, p + at, 8);
      at += 8;
      const size_t elem = ckpt::scalarSize(it->second);
      if (numel < 0 || uint64_t(numel) > (bytes_.size() - at) / elem) {
        throw Error("truncated: storage '" + key + "' needs " + std::to_string(numel) +
                    " elements");
      }
      storages_.emplace(
          key, std::make_pair(it->second, fromBytes(p + at, size_t(numel) * elem, it->second)));
      at += size_t(numel) * elem;
    }
  }

  std::string path_;
  std::vector<char> bytes_;
  ckpt::PickleTree tree_;
  std::map<std::string, std::pair<ckpt::ScalarType, torch::Tensor>> storages_;
};

StateDict tensorDict(const TorchFile& file, const PyValue& dict, const std::string& strip) {
  StateDict out;
  for (const auto& [k, v] : dict.entries) {
    std::string key = ckpt::textOf(*k, "state-dict key");
    if (!ckpt::isTensor(*v)) throw Error("state-dict entry '" + key + "' is not a tensor");
    if (!strip.empty() && key.compare(0, strip.size(), strip) == 0) key = key.substr(strip.size());
    out.emplace_back(key, file.tensor(*v));
  }
  return out;
}

bool isScriptModule(const PyValue& v) {
  return v.kind == PyKind::Object &&
         (v.module == "__torch__" || v.module.rfind("__torch__.", 0) == 0);
}

// A TorchScript archive's module tree (torch.jit.save: OpenAI's CLIP .pt files): each module's
// BUILD state is the dict of its attributes; every tensor attribute is taken, named by its path
// ("visual.conv1.weight", as state_dict() names it), submodules followed, the rest (training flags,
// ints, lists) skipped.
void scriptModuleTensors(const TorchFile& file, const PyValue& module, const std::string& prefix,
                         StateDict& out, int depth = 0) {
  if (depth > 64) throw Error("TorchScript module tree nested more than 64 deep");
  if (!module.state || !ckpt::isDict(*module.state)) {
    throw Error("TorchScript module '" + (prefix.empty() ? std::string("(root)") : prefix) +
                "' has no attribute dict");
  }
  for (const auto& [k, v] : module.state->entries) {
    const std::string name = prefix + ckpt::textOf(*k, "attribute name");
    if (ckpt::isTensor(*v)) {
      out.emplace_back(name, file.tensor(*v));
    } else if (isScriptModule(*v)) {
      scriptModuleTensors(file, *v, name + ".", out, depth + 1);
    }
  }
}

StateDict readTorch(const std::string& path, CheckpointFormat format) {
  TorchFile file(path, format);
  const PyValue& root = file.root();
  if (isScriptModule(root)) {
    StateDict out;
    scriptModuleTensors(file, root, "", out);
    return out;
  }
  if (!ckpt::isDict(root))
    throw Error(
        "the file holds no dict (a whole pickled model is not supported: save its state_dict)");
  if (const PyValue* ms = ckpt::dictGet(root, "model_state")) {
    if (!ckpt::isDict(*ms)) throw Error("'model_state' is not a dict");
    return tensorDict(file, *ms, "");
  }
  if (const PyValue* sd = ckpt::dictGet(root, "state_dict")) {
    if (!ckpt::isDict(*sd)) throw Error("'state_dict' is not a dict");
    return tensorDict(file, *sd, "module.");
  }
  for (const auto& [k, v] : root.entries) {
    if (!ckpt::isTensor(*v)) {
      throw Error("no 'model_state' or 'state_dict' entry, and entry '" + ckpt::textOf(*k, "key") +
                  "' is not a tensor, so this is not a bare state dict either");
    }
  }
  return tensorDict(file, root, "");
}

torch::Tensor arrayTensor(const ckpt::NdArray& a) {
  auto flat = torch::empty({a.numel()}, torch::TensorOptions().dtype(torchType(a.type)));
  if (a.numel()) std::memcpy(flat.data_ptr(), a.data->data(), a.data->size());
  if (!a.fortranOrder) return flat.reshape(a.shape);
  // Fortran order: the reversed shape in C order, transposed back.
  std::vector<int64_t> reversed(a.shape.rbegin(), a.shape.rend());
  std::vector<int64_t> perm;
  for (int64_t i = int64_t(a.shape.size()) - 1; i >= 0; --i) perm.push_back(i);
  return flat.reshape(reversed).permute(perm).contiguous();
}

StateDict readCaffe2(const std::string& path) {
  const auto bytes = readWholeFile(path);
  auto tree = ckpt::parsePickle(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  const PyValue* blobs = ckpt::dictGet(*tree.root(), "blobs");
  if (!blobs || !ckpt::isDict(*blobs))
    throw Error("a Caffe2 checkpoint is a dict with a 'blobs' dict; this pickle has none");
  StateDict out;
  for (const auto& [k, v] : blobs->entries) {
    const std::string name = ckpt::textOf(*k, "blob name");
    if (!ckpt::isNdArray(*v)) throw Error("blob '" + name + "' is not a numpy array");
    out.emplace_back(caffe2ToPySlowFastName(name), arrayTensor(ckpt::ndArray(*v)));
  }
  return out;
}

bool endsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string shapeText(at::IntArrayRef s) {
  std::ostringstream o;
  o << s;
  return o.str();
}

std::string listed(const std::vector<std::string>& items, size_t max = 30) {
  std::string out;
  for (size_t i = 0; i < items.size() && i < max; ++i) out += "\n    " + items[i];
  if (items.size() > max) out += "\n    ... and " + std::to_string(items.size() - max) + " more";
  return out;
}

}  // namespace

StateDict readStateDict(const std::string& path, CheckpointFormat* formatOut) {
  const CheckpointFormat format = detectCheckpointFormat(path);
  if (formatOut) *formatOut = format;
  try {
    return format == CheckpointFormat::Caffe2Pickle ? readCaffe2(path) : readTorch(path, format);
  } catch (const InputError&) {
    throw;
  } catch (const std::exception& e) {
    throw InputError(path, std::string(checkpointFormatName(format)) + ": " + e.what());
  }
}

std::string caffe2ToPySlowFastName(const std::string& caffe2Name) {
  // Applied in order, each to the result of the previous one (as PySlowFast does). Caffe2 names
  // the fast pathway with a "t_" prefix, lateral connections after the fast block they follow,
  // BN as _bn_s (scale), _bn_b (bias), _bn_rm (running mean), _bn_riv (running variance).
  static const std::vector<std::pair<std::regex, std::string>> kRules = [] {
    const std::pair<const char*, const char*> rules[] = {
        // non-local blocks: nonlocal_conv<stage>_<block>_{theta,phi,g,out,bn}_*
        {R"(^nonlocal_conv([0-9]+)_([0-9]+)_(.*))", "s$1.pathway0_nonlocal$2_$3"},
        {R"(^(.*)_nonlocal([0-9]+)_(theta)(.*))", "$1_nonlocal$2.conv_$3$4"},
        {R"(^(.*)_nonlocal([0-9]+)_(g)(.*))", "$1_nonlocal$2.conv_$3$4"},
        {R"(^(.*)_nonlocal([0-9]+)_(phi)(.*))", "$1_nonlocal$2.conv_$3$4"},
        {R"(^(.*)_nonlocal([0-9]+)_(out)(.*))", "$1_nonlocal$2.conv_$3$4"},
        {R"(^(.*)_nonlocal([0-9]+)_(bn)_(.*))", "$1_nonlocal$2.$3.$4"},
        // SlowFast lateral (fast -> slow) connections
        {R"(^t_pool1_subsample_bn_(.*))", "s1_fuse.bn.$1"},
        {R"(^t_pool1_subsample_(.*))", "s1_fuse.conv_f2s.$1"},
        {R"(^t_res([0-9]+)_([0-9]+)_branch2c_bn_subsample_bn_(.*))", "s$1_fuse.bn.$3"},
        {R"(^t_res([0-9]+)_([0-9]+)_branch2c_bn_subsample_(.*))", "s$1_fuse.conv_f2s.$3"},
        // slow (or only) pathway
        {R"(^res([0-9]+)_([0-9]+)_branch([0-9]+)([a-z])_(.*))",
         "s$1.pathway0_res$2.branch$3.$4_$5"},
        {R"(^res_conv1_bn_(.*))", "s1.pathway0_stem.bn.$1"},
        {R"(^conv1_xy(.*))", "s1.pathway0_stem.conv_xy$1"},
        {R"(^conv1_(.*))", "s1.pathway0_stem.conv.$1"},
        {R"(^res([0-9]+)_([0-9]+)_branch([0-9]+)_(.*))", "s$1.pathway0_res$2.branch$3_$4"},
        {R"(^res_conv1_(.*))", "s1.pathway0_stem.conv.$1"},
        // fast pathway
        {R"(^t_res([0-9]+)_([0-9]+)_branch([0-9]+)([a-z])_(.*))",
         "s$1.pathway1_res$2.branch$3.$4_$5"},
        {R"(^t_res_conv1_bn_(.*))", "s1.pathway1_stem.bn.$1"},
        {R"(^t_conv1_(.*))", "s1.pathway1_stem.conv.$1"},
        {R"(^t_res([0-9]+)_([0-9]+)_branch([0-9]+)_(.*))", "s$1.pathway1_res$2.branch$3_$4"},
        {R"(^t_res_conv1_(.*))", "s1.pathway1_stem.conv.$1"},
        // heads and X3D's squeeze-excitation
        {R"(pred_(.*))", "head.projection.$1"},
        {R"((.*)b_bn_fc(.*))", "$1se.fc$2"},
        {R"(conv_5(.*))", "head.conv_5$1"},
        {R"(lin_5(.*))", "head.lin_5$1"},
        // parameter suffixes
        {R"((.*)bn.b$)", "$1bn.bias"},
        {R"((.*)bn.s$)", "$1bn.weight"},
        {R"((.*)bn.rm$)", "$1bn.running_mean"},
        {R"((.*)bn.riv$)", "$1bn.running_var"},
        {R"((.*)[\._]b$)", "$1.bias"},
        {R"((.*)[\._]w$)", "$1.weight"},
    };
    std::vector<std::pair<std::regex, std::string>> compiled;
    for (const auto& [from, to] : rules) compiled.emplace_back(std::regex(from), to);
    return compiled;
  }();
  std::string name = caffe2Name;
  for (const auto& [from, to] : kRules) name = std::regex_replace(name, from, to);
  return name;
}

void conformCaffe2(StateDict& dict, const torch::nn::Module& module,
                   std::vector<std::string>* notes) {
  std::map<std::string, std::vector<int64_t>> shapes;
  for (const auto& p : module.named_parameters()) shapes[p.key()] = p.value().sizes().vec();
  for (const auto& b : module.named_buffers()) shapes[b.key()] = b.value().sizes().vec();
  StateDict out;
  for (auto& [key, t] : dict) {
    auto it = shapes.find(key);
    if (it == shapes.end()) {
      // Training state of a Caffe2 run; PySlowFast skips it silently too.
      const bool training = key.find("momentum") != std::string::npos ||
                            key.find("lr") != std::string::npos ||
                            key.find("model_iter") != std::string::npos;
      if (!training) out.emplace_back(key, t);  // applyStateDict reports it
      continue;
    }
    const auto& want = it->second;
    if (t.dim() < int64_t(want.size())) {
      std::vector<int64_t> s = t.sizes().vec();
      s.resize(want.size(), 1);
      if (notes) notes->push_back(key + ": " + shapeText(t.sizes()) + " -> " + shapeText(s));
      t = t.reshape(s);
    }
    if (t.dim() == 1 && want.size() == 1 && want[0] > t.size(0) && t.size(0) > 0 &&
        want[0] % t.size(0) == 0) {
      if (notes)
        notes->push_back(key + ": repeated " + std::to_string(want[0] / t.size(0)) +
                         "x (BN statistics to sub-BN)");
      t = t.repeat({want[0] / t.size(0)});
    }
    out.emplace_back(key, t);
  }
  dict = std::move(out);
}

bool isHeadClassifierKey(const std::string& key) {
  return key.rfind("head.projection.", 0) == 0 || key.rfind("head.lin_5.", 0) == 0;
}

ApplyResult applyStateDict(torch::nn::Module& module, const StateDict& dict) {
  std::map<std::string, torch::Tensor> targets;
  for (auto& p : module.named_parameters()) targets[p.key()] = p.value();
  for (auto& b : module.named_buffers()) targets[b.key()] = b.value();
  std::map<std::string, const torch::Tensor*> given;
  std::vector<std::string> unexpected, mismatched, missing, duplicated;
  for (const auto& [k, t] : dict) {
    if (!given.emplace(k, &t).second) duplicated.push_back(k);
    auto it = targets.find(k);
    if (it == targets.end()) {
      if (!endsWith(k, "num_batches_tracked")) unexpected.push_back(k + " " + shapeText(t.sizes()));
    } else if (it->second.sizes() != t.sizes()) {
      mismatched.push_back(k + ": checkpoint " + shapeText(t.sizes()) + ", model " +
                           shapeText(it->second.sizes()));
    }
  }
  ApplyResult result;
  for (const auto& [k, t] : targets) {
    if (given.count(k) || endsWith(k, "num_batches_tracked")) continue;
    if (isHeadClassifierKey(k)) {
      result.absentHeadKeys.push_back(k);
    } else {
      missing.push_back(k + " " + shapeText(t.sizes()));
    }
  }
  if (!missing.empty() || !unexpected.empty() || !mismatched.empty() || !duplicated.empty()) {
    std::string msg = "checkpoint does not fit the model built from the config:";
    if (!missing.empty())
      msg += "\n  missing keys (" + std::to_string(missing.size()) + "):" + listed(missing);
    if (!unexpected.empty())
      msg +=
          "\n  unexpected keys (" + std::to_string(unexpected.size()) + "):" + listed(unexpected);
    if (!mismatched.empty())
      msg +=
          "\n  shape mismatches (" + std::to_string(mismatched.size()) + "):" + listed(mismatched);
    if (!duplicated.empty())
      msg +=
          "\n  keys given twice (" + std::to_string(duplicated.size()) + "):" + listed(duplicated);
    throw Error(msg);
  }
  torch::NoGradGuard noGrad;
  for (const auto& [k, t] : given) {
    auto it = targets.find(k);
    if (it == targets.end()) continue;
    it->second.copy_(*t);
    ++result.loaded;
  }
  return result;
}

IoFile readIoFile(const std::string& path) {
  const CheckpointFormat format = detectCheckpointFormat(path);
  if (format == CheckpointFormat::Caffe2Pickle)
    throw InputError(path, "an .io.pt file is a torch.save file, not a plain pickle");
  try {
    TorchFile file(path, format);
    const PyValue* inputs = ckpt::dictGet(file.root(), "inputs");
    const PyValue* feature = ckpt::dictGet(file.root(), "feature");
    if (!inputs || (inputs->kind != PyKind::List && inputs->kind != PyKind::Tuple) || !feature) {
      throw Error("expected {\"inputs\": [tensors], \"feature\": tensor}");
    }
    IoFile io;
    for (const PyValue* t : inputs->items) io.inputs.push_back(file.tensor(*t, true).contiguous());
    io.feature = file.tensor(*feature, true).contiguous();
    if (io.inputs.empty()) throw Error("no inputs");
    return io;
  } catch (const InputError&) {
    throw;
  } catch (const std::exception& e) {
    throw InputError(path, e.what());
  }
}

}  // namespace vidfeat::model
