#pragma once
// A restricted unpickler for checkpoint files, free of LibTorch (the fuzz target links it alone).
//
// It understands only the opcodes torch.save (protocol 2) and Python 2 / Python 3 protocol-2
// pickles of numpy arrays use, and only the globals those formats name (see kAllowedGlobals in
// the .cpp). Nothing is ever called: REDUCE / NEWOBJ / BUILD on an allowed global build an inert
// PyValue that the caller interprets (tensorRef, ndArray). Any other opcode or global is an Error
// naming it. The parser is iterative, and the interpreters below bound their recursion, so cyclic
// or deeply nested hostile input cannot overflow the stack.
//
// Budget (enforced, checked before the memory is taken): a pickle of N bytes makes at most
// kSlotsPerByte * N + kSlotsBase entries, where an entry is one value, one tuple/list slot or one
// half of a dict entry -- the copies OrderedDict([...]) makes of a list and APPENDS included --
// and a text dict key costs kSlotsPerIndexedKey more (its hash-index node); _codecs.encode copies
// at most N bytes of text in all. Past it the pickle is refused ("... budget ..."). So memory is
// O(N): at most one value (~200 bytes) per opcode, which no opcode can multiply, plus at most
// 4 * 8 = 32 bytes per input byte of copied slots and index, plus the input's own text. Time is
// O(N) too: dict keys are found through a hash index, not a scan. torch.save and numpy pickles
// use about one entry per byte.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace vidfeat::ckpt {

enum class PyKind {
  None,
  Bool,
  Int,
  BigInt,
  Float,
  Str,
  Bytes,
  Tuple,
  List,
  Dict,
  Global,
  Object,
  PersistentId
};

// One unpickled value. Owned by its PickleTree's arena; children are plain pointers into the same
// arena (so shared and even cyclic references cost nothing and cannot leak).
struct PyValue {
  PyKind kind = PyKind::None;
  bool boolean = false;
  int64_t integer = 0;
  double real = 0.0;
  std::string text;             // Str (UTF-8), Bytes, BigInt (two's complement, LE)
  std::vector<PyValue*> items;  // Tuple, List
  std::vector<std::pair<PyValue*, PyValue*>> entries;  // Dict (insertion order)
  std::string module, name;  // Global; Object: the global it was made from
  PyValue* args = nullptr;   // Object: the argument tuple; PersistentId: the id
  PyValue* state = nullptr;  // Object: what BUILD gave it
};

constexpr size_t kSlotsPerByte = 4;
constexpr size_t kSlotsPerIndexedKey = 8;
constexpr size_t kSlotsBase = 4096;

class PickleTree {
 public:
  const PyValue* root() const { return root_; }
  size_t consumed() const { return consumed_; }  // bytes of the input this pickle took

 private:
  friend class Unpickler;
  std::vector<std::unique_ptr<PyValue>> arena_;
  PyValue* root_ = nullptr;
  size_t consumed_ = 0;
};

// Parses one pickle starting at data[0] and ending at its STOP opcode. Throws vidfeat::Error
// ("pickle: ...") on anything outside the restricted set or on malformed / truncated input.
PickleTree parsePickle(const uint8_t* data, size_t size);

// ---- interpreting the inert tree -------------------------------------------------------------

enum class ScalarType {
  Float32,
  Float64,
  Float16,
  BFloat16,
  Int64,
  Int32,
  Int16,
  Int8,
  UInt8,
  Bool
};
size_t scalarSize(ScalarType t);
const char* scalarName(ScalarType t);

// Str or Bytes as a byte string (Python 2 `str` arrives as Bytes); Error for anything else.
std::string textOf(const PyValue& v, const char* what);
int64_t intOf(const PyValue& v, const char* what);
// Dict lookup by text key; nullptr when absent or `dict` is not a Dict.
const PyValue* dictGet(const PyValue& dict, const std::string& key);
// A dict made by collections.OrderedDict() (torch state dicts) or a plain one.
bool isDict(const PyValue& v);

// torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...) / _rebuild_parameter.
struct TensorRef {
  std::string storageKey;
  ScalarType type = ScalarType::Float32;
  int64_t storageNumel = 0;  // elements the storage holds (from the persistent id)
  int64_t viewOffset = 0;    // legacy storage views: offset of this view into its root storage
  int64_t offset = 0;
  std::vector<int64_t> sizes, strides;
  int64_t numel() const;
};
bool isTensor(const PyValue& v);
// Throws Error for inconsistent metadata: negative sizes/strides, an element index overflowing
// int64 or lying outside the storage.
TensorRef tensorRef(const PyValue& v);

// numpy.core.multiarray._reconstruct(ndarray, ...) + BUILD((version, shape, dtype, fortran, data)).
struct NdArray {
  ScalarType type = ScalarType::Float32;
  std::vector<int64_t> shape;
  bool fortranOrder = false;
  const std::string* data = nullptr;  // exactly numel * scalarSize(type) bytes, little-endian
  int64_t numel() const;
};
bool isNdArray(const PyValue& v);
NdArray ndArray(const PyValue& v);

}  // namespace vidfeat::ckpt
