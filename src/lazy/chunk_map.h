// ENTRY/chunks: which index entries disk.partial holds, one bit each.
//
//   offset 0   8 bytes   magic "RDSKCHK1"
//          8   8 bytes   entry count n (u64, little-endian)
//         16  32 bytes   the index's sha256 (the anchored digest), raw
//         48  ceil(n/8)  bit i (byte i/8, bit i%8) set: entry i is in disk.partial
//
// A bit is set only after the chunk's bytes were verified and written to
// disk.partial; it is a hint, never a proof: after a crash the data may not
// have reached the disk while the bit did (there is no fsync between them).
// So the chunk store re-verifies every chunk marked here before its first
// use in each process (ChunkStore), and a missing, foreign (other index) or
// malformed file is just a fresh, empty map. The file is outside data after
// a crash: DecodeChunkMap checks its exact size and header.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "oci/digest.h"
#include "util/status.h"

namespace regdisk::lazy {

inline constexpr char kChunkMapMagic[8] = {'R', 'D', 'S', 'K', 'C', 'H', 'K', '1'};
inline constexpr uint64_t kChunkMapHeaderBytes = 48;

// The bits of a well-formed map for an index of `entries` entries with
// sha256 `index_digest`; Corrupt when the size, magic, count or digest
// differ (the caller starts afresh).
StatusOr<std::vector<uint8_t>> DecodeChunkMap(std::string_view bytes, const oci::Digest& index_digest,
                                              uint64_t entries);
std::string EncodeChunkMap(const std::vector<uint8_t>& bits, const oci::Digest& index_digest, uint64_t entries);
// The bits of the map file at `path`, read-only (for a reader beside the
// store, e.g. the peer server): a missing, foreign or malformed file is an
// error (the caller treats it as an empty map).
StatusOr<std::vector<uint8_t>> ReadChunkMap(const std::string& path, const oci::Digest& index_digest,
                                            uint64_t entries);
// Bit i of decoded map bits (false past the end).
inline bool ChunkMapBit(const std::vector<uint8_t>& bits, size_t i) {
  return i / 8 < bits.size() && (bits[i / 8] >> (i % 8) & 1) != 0;
}

// The map file of one entry. Thread-safe.
class ChunkMap {
 public:
  // Opens `path`, creating or rewriting it empty when it is missing or not
  // a map of this index.
  static StatusOr<std::unique_ptr<ChunkMap>> Open(const std::string& path, const oci::Digest& index_digest,
                                                  uint64_t entries);
  ~ChunkMap();
  bool Has(size_t i) const;
  // Sets bit i in memory and in the file (one byte written, no fsync).
  Status Set(size_t i);

 private:
  ChunkMap(int fd, std::vector<uint8_t> bits) : fd_(fd), bits_(std::move(bits)) {}
  int fd_;
  mutable std::mutex mu_;
  std::vector<uint8_t> bits_;
};

}  // namespace regdisk::lazy
