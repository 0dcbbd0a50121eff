#include "pickle_reader.h"  // same folder: tests/fuzz compiles this file alone

#include <cstring>
#include <string_view>
#include <unordered_map>

#include "vidfeat/common/error.h"

namespace vidfeat::ckpt {

namespace {

[[noreturn]] void fail(const std::string& why) { throw Error("pickle: " + why); }

// The only globals a checkpoint may name. Each is data, never code: the unpickler records the
// call and the interpreters below read its arguments.
struct AllowedGlobal {
  const char* module;
  const char* name;
};
constexpr AllowedGlobal kAllowedGlobals[] = {
    {"collections", "OrderedDict"},
    {"torch._utils", "_rebuild_tensor_v2"},
    {"torch._utils", "_rebuild_parameter"},
    {"torch", "FloatStorage"},
    {"torch", "DoubleStorage"},
    {"torch", "HalfStorage"},
    {"torch", "BFloat16Storage"},
    {"torch", "LongStorage"},
    {"torch", "IntStorage"},
    {"torch", "ShortStorage"},
    {"torch", "CharStorage"},
    {"torch", "ByteStorage"},
    {"torch", "BoolStorage"},
    {"numpy.core.multiarray", "_reconstruct"},
    {"numpy.core.multiarray", "scalar"},
    {"numpy._core.multiarray", "_reconstruct"},  // numpy >= 2 spells the module so
    {"numpy._core.multiarray", "scalar"},
    {"numpy", "ndarray"},
    {"numpy", "dtype"},
    {"_codecs", "encode"},  // how Python 3 writes `bytes` at protocol 2
    // TorchScript archives (torch.jit.save; OpenAI's CLIP .pt files): typed lists of attributes.
    {"torch.jit._pickle", "build_intlist"},
    {"torch.jit._pickle", "build_floatlist"},
    {"torch.jit._pickle", "build_boollist"},
    {"torch.jit._pickle", "build_doublelist"},
    {"torch.jit._pickle", "build_tensorlist"},
    {"torch.jit._pickle", "restore_type_tag"},
};

bool isAllowed(const std::string& module, const std::string& name) {
  for (const auto& g : kAllowedGlobals) {
    if (module == g.module && name == g.name) return true;
  }
  // A TorchScript archive's modules are classes of its own compiled code ("__torch__.<python
  // module>[.___torch_mangle_N]", "<class>"); in data.pkl each is an empty object whose BUILD state
  // is the dict of its attributes. Only the names are recorded: no code is in data.pkl.
  return module == "__torch__" || module.compare(0, 10, "__torch__.") == 0;
}

std::string printable(const std::string& s) {
  std::string out;
  for (unsigned char c : s.substr(0, 80)) {
    if (c >= 32 && c < 127) {
      out += char(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  return out;
}

std::string opcodeName(uint8_t op) {
  char buf[48];
  if (op >= 32 && op < 127) {
    std::snprintf(buf, sizeof buf, "'%c' (0x%02x)", char(op), op);
  } else {
    std::snprintf(buf, sizeof buf, "0x%02x", op);
  }
  return buf;
}

// UTF-8 text -> Latin-1 bytes, as _codecs.encode(text, "latin1") does; every code point < 256.
std::string utf8ToLatin1(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      out += char(c);
      i += 1;
    } else if ((c & 0xE0) == 0xC0 && i + 1 < s.size() &&
               (static_cast<unsigned char>(s[i + 1]) & 0xC0) == 0x80) {
      const unsigned cp = ((c & 0x1Fu) << 6) | (static_cast<unsigned char>(s[i + 1]) & 0x3Fu);
      if (cp < 0x80 || cp > 0xFF) fail("_codecs.encode: text is not Latin-1");
      out += char(cp);
      i += 2;
    } else {
      fail("_codecs.encode: text is not Latin-1 encodable UTF-8");
    }
  }
  return out;
}

}  // namespace

class Unpickler {
 public:
  Unpickler(const uint8_t* data, size_t size)
      : p_(data),
        end_(data + size),
        begin_(data),
        slotBudget_(kSlotsPerByte * size + kSlotsBase),
        textBudget_(size) {}

