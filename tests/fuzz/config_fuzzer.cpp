// libFuzzer target: the YAML configuration loader on arbitrary text. Any text either loads or
// gives a ConfigError (anything else escaping is a defect and ends the fuzzer); a configuration
// that loads prints as YAML that loads back to the same configuration.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "trainer/config/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  distgan::Config config;
  try {
    config = distgan::parse_config(text, "fuzz.yaml");
  } catch (const distgan::ConfigError&) {
    return 0;
  }
  const std::string printed = distgan::print_config(config);
  const distgan::Config again = distgan::parse_config(printed, "fuzz.yaml");  // must not throw
  if (distgan::print_config(again) != printed) std::abort();                // and must round-trip
  return 0;
}
