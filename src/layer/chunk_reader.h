// Random access to a v2 disk layer's chunks: fetch one member of the blob,
// decompress it, and check its sha256 against the index entry before any
// byte is handed out. This is what a lazy reader (the NBD plugin) uses; the
// index itself comes from OpenIndex (disk_index.h), anchored in the
// manifest, so every byte returned is proven by the manifest digest.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "layer/disk_index.h"
#include "util/status.h"

namespace regdisk::layer {

// Reads exactly `len` bytes of the blob at `offset` into `buf` (e.g. one
// HTTP range request, or pread on a local blob).
using BlobReadAt = std::function<Status(uint64_t offset, char* buf, size_t len)>;

// Decompresses one gzip member / zstd frame (or copies, for kNone) that must
// fill `member` exactly and give exactly `expected_len` bytes. Trailing
// bytes, a second member, a short or long result are kCorrupt errors.
StatusOr<std::string> DecodeMember(Codec codec, std::string_view member, uint64_t expected_len);

// The `entry.length` disk bytes of a data entry, verified: read
// [blob_offset, +blob_length) through `read`, decode, check the sha256. A
// mismatch is a kCorrupt error naming the chunk; no bytes are returned.
// A zero extent has no chunk (InvalidArgument): its bytes are zeros.
// `entry` must come from a validated index (bounded lengths).
StatusOr<std::string> ReadChunk(const BlobReadAt& read, Codec codec, const IndexEntry& entry);

// The chunk's decoded bytes checked against the entry (length and sha256).
Status CheckChunk(const IndexEntry& entry, std::string_view bytes);

}  // namespace regdisk::layer