  PickleTree run() {
    for (;;) {
      const uint8_t op = byte();
      switch (op) {
        case 0x80: {  // PROTO
          const uint8_t proto = byte();
          if (proto > 5) fail("unsupported protocol " + std::to_string(proto));
          break;
        }
        case 0x95:  // FRAME (protocol 4): a length hint only
          take(8);
          break;
        case '.': {  // STOP
          if (stack_.size() != 1 || !marks_.empty())
            fail("STOP with " + std::to_string(stack_.size()) + " values on the stack");
          tree_.root_ = stack_.back();
          tree_.consumed_ = size_t(p_ - begin_);
          return std::move(tree_);
        }
        case '(':
          marks_.push_back(stack_.size());
          break;
        case '0':
          pop();
          break;
        case '1':
          popMark();
          break;
        case '2':
          push(top());
          break;
        case 'N':
          push(make(PyKind::None));
          break;
        case 0x88:
        case 0x89: {
          PyValue* v = make(PyKind::Bool);
          v->boolean = op == 0x88;
          push(v);
          break;
        }
        case 'J': {
          int32_t x;
          std::memcpy(&x, take(4), 4);
          pushInt(x);
          break;
        }
        case 'K':
          pushInt(byte());
          break;
        case 'M': {
          const uint8_t* b = take(2);
          pushInt(int64_t(b[0]) | (int64_t(b[1]) << 8));
          break;
        }
        case 0x8a:  // LONG1
          pushLong(byte());
          break;
        case 0x8b: {  // LONG4
          const uint32_t n = u32();
          pushLong(n);
          break;
        }
        case 'G': {  // BINFLOAT: big-endian double
          const uint8_t* b = take(8);
          uint64_t bits = 0;
          for (int i = 0; i < 8; ++i) bits = (bits << 8) | b[i];
          PyValue* v = make(PyKind::Float);
          std::memcpy(&v->real, &bits, 8);
          push(v);
          break;
        }
        case 'U':  // SHORT_BINSTRING: Python 2 str
          pushText(PyKind::Bytes, byte());
          break;
        case 'T': {  // BINSTRING
          int32_t n;
          std::memcpy(&n, take(4), 4);
          if (n < 0) fail("BINSTRING with a negative length");
          pushText(PyKind::Bytes, size_t(n));
          break;
        }
        case 'X':  // BINUNICODE
          pushText(PyKind::Str, u32());
          break;
        case 0x8c:  // SHORT_BINUNICODE
          pushText(PyKind::Str, byte());
          break;
        case 'B':  // BINBYTES
          pushText(PyKind::Bytes, u32());
          break;
        case 'C':  // SHORT_BINBYTES
          pushText(PyKind::Bytes, byte());
          break;
        case ')':
          push(make(PyKind::Tuple));
          break;
        case 't': {
          PyValue* v = make(PyKind::Tuple);
          v->items = popMark();
          spend(v->items.size(), "TUPLE");
          push(v);
          break;
        }
        case 0x85:
        case 0x86:
        case 0x87: {
          const size_t n = size_t(op - 0x84);
          if (stack_.size() < n + floor()) fail("TUPLE" + std::to_string(n) + " on a short stack");
          PyValue* v = make(PyKind::Tuple);
          spend(n, "TUPLE");
          v->items.assign(stack_.end() - long(n), stack_.end());
          stack_.resize(stack_.size() - n);
          push(v);
          break;
        }
        case ']':
          push(make(PyKind::List));
          break;
        case 'l': {
          PyValue* v = make(PyKind::List);
          v->items = popMark();
          spend(v->items.size(), "LIST");
          push(v);
          break;
        }
        case '}':
          push(make(PyKind::Dict));
          break;
        case 'd': {
          PyValue* v = make(PyKind::Dict);
          setItems(v, popMark());
          push(v);
          break;
        }
        case 'a': {
          PyValue* item = pop();
          PyValue* list = top();
          if (list->kind != PyKind::List) fail("APPEND to a non-list");
          spend(1, "APPEND");
          list->items.push_back(item);
          break;
        }
        case 'e': {
          auto items = popMark();
          PyValue* list = top();
          if (list->kind != PyKind::List) fail("APPENDS to a non-list");
          spend(items.size(), "APPENDS");
          list->items.insert(list->items.end(), items.begin(), items.end());
          break;
        }
        case 's': {
          PyValue* value = pop();
          PyValue* key = pop();
          setItems(top(), {key, value});
          break;
        }
        case 'u': {
          auto kv = popMark();
          setItems(top(), kv);
          break;
        }
        case 'q':
          memo_[byte()] = top();
          break;
        case 'r':
          memo_[u32()] = top();
          break;
        case 0x94:  // MEMOIZE
          memo_[uint32_t(memo_.size())] = top();
          break;
        case 'h':
          push(memoGet(byte()));
          break;
        case 'j':
          push(memoGet(u32()));
          break;
        case 'c': {
          std::string module = line(), name = line();
          push(global(module, name));
          break;
        }
        case 0x93: {  // STACK_GLOBAL
          PyValue* name = pop();
          PyValue* module = pop();
          if (name->kind != PyKind::Str || module->kind != PyKind::Str)
            fail("STACK_GLOBAL needs two strings");
          push(global(module->text, name->text));
          break;
        }
        case 'R': {
          PyValue* args = pop();
          PyValue* callee = pop();
          push(call(callee, args, "REDUCE"));
          break;
        }
        case 0x81: {  // NEWOBJ
          PyValue* args = pop();
          PyValue* cls = pop();
          push(call(cls, args, "NEWOBJ"));
          break;
        }
        case 'b': {
          PyValue* state = pop();
          build(top(), state);
          break;
        }
        case 'Q': {  // BINPERSID: torch's reference to a storage record
          PyValue* v = make(PyKind::PersistentId);
          v->args = pop();
          push(v);
          break;
        }
        default:
          fail("opcode " + opcodeName(op) + " at byte " + std::to_string(p_ - begin_ - 1) +
               " is not one a checkpoint uses; refusing it");
      }
    }
  }

