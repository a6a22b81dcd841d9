// Fuzzes what a lazy entry's serving process reads back from the entry
// after a crash or from another hand (lazy/chunk_map.h, lazy/entry.h): the
// chunk map and serve.json. Any bytes must be refused or accepted without
// crashing; an accepted map has exactly one bit per entry, and an accepted
// serve.json encodes and parses back to the same.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "lazy/chunk_map.h"
#include "lazy/entry.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  const auto digest = regdisk::oci::Digest::Of("index");
  for (uint64_t entries : {uint64_t{0}, uint64_t{1}, uint64_t{9}, size * 8}) {
    auto bits = regdisk::lazy::DecodeChunkMap(bytes, digest, entries);
    if (bits.ok() && bits->size() != (entries + 7) / 8) std::abort();
  }
  if (auto c = regdisk::lazy::ParseServeConfig(bytes); c.ok()) {
    auto again = regdisk::lazy::ParseServeConfig(regdisk::lazy::EncodeServeConfig(*c));
    if (!again.ok() || regdisk::lazy::EncodeServeConfig(*again) != regdisk::lazy::EncodeServeConfig(*c)) std::abort();
  }
  return 0;
}
