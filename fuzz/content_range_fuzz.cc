// Fuzzes the Content-Range parser the ranged download trusts for where a
// 206 answer's bytes go (registry/blob_io.h): any bytes must parse without
// crashing, and what parses must hold FIRST <= LAST < TOTAL.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "registry/blob_io.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view header(reinterpret_cast<const char*>(data), size);
  if (auto r = regdisk::registry::ParseContentRange(header)) {
    if (r->first > r->last || r->last >= r->total) std::abort();
  }
  return 0;
}