 private:
  // The budget (see kSlotsPerByte in the header): every value made and every slot a tuple, list
  // or dict gains counts against it, checked before the memory is taken.
  void spend(size_t slots, const char* what) {
    if (slots > slotBudget_ - slotsUsed_) {
      fail(std::string(what) + " would make more than " + std::to_string(slotBudget_) +
           " entries (the budget of " + std::to_string(kSlotsPerByte) +
           " per input byte); refusing a pickle that expands");
    }
    slotsUsed_ += slots;
  }

  PyValue* make(PyKind kind) {
    spend(1, "a value");
    tree_.arena_.push_back(std::make_unique<PyValue>());
    tree_.arena_.back()->kind = kind;
    return tree_.arena_.back().get();
  }

  uint8_t byte() {
    if (p_ >= end_)
      fail("truncated (ends at byte " + std::to_string(end_ - begin_) + " without STOP)");
    return *p_++;
  }
  const uint8_t* take(size_t n) {
    if (size_t(end_ - p_) < n)
      fail("truncated (needs " + std::to_string(n) + " more bytes at byte " +
           std::to_string(p_ - begin_) + ")");
    const uint8_t* at = p_;
    p_ += n;
    return at;
  }
  uint32_t u32() {
    const uint8_t* b = take(4);
    return uint32_t(b[0]) | (uint32_t(b[1]) << 8) | (uint32_t(b[2]) << 16) | (uint32_t(b[3]) << 24);
  }
  std::string line() {
    std::string s;
    for (;;) {
      const uint8_t c = byte();
      if (c == '\n') return s;
      if (s.size() > 200) fail("GLOBAL name too long");
      s += char(c);
    }
  }

  size_t floor() const { return marks_.empty() ? 0 : marks_.back(); }
  void push(PyValue* v) { stack_.push_back(v); }
  PyValue* top() {
    if (stack_.size() <= floor()) fail("stack underflow");
    return stack_.back();
  }
  PyValue* pop() {
    PyValue* v = top();
    stack_.pop_back();
    return v;
  }
  std::vector<PyValue*> popMark() {
    if (marks_.empty()) fail("no MARK to pop to");
    const size_t m = marks_.back();
    marks_.pop_back();
    std::vector<PyValue*> items(stack_.begin() + long(m), stack_.end());
    stack_.resize(m);
    return items;
  }
  PyValue* memoGet(uint32_t i) {
    auto it = memo_.find(i);
    if (it == memo_.end()) fail("memo " + std::to_string(i) + " read before it was written");
    return it->second;
  }

