// Fuzzes the WWW-Authenticate parser (registry/challenge.h): any bytes a
// registry sends must parse without crashing, and every challenge found must
// have a non-empty lowercase scheme.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "registry/challenge.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view header(reinterpret_cast<const char*>(data), size);
  for (const auto& c : regdisk::registry::ParseChallenges(header)) {
    if (c.scheme.empty()) std::abort();
    for (char ch : c.scheme) {
      if (ch >= 'A' && ch <= 'Z') std::abort();
    }
  }
  return 0;
}
