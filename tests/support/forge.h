// Test tooling that forges images entry by entry, including the malicious
// ones regdisk must refuse (path traversal, links, devices, bombs, lying
// digests), and writes them into any oci::Store: a layout, or the real
// registry.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "oci/manifest.h"
#include "oci/store.h"
#include "util/status.h"

namespace regdisk::forge {

struct TarEntry {
  enum class Type { kFile, kDir, kSymlink, kHardlink, kCharDevice, kFifo };
  std::string name;
  Type type = Type::kFile;
  std::string data;  // kFile
  std::string link;  // kSymlink, kHardlink target
  int mode = 0644;
  int uid = 107, gid = 107;  // qemu's in KubeVirt, as `regdisk build` writes disks
};

// A tar stream (pax) of the entries, in order, uncompressed.
std::string MakeTar(const std::vector<TarEntry>& entries);
// A tar with one sparse file `name` of `size` bytes whose only data is
// `data` at `offset` (written through libarchive's sparse support).
std::string MakeSparseTar(const std::string& name, uint64_t size, uint64_t offset, const std::string& data);
// A ustar tar of one regular file, its name's bytes as they are (even
// when not UTF-8, which libarchive's pax writer refuses).
std::string UstarTar(const std::string& name, const std::string& data);
std::string GzipBytes(const std::string& data);
std::string ZstdBytes(const std::string& data);

enum class Compression { kNone, kGzip, kZstd };

// A zstd stream of a tar holding one regular file `name` of `size` zero
// bytes, stored as data (not sparse): a decompression bomb (2 GiB in 67 KB).
// Built as a stream, never held whole in memory.
struct Compressed {
  std::string blob;
  oci::Digest diff_id;
};
Compressed ZstdZeroFileTar(const std::string& name, uint64_t size);

struct Layer {
  std::string tar;  // uncompressed
  Compression compression = Compression::kGzip;
  oci::Annotations annotations;
  std::string media_type;  // override; default from compression
  std::optional<oci::Digest> diff_id;  // override (lie) ; default: true one
  // Already compressed zstd bytes (with their diff_id), used instead of `tar`.
  std::optional<Compressed> compressed;
};

// Writes layers, config and manifest into `store`, tagged `tag`.
StatusOr<oci::RawManifest> PutImage(oci::Store& store, const std::vector<Layer>& layers, const std::string& tag,
                                    const oci::Annotations& manifest_annotations = {});

// Annotations regdisk build would write for a disk at /disk/NAME.
oci::Annotations DiskAnnotations(const std::string& name, const std::string& format, uint64_t virtual_size);

}  // namespace regdisk::forge