  void pushInt(int64_t x) {
    PyValue* v = make(PyKind::Int);
    v->integer = x;
    push(v);
  }
  void pushLong(size_t n) {
    const uint8_t* b = take(n);
    if (n <= 8) {
      uint64_t u = 0;
      for (size_t i = 0; i < n; ++i) u |= uint64_t(b[i]) << (8 * i);
      if (n > 0 && n < 8 && (b[n - 1] & 0x80)) u |= ~uint64_t(0) << (8 * n);  // sign-extend
      pushInt(int64_t(u));
    } else {
      PyValue* v = make(PyKind::BigInt);  // torch's legacy magic number is 80 bits
      v->text.assign(reinterpret_cast<const char*>(b), n);
      push(v);
    }
  }
  void pushText(PyKind kind, size_t n) {
    const uint8_t* b = take(n);
    PyValue* v = make(kind);
    v->text.assign(reinterpret_cast<const char*>(b), n);
    push(v);
  }

  // A dict's text keys -> their entry, so that SETITEM(S) and OrderedDict([...]) are O(1) per
  // key (a scan of the entries made an 80k-key dict quadratic: 36 s).
  struct TextKey {
    PyKind kind;
    std::string_view text;  // into the key value's text (values never change once made)
    bool operator==(const TextKey& o) const { return kind == o.kind && text == o.text; }
  };
  struct TextKeyHash {
    size_t operator()(const TextKey& k) const {
      return std::hash<std::string_view>()(k.text) ^ size_t(k.kind);
    }
  };
  using KeyIndex = std::unordered_map<TextKey, size_t, TextKeyHash>;

  void setItems(PyValue* dict, const std::vector<PyValue*>& kv) {
    if (dict->kind != PyKind::Dict) fail("SETITEM(S) on a non-dict");
    if (kv.size() % 2) fail("SETITEMS with an odd number of values");
    for (size_t i = 0; i < kv.size(); i += 2) setItem(dict, kv[i], kv[i + 1]);
  }

  void setItem(PyValue* dict, PyValue* key, PyValue* value, const char* what = "SETITEM") {
    // Python keeps the last value of a repeated key, in the first key's place.
    if (key->kind == PyKind::Str || key->kind == PyKind::Bytes) {
      const TextKey k{key->kind, key->text};
      auto at = keyIndex_.find(dict);
      if (at != keyIndex_.end()) {
        if (auto it = at->second.find(k); it != at->second.end()) {
          dict->entries[it->second].second = value;
          return;
        }
      }
      spend(2 + kSlotsPerIndexedKey + (at == keyIndex_.end() ? kSlotsPerIndexedKey : 0), what);
      if (at == keyIndex_.end()) at = keyIndex_.try_emplace(dict).first;
      at->second.emplace(k, dict->entries.size());
    } else {
      spend(2, what);
    }
    dict->entries.emplace_back(key, value);
  }

  PyValue* global(const std::string& module, const std::string& name) {
    if (!isAllowed(module, name)) {
      fail("global " + printable(module) + "." + printable(name) +
           " is not one a checkpoint needs; refusing it (nothing was executed)");
    }
    PyValue* v = make(PyKind::Global);
    v->module = module;
    v->name = name;
    return v;
  }

