// Feeds arbitrary bytes to the qcow2 header reader, as the first bytes of a
// disk a user hands us, and runs the safety checks on whatever parses.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "disk/qcow2.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view head(reinterpret_cast<const char*>(data), size);
  auto header = regdisk::disk::Qcow2Header::Parse(head);
  if (header.ok()) (void)header->CheckSafe();
  return 0;
}
