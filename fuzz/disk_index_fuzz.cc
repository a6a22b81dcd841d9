// libFuzzer target: the v2 chunk index (layer/disk_index.h) and what a lazy
// reader parses before trusting anything: the index bytes, the anchor
// annotations and a chunk's member. Each must return a status (never crash,
// hang or throw) with a one-line error; an index that parses must encode
// back to the same bytes, cover its disk exactly, and find every offset.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "layer/chunk_reader.h"
#include "layer/disk_index.h"

namespace {

using namespace regdisk;
using namespace regdisk::layer;

void Check(bool ok) {
  if (!ok) std::abort();
}

void CheckError(const Status& st) {
  Check(!st.ok() && !st.message().empty() && st.message().find('\n') == std::string::npos);
}

void CheckIndex(std::string_view input, uint64_t data_end) {
  auto index = DecodeIndex(input, data_end);
  if (!index.ok()) return CheckError(index.status());
  Check(EncodeIndex(*index) == input);
  uint64_t pos = 0;
  for (size_t i = 0; i < index->entries.size(); ++i) {
    const IndexEntry& e = index->entries[i];
    Check(e.disk_offset == pos && e.length > 0);
    Check(FindEntry(*index, e.disk_offset) == i && FindEntry(*index, e.disk_offset + e.length - 1) == i);
    if (!e.zero()) Check(e.length <= index->chunk_size && e.blob_offset + e.blob_length <= data_end);
    pos += e.length;
  }
  Check(pos == index->disk_size && !FindEntry(*index, pos).has_value());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  CheckIndex(input, UINT64_MAX);
  CheckIndex(input, 1 << 20);

  // The anchor, with the input as the position annotation and chunk size.
  oci::Descriptor layer;
  layer.size = 1ull << 40;
  layer.annotations[kIndexDigestAnnotation] = oci::Digest::Of("x").str();
  layer.annotations[kIndexPositionAnnotation] = std::string(input.substr(0, 100));
  layer.annotations[kChunkSizeAnnotation] = std::string(input.substr(0, 12));
  auto anchor = ParseAnchor(layer);
  if (!anchor.ok()) CheckError(anchor.status());

  // A chunk's member: exactly one member, exactly the expected length.
  for (Codec codec : {Codec::kGzip, Codec::kZstd, Codec::kNone}) {
    auto bytes = DecodeMember(codec, input, 4096);
    if (bytes.ok()) {
      Check(bytes->size() == 4096);
    } else {
      CheckError(bytes.status());
    }
  }
  return 0;
}