  PyValue* call(PyValue* callee, PyValue* args, const char* opcode) {
    if (callee->kind != PyKind::Global)
      fail(std::string(opcode) + " of something that is not a global");
    if (args->kind != PyKind::Tuple)
      fail(std::string(opcode) + " with arguments that are not a tuple");
    if (callee->module == "collections") {  // OrderedDict() or OrderedDict([(k, v), ...])
      PyValue* d = make(PyKind::Dict);
      if (!args->items.empty()) {
        if (args->items.size() != 1 || args->items[0]->kind != PyKind::List)
          fail("OrderedDict(...) with unexpected arguments");
        // A copy of the list: counted against the budget before it is made (one list copied by
        // 7-byte calls over and over took 1.8 GB for a 1 MB file).
        // setItem counts each entry before it is made; reserved only when the whole copy fits.
        const auto& pairs = args->items[0]->items;
        if (2 * pairs.size() <= slotBudget_ - slotsUsed_) d->entries.reserve(pairs.size());
        for (PyValue* pair : pairs) {
          if ((pair->kind != PyKind::Tuple && pair->kind != PyKind::List) ||
              pair->items.size() != 2) {
            fail("OrderedDict(...) item is not a pair");
          }
          setItem(d, pair->items[0], pair->items[1], "OrderedDict(list)");
        }
      }
      return d;
    }
    if (callee->module == "_codecs") {
      if (args->items.size() != 2 || args->items[0]->kind != PyKind::Str ||
          args->items[1]->kind != PyKind::Str) {
        fail("_codecs.encode(...) with unexpected arguments");
      }
      const std::string& enc = args->items[1]->text;
      if (enc != "latin1" && enc != "latin-1" && enc != "iso-8859-1")
        fail("_codecs.encode to " + printable(enc));
      const size_t n = args->items[0]->text.size();
      if (n > textBudget_)
        fail(
            "_codecs.encode(...) calls copy more text than the pickle holds; refusing a pickle "
            "that expands");
      textBudget_ -= n;
      PyValue* b = make(PyKind::Bytes);
      b->text = utf8ToLatin1(args->items[0]->text);
      return b;
    }
    PyValue* obj = make(PyKind::Object);
    obj->module = callee->module;
    obj->name = callee->name;
    obj->args = args;
    return obj;
  }

  void build(PyValue* target, PyValue* state) {
    if (target->kind == PyKind::Dict)
      return;  // an OrderedDict's __dict__ (torch's _metadata): unused
    if (target->kind != PyKind::Object) fail("BUILD on something that is not an object");
    if (target->state) fail("BUILD twice on one object");
    target->state = state;
  }

