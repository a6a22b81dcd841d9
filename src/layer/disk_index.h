// The chunk index of a v2 disk layer (docs/disk-standard-v2.md): where each
// chunk of the disk file lies in the layer blob and the sha256 of its bytes,
// keyed by disk offset, with holes as zero extents. The index is anchored in
// the layer descriptor's annotations (its digest and position), so the chain
// of trust runs manifest digest -> index digest -> chunk digests.
//
// Everything here parses outside data: each bound is a named constant, and
// a bad index or annotation gets a one-line kCorrupt/kInvalidArgument error.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "layer/decompressor.h"
#include "oci/digest.h"
#include "oci/manifest.h"
#include "util/status.h"

namespace regdisk::layer {

// Chunk sizes (bytes of disk data per chunk; powers of two).
inline constexpr uint32_t kDefaultChunkSize = 1 << 20;
// Below 64 KiB, per-chunk overhead (64 index bytes, a member header, one
// HTTP range request each when served lazily) outweighs what is saved.
inline constexpr uint32_t kMinChunkSize = 64 << 10;
// A chunk is decompressed and verified whole in memory before any of its
// bytes are used; 16 MiB keeps that bounded per reader thread.
inline constexpr uint32_t kMaxChunkSize = 16 << 20;

// Encoding: a 32-byte header, then 64 bytes per entry (little-endian).
inline constexpr char kIndexMagic[8] = {'R', 'D', 'S', 'K', 'I', 'D', 'X', '2'};
inline constexpr uint64_t kIndexHeaderBytes = 32;
inline constexpr uint64_t kIndexEntryBytes = 64;
// Enough for a 1 TiB disk (ExtractLimits' largest file) at the default chunk
// size with a hole between every two chunks; the whole index is held in
// memory by whoever serves the disk.
inline constexpr uint64_t kMaxIndexEntries = 1ull << 21;
inline constexpr uint64_t kMaxIndexBytes = kIndexHeaderBytes + kMaxIndexEntries * kIndexEntryBytes;

// The most blob bytes one member (gzip member, zstd frame) of `length`
// uncompressed bytes may take: both codecs store incompressible data with
// well under 1/128 overhead, plus headers.
constexpr uint64_t MaxMemberBytes(uint64_t length) { return length + length / 128 + 4096; }

// Annotations on the v2 disk layer's descriptor.
inline constexpr char kIndexDigestAnnotation[] = "io.regdisk.disk.index.digest";      // sha256:<hex>
inline constexpr char kIndexPositionAnnotation[] = "io.regdisk.disk.index.position";  // off:len:ulen
inline constexpr char kChunkSizeAnnotation[] = "io.regdisk.disk.chunk-size";           // bytes
// The index's tar entry: last in the layer, outside disk/.
inline constexpr char kIndexEntryName[] = ".regdisk/index";

struct IndexEntry {
  uint64_t disk_offset = 0;
  uint64_t length = 0;       // disk bytes
  uint64_t blob_offset = 0;  // 0 for a zero extent
  uint64_t blob_length = 0;  // compressed bytes; 0 marks a zero extent (a hole)
  std::array<uint8_t, 32> sha256{};  // of the `length` disk bytes; zeros for a hole
  bool zero() const { return blob_length == 0; }
};

struct DiskIndex {
  uint32_t chunk_size = kDefaultChunkSize;
  Codec codec = Codec::kGzip;
  uint64_t disk_size = 0;
  std::vector<IndexEntry> entries;  // by disk offset, covering [0, disk_size)
};

// Where the index is, from the layer descriptor.
struct IndexAnchor {
  oci::Digest digest;           // sha256 of the uncompressed index bytes
  uint64_t offset = 0;          // of the index's member in the blob
  uint64_t length = 0;          // compressed length of that member
  uint64_t uncompressed_length = 0;
  uint32_t chunk_size = 0;
};

// A chunk digest as lowercase hex, and back (the hex must come from Sha256).
std::string ShaHex(const std::array<uint8_t, 32>& sha);
std::array<uint8_t, 32> ShaFromHex(std::string_view hex);

// The encoded index (deterministic).
std::string EncodeIndex(const DiskIndex& index);
// Parses and validates (ValidateIndex with `data_end`) index bytes.
StatusOr<DiskIndex> DecodeIndex(std::string_view bytes, uint64_t data_end);
// The structural rules: chunk size, coverage of [0, disk_size) exactly with
// no gaps or overlaps, data entries within one aligned chunk, no two zero
// extents in a row, data members contiguous in disk order and ending at or
// before `data_end` (the index member's offset), member sizes within bounds.
Status ValidateIndex(const DiskIndex& index, uint64_t data_end);

// Writes the three annotations.
void AnnotateAnchor(const IndexAnchor& anchor, oci::Annotations& annotations);
// Reads them from a layer descriptor; nullopt when the layer has none (not
// v2); an error when they are partial or malformed, or place the index
// outside the blob (`layer.size`).
StatusOr<std::optional<IndexAnchor>> ParseAnchor(const oci::Descriptor& layer);

// Opens the index from the compressed bytes of its member (read from the
// blob at anchor.offset, anchor.length bytes): decompresses it (one member,
// exactly anchor.uncompressed_length bytes), checks its sha256 against
// anchor.digest before parsing, then decodes and validates it and checks
// that it agrees with the anchor and `codec` (from the layer media type).
StatusOr<DiskIndex> OpenIndex(const IndexAnchor& anchor, Codec codec, std::string_view member);
// The same checks on the index bytes already decompressed (an index kept
// on disk, re-checked by whoever reads it): length and sha256 against the
// anchor before parsing, then as OpenIndex.
StatusOr<DiskIndex> OpenIndexBytes(const IndexAnchor& anchor, Codec codec, std::string_view bytes);

// The entry holding disk byte `offset`; nullopt past the end.
std::optional<size_t> FindEntry(const DiskIndex& index, uint64_t offset);

}  // namespace regdisk::layer
