// Delta pulls: chunks that other cache entries already hold. An entry
// ROOT/disks/OTHER/ with an `index` (every v2 entry keeps one) lists the
// sha256 of each of its chunks; when one equals a chunk this entry needs,
// its bytes are copied from OTHER's `disk` (or `disk.partial`) at that
// chunk's disk offset and re-hashed before use. Nothing about the donor is
// trusted: a donor whose bytes do not hash to the digest (a hole not yet
// filled, a changed file) is just skipped, and the chunk comes from the
// registry.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "layer/disk_index.h"
#include "util/status.h"

namespace regdisk::lazy {

// Other entries scanned at most: each costs reading and decoding its index
// (up to 128 MiB); a node caches a few dozen disks.
inline constexpr size_t kMaxDonorEntries = 64;
// Places one chunk is looked for at most: more copies of the same chunk
// (a zero-filled block in many disks) add nothing but failed reads.
inline constexpr size_t kMaxPlacesPerChunk = 4;

class Donors {
 public:
  // Indexes the chunks of ROOT/disks/* (except `self_key`) whose digests
  // `wanted` lists as data chunks. Unreadable or malformed entries are
  // skipped.
  static Donors Scan(const std::string& root, const std::string& self_key, const layer::DiskIndex& wanted);

  // The verified bytes of `e` from a donor, or NotFound when none has them.
  StatusOr<std::string> Fetch(const layer::IndexEntry& e) const;
  // True when some donor lists `e`'s digest.
  bool Lists(const layer::IndexEntry& e) const { return places_.count(e.sha256) != 0; }

 private:
  struct Place {
    std::string file;  // OTHER/disk or OTHER/disk.partial
    uint64_t offset;
    uint64_t length;
  };
  std::map<std::array<uint8_t, 32>, std::vector<Place>> places_;
};

}  // namespace regdisk::lazy
