// libFuzzer target: the v2 head member (layer/head_reader.h), which a lazy
// reader parses from the registry before it serves a disk: decompression
// and tar headers. The first byte picks the codec; the rest is the member.
// It must return a status (never crash, hang or throw) with a one-line
// error, and a head that parses names a file directly under disk/.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include "layer/head_reader.h"

namespace {

using namespace regdisk;
using namespace regdisk::layer;

void Check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const Codec codecs[] = {Codec::kNone, Codec::kGzip, Codec::kZstd};
  const std::string member(reinterpret_cast<const char*>(data) + 1, size - 1);
  DiskIndex index;
  index.codec = codecs[data[0] % 3];
  index.disk_size = 1 << 20;
  index.entries = {{0, index.disk_size, member.size(), 1 << 20, {}}};
  BlobReadAt read = [&](uint64_t off, char* buf, size_t len) -> Status {
    if (off > member.size() || len > member.size() - off) return InvalidArgument("past the end");
    std::memcpy(buf, member.data() + off, len);
    return OkStatus();
  };
  auto head = ReadHead(read, index);
  if (!head.ok()) {
    Check(!head.status().message().empty() && head.status().message().find('\n') == std::string::npos);
    return 0;
  }
  Check(!head->name.empty() && head->name.find('/') == std::string::npos && head->size == index.disk_size);
  return 0;
}
