// The head member of a v2 disk layer (docs/disk-standard-v2.md, section 3):
// every tar byte before the disk's first data byte, i.e. the `disk/`
// directory entry, the disk's pax and ustar headers and its sparse map. A
// lazy reader reads it (one range request) to learn what the tar says of
// the disk (its name, owner and mode) before serving it.
//
// No digest covers the head alone: the layer digest does, once the whole
// blob is read (the background fill checks it). What the head says is used
// only to refuse (an unreadable owner or mode, another disk, a size that
// disagrees with the index), never as disk data.
#pragma once

#include <cstdint>
#include <string>

#include "layer/chunk_reader.h"
#include "layer/disk_index.h"
#include "util/status.h"

namespace regdisk::layer {

// Tar header bytes besides the sparse map: the directory entry, the disk's
// pax header (GNU.sparse.* keys, a long name) and ustar header, with their
// 512-byte padding; a name is at most a few KiB.
inline constexpr uint64_t kHeadFixedBytes = 64 << 10;
// Sparse map bytes per index entry: at most one data run per entry, two
// decimal u64s (at most 20 digits) and two newlines each.
inline constexpr uint64_t kSparseMapBytesPerEntry = 42;
// The most uncompressed bytes a head may hold for `index`.
uint64_t MaxHeadBytes(const DiskIndex& index);

struct HeadEntry {
  std::string name;       // inside disk/ (no slash)
  int64_t uid = 0, gid = 0;
  uint32_t mode = 0;      // permission bits
  uint64_t size = 0;      // the file's real size (holes included)
};

// Reads the head member, [0, first data chunk's blob offset), through
// `read`, decodes it as exactly one member of at most MaxHeadBytes, and
// parses its tar headers: directories named disk or disk/ only, then the
// regular file disk/NAME, whose size must be the index's disk size. A disk
// without data chunks has no head of known length: Unsupported.
StatusOr<HeadEntry> ReadHead(const BlobReadAt& read, const DiskIndex& index);

}  // namespace regdisk::layer
