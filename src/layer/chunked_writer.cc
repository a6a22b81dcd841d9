#include "layer/chunked_writer.h"

#include <algorithm>

namespace regdisk::layer {

std::vector<Extent> ChunkPieces(const std::vector<Extent>& extents, uint32_t chunk_size) {
  std::vector<Extent> pieces;
  const int64_t cs = chunk_size;
  for (const Extent& x : extents) {
    for (int64_t off = x.offset, end = x.offset + x.length; off < end;) {
      const int64_t boundary = (off / cs + 1) * cs;
      const int64_t stop = std::min(end, boundary);
      pieces.push_back({off, stop - off});
      off = stop;
    }
  }
  return pieces;
}

IndexBuilder::IndexBuilder(uint32_t chunk_size, Codec codec, uint64_t disk_size) {
  index_.chunk_size = chunk_size;
  index_.codec = codec;
  index_.disk_size = disk_size;
}

void IndexBuilder::AddChunk(const Extent& piece) {
  IndexEntry e;
  e.disk_offset = static_cast<uint64_t>(piece.offset);
  e.length = static_cast<uint64_t>(piece.length);
  index_.entries.push_back(e);
}

StatusOr<DiskIndex> IndexBuilder::Build(const std::vector<Compressor::Member>& members,
                                        size_t first_member) const {
  if (members.size() < first_member + index_.entries.size()) {
    return Internal("chunk index: the compressor wrote fewer members than there are chunks");
  }
  uint64_t blob = 0;
  for (size_t i = 0; i < first_member; ++i) blob += members[i].out;
  DiskIndex out = index_;
  out.entries.clear();
  uint64_t disk = 0;
  for (size_t i = 0; i < index_.entries.size(); ++i) {
    IndexEntry e = index_.entries[i];
    const Compressor::Member& m = members[first_member + i];
    if (m.in != e.length) return Internal("chunk index: a member does not hold exactly its chunk");
    if (e.disk_offset > disk) {
      IndexEntry hole;
      hole.disk_offset = disk;
      hole.length = e.disk_offset - disk;
      out.entries.push_back(hole);
    }
    e.blob_offset = blob;
    e.blob_length = m.out;
    e.sha256 = m.sha256;
    blob += m.out;
    disk = e.disk_offset + e.length;
    out.entries.push_back(e);
  }
  if (disk < out.disk_size) {
    IndexEntry hole;
    hole.disk_offset = disk;
    hole.length = out.disk_size - disk;
    out.entries.push_back(hole);
  }
  RETURN_IF_ERROR(ValidateIndex(out, blob));
  return out;
}

}  // namespace regdisk::layer
