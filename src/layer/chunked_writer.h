// The writer's side of the v2 disk standard (docs/disk-standard-v2.md):
// how a file's data runs are cut into chunks, and how the chunk index is
// assembled from the chunks' digests and the compressor's member sizes.
// LayerWriter drives it; it holds no I/O of its own.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "layer/compressor.h"
#include "layer/disk_index.h"
#include "util/status.h"

namespace regdisk::layer {

// A run of data in a file; everything between runs is a hole.
struct Extent {
  int64_t offset;
  int64_t length;
};

// `extents` (sorted, disjoint) cut at every multiple of `chunk_size`: each
// piece lies within one aligned chunk of the disk.
std::vector<Extent> ChunkPieces(const std::vector<Extent>& extents, uint32_t chunk_size);

class IndexBuilder {
 public:
  IndexBuilder(uint32_t chunk_size, Codec codec, uint64_t disk_size);
  // Records the next chunk's extent, in disk order. It must be the
  // compressor's member number `first_member + n` for the n-th chunk added.
  void AddChunk(const Extent& piece);
  // The index: chunk members placed (and their digests taken) from the
  // compressor's `members` (all written, Flush()ed), holes between chunks
  // as zero extents. Validated.
  StatusOr<DiskIndex> Build(const std::vector<Compressor::Member>& members, size_t first_member) const;

 private:
  DiskIndex index_;  // data entries only, blob positions unset
};

}  // namespace regdisk::layer
