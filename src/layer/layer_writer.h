// LayerWriter turns files into one reproducible OCI layer (a tar stream,
// optionally compressed) in a single pass: read -> tar -> hash (diff_id) ->
// compress -> BlobWriter (which hashes the compressed bytes and commits).
//
// Like LevelDB's TableBuilder it keeps a sticky error: after a failure every
// call returns that error, and Finish() reports it. Destroying a writer
// without Finish() discards the blob.
//
// Reproducible: entries are written in the order added with fixed mtime,
// no atime/ctime, no user/group names, numeric owners as given; the same
// inputs give the same bytes, hence the same digests. Not thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "layer/disk_index.h"
#include "oci/manifest.h"
#include "oci/store.h"
#include "util/status.h"

namespace regdisk::layer {

enum class Compression { kNone, kGzip, kZstd };
StatusOr<Compression> ParseCompression(std::string_view name);  // none|gzip|zstd
const char* CompressionName(Compression c);
// The OCI layer media type for a compression.
const char* LayerMediaType(Compression c);
// The codec that reads a compression back.
Codec CodecOf(Compression c);

struct LayerOptions {
  Compression compression = Compression::kGzip;
  int level = -1;         // -1: the codec's default (gzip 6, zstd 3)
  int threads = 0;        // compression threads; 0: one per core
  int64_t mtime = 0;      // seconds since the epoch for every entry
  // 0: one tar stream (the v1alpha standard). Otherwise the v2 disk
  // standard (docs/disk-standard-v2.md): the data of files added with
  // AddFile is cut into independent members of at most this many bytes of
  // file data, aligned to multiples of it, and Finish() appends the chunk
  // index as the last entry. Checked against the bounds in disk_index.h.
  uint32_t chunk_size = 0;
};

struct LayerResult {
  oci::Descriptor descriptor;  // compressed blob: media type, digest, size
  oci::Digest diff_id;         // sha256 of the uncompressed tar
  uint64_t uncompressed_size = 0;
  bool created = false;        // BlobWriter::created() of the committed blob
  // v2 only: where the chunk index is and its digest (already recorded in
  // descriptor.annotations), and the index itself.
  std::optional<IndexAnchor> anchor;
  std::optional<DiskIndex> index;
};

// Per-entry metadata.
struct EntryOwner {
  int uid = 0;
  int gid = 0;
  int mode = 0755;  // permission bits only
};

class LayerWriter {
 public:
  // `out` receives the compressed bytes and is committed by Finish().
  LayerWriter(std::unique_ptr<oci::BlobWriter> out, LayerOptions options);
  ~LayerWriter();
  LayerWriter(const LayerWriter&) = delete;
  LayerWriter& operator=(const LayerWriter&) = delete;

  // `name` is relative ("disk", "disk/fedora.qcow2"), no leading '/', no
  // ".." component.
  Status AddDirectory(std::string_view name, EntryOwner owner);
  // Adds the regular file at `src_path`. With a chunk size (v2) only one
  // file may be added, and it is the file the index describes. When `sparse` is set, holes found
  // with SEEK_DATA/SEEK_HOLE are recorded as a PAX (GNU 1.0) sparse map and
  // not written, so a mostly empty raw disk makes a small tar. `on_bytes` (if
  // set) is told how many source bytes were consumed, for progress.
  Status AddFile(std::string_view name, const std::string& src_path, EntryOwner owner,
                 bool sparse, const std::function<void(uint64_t)>& on_bytes = {});
  StatusOr<LayerResult> Finish();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace regdisk::layer
