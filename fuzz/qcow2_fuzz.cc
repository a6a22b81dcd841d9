// Feeds arbitrary bytes to the qcow2 header reader, as the first bytes of a
// disk a user hands us, and runs the safety checks on whatever parses; then
// the table checks, with the input as the whole file, and the entry checks
// on the refcount and L1 tables where the input holds them.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "disk/qcow2.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using regdisk::disk::Qcow2Header;
  std::string_view file(reinterpret_cast<const char*>(data), size);
  auto header = Qcow2Header::Parse(file);
  if (!header.ok()) return 0;
  (void)header->CheckSafe();
  if (!header->CheckTables(size).ok()) return 0;
  for (auto table : {Qcow2Header::Table::kRefcount, Qcow2Header::Table::kL1}) {
    // CheckTables passed: a table with bytes lies inside the input (an
    // empty one's offset means nothing).
    if (header->TableBytes(table) == 0) continue;
    (void)header->CheckTableEntries(table, file.substr(header->TableOffset(table), header->TableBytes(table)), size);
  }
  return 0;
}