  const uint8_t* p_;
  const uint8_t* end_;
  const uint8_t* begin_;
  std::vector<PyValue*> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint32_t, PyValue*> memo_;
  std::unordered_map<const PyValue*, KeyIndex> keyIndex_;
  PickleTree tree_;
  const size_t slotBudget_;
  size_t slotsUsed_ = 0;
  size_t textBudget_;  // bytes _codecs.encode may still make (in all: the input's size)
};

PickleTree parsePickle(const uint8_t* data, size_t size) { return Unpickler(data, size).run(); }

// ---- interpreters ------------------------------------------------------------------------------

size_t scalarSize(ScalarType t) {
  switch (t) {
    case ScalarType::Float64:
    case ScalarType::Int64:
      return 8;
    case ScalarType::Float32:
    case ScalarType::Int32:
      return 4;
    case ScalarType::Float16:
    case ScalarType::BFloat16:
    case ScalarType::Int16:
      return 2;
    default:
      return 1;
  }
}

const char* scalarName(ScalarType t) {
  switch (t) {
    case ScalarType::Float32:
      return "float32";
    case ScalarType::Float64:
      return "float64";
    case ScalarType::Float16:
      return "float16";
    case ScalarType::BFloat16:
      return "bfloat16";
    case ScalarType::Int64:
      return "int64";
    case ScalarType::Int32:
      return "int32";
    case ScalarType::Int16:
      return "int16";
    case ScalarType::Int8:
      return "int8";
    case ScalarType::UInt8:
      return "uint8";
    case ScalarType::Bool:
      return "bool";
  }
  return "?";
}

std::string textOf(const PyValue& v, const char* what) {
  if (v.kind != PyKind::Str && v.kind != PyKind::Bytes)
    fail(std::string(what) + " is not a string");
  return v.text;
}

int64_t intOf(const PyValue& v, const char* what) {
  if (v.kind == PyKind::Bool) return v.boolean;
  if (v.kind != PyKind::Int) fail(std::string(what) + " is not an integer");
  return v.integer;
}

bool isDict(const PyValue& v) { return v.kind == PyKind::Dict; }

const PyValue* dictGet(const PyValue& dict, const std::string& key) {
  if (dict.kind != PyKind::Dict) return nullptr;
  for (const auto& [k, v] : dict.entries) {
    if ((k->kind == PyKind::Str || k->kind == PyKind::Bytes) && k->text == key) return v;
  }
  return nullptr;
}

namespace {

std::vector<int64_t> intTuple(const PyValue* v, const char* what) {
  if (!v || (v->kind != PyKind::Tuple && v->kind != PyKind::List))
    fail(std::string(what) + " is not a tuple");
  if (v->items.size() > 16) fail(std::string(what) + " has more than 16 dimensions");
  std::vector<int64_t> out;
  for (const PyValue* x : v->items) {
    const int64_t i = intOf(*x, what);
    if (i < 0) fail(std::string(what) + " has a negative entry");
    out.push_back(i);
  }
  return out;
}

// Number of elements, or an Error when it overflows int64.
int64_t product(const std::vector<int64_t>& sizes, const char* what) {
  int64_t n = 1;
  for (int64_t s : sizes) {
    if (__builtin_mul_overflow(n, s, &n)) fail(std::string(what) + ": element count overflows");
  }
  return n;
}

ScalarType storageType(const std::string& name) {
  static const std::pair<const char*, ScalarType> kTypes[] = {
      {"FloatStorage", ScalarType::Float32}, {"DoubleStorage", ScalarType::Float64},
      {"HalfStorage", ScalarType::Float16},  {"BFloat16Storage", ScalarType::BFloat16},
      {"LongStorage", ScalarType::Int64},    {"IntStorage", ScalarType::Int32},
      {"ShortStorage", ScalarType::Int16},   {"CharStorage", ScalarType::Int8},
      {"ByteStorage", ScalarType::UInt8},    {"BoolStorage", ScalarType::Bool}};
  for (const auto& [n, t] : kTypes) {
    if (name == n) return t;
  }
  fail("storage type torch." + printable(name) + " is not supported");
}

bool isCall(const PyValue& v, const char* module, const char* name) {
  return v.kind == PyKind::Object && v.module == module && v.name == name;
}

}  // namespace

int64_t TensorRef::numel() const { return product(sizes, "tensor size"); }
int64_t NdArray::numel() const { return product(shape, "array shape"); }

bool isTensor(const PyValue& v) {
  return isCall(v, "torch._utils", "_rebuild_tensor_v2") ||
         isCall(v, "torch._utils", "_rebuild_parameter");
}

TensorRef tensorRef(const PyValue& value) {
  const PyValue* v = &value;
  if (isCall(*v, "torch._utils", "_rebuild_parameter")) {  // Parameter(data, requires_grad, hooks)
    if (v->args->items.empty()) fail("_rebuild_parameter without data");
    v = v->args->items[0];
  }
  if (!isCall(*v, "torch._utils", "_rebuild_tensor_v2"))
    fail("expected a tensor (torch._utils._rebuild_tensor_v2)");
  const auto& a = v->args->items;
  if (a.size() < 4) fail("_rebuild_tensor_v2 with " + std::to_string(a.size()) + " arguments");
  if (a[0]->kind != PyKind::PersistentId || a[0]->args->kind != PyKind::Tuple)
    fail("tensor storage is not a persistent id");
  const auto& pid = a[0]->args->items;
  // ('storage', torch.XStorage, key, location, numel[, view_metadata])
  if (pid.size() < 5 || textOf(*pid[0], "persistent id tag") != "storage")
    fail("persistent id is not ('storage', ...)");
  if (pid[1]->kind != PyKind::Global || pid[1]->module != "torch")
    fail("persistent id without a torch storage type");
  TensorRef t;
  t.type = storageType(pid[1]->name);
  t.storageKey = textOf(*pid[2], "storage key");
  t.storageNumel = intOf(*pid[4], "storage size");
  if (t.storageNumel < 0) fail("negative storage size");
  int64_t visible = t.storageNumel;
  if (pid.size() > 5 && pid[5]->kind != PyKind::None) {  // legacy view: (view_key, offset, size)
    if (pid[5]->kind != PyKind::Tuple || pid[5]->items.size() != 3)
      fail("malformed storage view metadata");
    t.viewOffset = intOf(*pid[5]->items[1], "view offset");
    visible = intOf(*pid[5]->items[2], "view size");
    if (t.viewOffset < 0 || visible < 0 || t.viewOffset > t.storageNumel - visible)
      fail("storage view outside its storage");
  }
  t.offset = intOf(*a[1], "storage offset");
  t.sizes = intTuple(a[2], "tensor size");
  t.strides = intTuple(a[3], "tensor stride");
  if (t.offset < 0) fail("negative storage offset");
  if (t.sizes.size() != t.strides.size()) fail("tensor size and stride differ in length");
  if (t.numel() > 0) {
    int64_t last = t.offset;
    for (size_t i = 0; i < t.sizes.size(); ++i) {
      int64_t step;
      if (__builtin_mul_overflow(t.sizes[i] - 1, t.strides[i], &step) ||
          __builtin_add_overflow(last, step, &last)) {
        fail("tensor extent overflows");
      }
    }
    if (last >= visible) {
      fail("tensor reaches element " + std::to_string(last) + " of a storage of " +
           std::to_string(visible));
    }
  }
  return t;
}

namespace {

ScalarType numpyType(const PyValue& dtype) {
  if (!isCall(dtype, "numpy", "dtype") || dtype.args->items.empty())
    fail("array dtype is not numpy.dtype(...)");
  std::string code = textOf(*dtype.args->items[0], "dtype code");
  char order = '=';
  if (!code.empty() && (code[0] == '<' || code[0] == '>' || code[0] == '|' || code[0] == '=')) {
    order = code[0];
    code = code.substr(1);
  }
  // dtype state: (version, byte order, ...)
  if (dtype.state && dtype.state->kind == PyKind::Tuple && dtype.state->items.size() > 1) {
    const std::string o = textOf(*dtype.state->items[1], "dtype byte order");
    if (o.size() == 1) order = o[0];
  }
  static const std::pair<const char*, ScalarType> kCodes[] = {
      {"f4", ScalarType::Float32}, {"f8", ScalarType::Float64}, {"f2", ScalarType::Float16},
      {"i8", ScalarType::Int64},   {"i4", ScalarType::Int32},   {"i2", ScalarType::Int16},
      {"i1", ScalarType::Int8},    {"u1", ScalarType::UInt8},   {"b1", ScalarType::Bool}};
  for (const auto& [c, t] : kCodes) {
    if (code == c) {
      if (order == '>' && scalarSize(t) > 1) fail("big-endian numpy arrays are not supported");
      return t;
    }
  }
  fail("numpy dtype '" + printable(code) + "' is not supported");
}

}  // namespace

bool isNdArray(const PyValue& v) {
  return isCall(v, "numpy.core.multiarray", "_reconstruct") ||
         isCall(v, "numpy._core.multiarray", "_reconstruct") ||
         isCall(v, "numpy.core.multiarray", "scalar") ||
         isCall(v, "numpy._core.multiarray", "scalar");
}

NdArray ndArray(const PyValue& v) {
  NdArray a;
  if (v.name == "scalar") {  // numpy scalar: scalar(dtype, bytes)
    if (v.args->items.size() != 2) fail("numpy scalar with unexpected arguments");
    a.type = numpyType(*v.args->items[0]);
    if (v.args->items[1]->kind != PyKind::Bytes) fail("numpy scalar data is not bytes");
    a.data = &v.args->items[1]->text;
  } else {
    if (!isNdArray(v) || !v.state || v.state->kind != PyKind::Tuple)
      fail("numpy array without its state");
    const auto& s = v.state->items;
    // (version, shape, dtype, is_fortran, data) or, from old numpy, without the version.
    const size_t base = s.size() == 5 ? 1 : 0;
    if (s.size() != 4 && s.size() != 5)
      fail("numpy array state has " + std::to_string(s.size()) + " fields");
    a.shape = intTuple(s[base], "array shape");
    a.type = numpyType(*s[base + 1]);
    a.fortranOrder = intOf(*s[base + 2], "array order") != 0;
    if (s[base + 3]->kind != PyKind::Bytes && s[base + 3]->kind != PyKind::Str)
      fail("numpy array data is not bytes (object arrays are not supported)");
    a.data = &s[base + 3]->text;
  }
  int64_t bytes;
  if (__builtin_mul_overflow(a.numel(), int64_t(scalarSize(a.type)), &bytes) ||
      uint64_t(bytes) != a.data->size()) {
    fail("numpy array data holds " + std::to_string(a.data->size()) +
         " bytes, its shape needs another count");
  }
  return a;
}

}  // namespace vidfeat::ckpt
