// libFuzzer target for the restricted unpickler (torch-free: built by run_fuzz.sh with clang
// -fsanitize=fuzzer,address against pickle_reader.cpp alone). Parses consecutive pickles as the
// legacy torch.save reader does, then runs the interpreters on everything reachable.
#include <cstddef>
#include <cstdint>
#include <set>
#include <vector>

#include "../../src/model/checkpoint/pickle_reader.h"
#include "vidfeat/common/error.h"

using namespace vidfeat::ckpt;

static void interpret(const PyValue* root) {
  std::vector<const PyValue*> todo = {root};
  std::set<const PyValue*> seen;
  while (!todo.empty()) {
    const PyValue* v = todo.back();
    todo.pop_back();
    if (!seen.insert(v).second) continue;
    try {
      if (isTensor(*v)) (void)tensorRef(*v).numel();
      if (isNdArray(*v)) (void)ndArray(*v).numel();
      if (isDict(*v)) (void)dictGet(*v, "blobs");
    } catch (const vidfeat::Error&) {
    }
    for (const PyValue* c : v->items) todo.push_back(c);
    for (const auto& [k, x] : v->entries) {
      todo.push_back(k);
      todo.push_back(x);
    }
    if (v->args) todo.push_back(v->args);
    if (v->state) todo.push_back(v->state);
  }
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  size_t at = 0;
  for (int i = 0; i < 6 && at < size; ++i) {
    try {
      PickleTree t = parsePickle(data + at, size - at);
      interpret(t.root());
      if (t.consumed() == 0) break;
      at += t.consumed();
    } catch (const vidfeat::Error&) {
      break;
    }
  }
  return 0;
}
