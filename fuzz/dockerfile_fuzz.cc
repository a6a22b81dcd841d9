// libFuzzer target: the Dockerfile subset parser. It must return a status
// for any bytes (never crash, hang or throw); a refusal is one line; what
// parses holds only clean sources (no "..", not absolute) and /disk targets.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "build/dockerfile.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto df = regdisk::build::ParseDockerfile(text);
  if (!df.ok()) {
    if (df.status().message().find('\n') != std::string::npos) std::abort();
    return 0;
  }
  for (const auto& c : df->copies) {
    if (c.source.empty() || c.source.front() == '/' || c.source.find("..") != std::string::npos) {
      if (c.source.find("..") != std::string::npos) {
        // ".." is allowed only inside a component name like "a..b".
        for (size_t p = c.source.find(".."); p != std::string::npos; p = c.source.find("..", p + 1)) {
          bool start = p == 0 || c.source[p - 1] == '/';
          bool end = p + 2 == c.source.size() || c.source[p + 2] == '/';
          if (start && end) std::abort();
        }
      } else {
        std::abort();
      }
    }
    if (!c.destination.starts_with("/disk/")) std::abort();
  }
  return 0;
}
