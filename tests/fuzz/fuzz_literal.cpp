// libFuzzer target for the config's Python-literal parser (yacs' _decode_cfg_value: "[1, (2, 3)]",
// quoted strings, True/None, numbers), built by run_fuzz.sh with clang -fsanitize=fuzzer,address
// against src/config/config.cpp. Its recursion is depth-limited (kMaxLiteralDepth): no input may
// overflow the stack, take more than linear time or leak.
#include <cstddef>
#include <cstdint>
#include <string>

#include "vidfeat/common/error.h"
#include "vidfeat/config/config.h"

namespace vidfeat {
// The embedded PySlowFast defaults are not needed by the literal parser.
extern const char* const kPySlowFastDefaultsYaml;
const char* const kPySlowFastDefaultsYaml = "{}";
}  // namespace vidfeat

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  std::string yaml;
  try {
    (void)vidfeat::pythonLiteralToYaml(text, yaml);
    (void)vidfeat::pythonLiteralToYaml("[" + text + "]", yaml);
  } catch (const vidfeat::Error&) {
  }
  return 0;
}
