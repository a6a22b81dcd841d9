// DiskExtractor takes the disk out of an image's layers, streaming: blob
// bytes -> sha256 (must equal the layer digest) -> decompress -> sha256
// (must equal the config's diff_id) -> tar reader -> the disk file, written
// sparse. No copy of the tarball is ever kept. The blob is read and
// decompressed on a thread of its own (layer_stream.h).
//
// Only regular files under disk/ (and the one `other` file the constructor
// names) are taken; everything else in a layer is read (for the digests)
// but never written. Refused, each with its own
// message: absolute names, ".." components, symlinks and hardlinks under
// disk/, device nodes and FIFOs anywhere, a disk over the size limit (its
// tar size or its qcow2 virtual size) or over the free space less the
// reserve, more than kMaxDiskFiles disk files, more decompressed bytes than
// the limit (decompression bombs), a compression
// that does not match the media type's magic bytes, and any digest
// mismatch. Whiteouts (.wh.NAME, .wh..wh..opq) in disk/ and later layers'
// files override earlier ones, as a container runtime applies them.
//
// Disk files are not fsynced as they are written; Take() fsyncs the one
// taken. Messages quote every name (escaped) and list a bounded number.
//
// Owns the files it writes under `work_dir` until Take(); removes the rest
// when destroyed. Not thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "oci/manifest.h"
#include "oci/store.h"
#include "util/status.h"

namespace regdisk::layer {

using oci::kDefaultMaxDiskSize;
// Free space left on the cache's file system after an extraction: the
// node's logs, leases and the VMs' overlays must still be writable when a
// disk fills the rest.
inline constexpr uint64_t kDefaultFreeSpaceReserve = 1ull << 30;
// Disk files under disk/ one image may hold: KubeVirt takes one unless the
// volume's path picks another, and a few spare are plenty; a layer of
// 20,000 tiny files costs time and inodes and serves no VM.
inline constexpr size_t kMaxDiskFiles = 16;
// Decompressed bytes a layer may carry besides its largest disk (other
// disks, files outside disk/, tar headers): a disk image's layer is the disk.
inline constexpr uint64_t kLayerExtraBytes = 1ull << 30;

struct ExtractLimits {
  // Largest disk: a file's apparent size (holes included) and, for a qcow2,
  // the virtual size in its header. Checked against the tar header and the
  // file's first bytes before anything is written.
  uint64_t max_disk_size = kDefaultMaxDiskSize;
  // Most decompressed bytes one layer may produce; holes in sparse entries
  // do not count, so a sparse raw disk passes while a gzip bomb does not.
  uint64_t max_layer_bytes = kDefaultMaxDiskSize + kLayerExtraBytes;
  // Bytes that must stay free on work_dir's file system: a disk whose data
  // would eat into them is refused before it is written, and the bytes
  // actually written are counted against the free space as they go.
  uint64_t free_space_reserve = kDefaultFreeSpaceReserve;
  // Most disk files present under disk/ at once.
  size_t max_disk_files = kMaxDiskFiles;

  // The defaults, for a largest disk of `max_disk_size` bytes: a layer may
  // decompress to that plus kLayerExtraBytes.
  static ExtractLimits ForMaxDiskSize(uint64_t max_disk_size);
};

class DiskExtractor {
 public:
  // Files are written into `work_dir`, which must exist and be on the file
  // system where they will be published.
  // With `headers_only`, nothing is written (work_dir is unused): the
  // layers are still read to their end and verified, and Take() returns the
  // disk's name and tar owner and mode with an empty `file`.
  // `other` ("custom-disk/x", no leading slash) names one regular file
  // outside disk/ that is taken too (containerDisk.path may name any file
  // in the image), under the same rules: a symlink at it or at a directory
  // above it, or a hardlink to or from it, is refused; whiteouts of it or of
  // a directory above it, and a non-directory in place of such a directory,
  // delete it. Take("/custom-disk/x") takes it.
  DiskExtractor(std::string work_dir, ExtractLimits limits, bool headers_only = false, std::string other = "");
  ~DiskExtractor();
  DiskExtractor(const DiskExtractor&) = delete;
  DiskExtractor& operator=(const DiskExtractor&) = delete;

  // Reads the whole layer from `blob` and verifies it against `desc`
  // (digest, size) and `diff_id`. Layers must be added bottom first. After
  // a failure the extractor holds no file and every later call fails.
  Status AddLayer(oci::BlobReader& blob, const oci::Descriptor& desc, const oci::Digest& diff_id,
                  const std::function<void(uint64_t)>& on_bytes = {});

  // The disk files present after all layers, by name inside /disk.
  std::vector<std::string> Disks() const;

  // Picks the disk: `name` (a path inside /disk, or "/" + `other`) or, when
  // empty, the only file in /disk (an error if there are none or several). The caller now owns
  // the returned file in work_dir.
  struct Taken {
    std::string name;  // inside /disk
    std::string file;  // in work_dir
    int64_t uid = 0, gid = 0;  // from the tar header of the entry that won
    uint32_t mode = 0;         // permission bits
  };
  StatusOr<Taken> Take(const std::string& name);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// KubeVirt runs qemu as UID and GID 107 (virt-launcher's "qemu" user): a
// container disk must be readable by it (kubevirt docs, "containerDisk").
inline constexpr int64_t kQemuUid = 107;
inline constexpr int64_t kQemuGid = 107;

// Refuses a disk whose tar owner and mode do not let UID/GID 107 read it
// (owner 107 with u+r, group 107 with g+r, or o+r), naming the owner and
// mode and the fix (ADD --chown=107:107, or chmod 0444).
Status CheckReadableByQemu(const DiskExtractor::Taken& disk);

}  // namespace regdisk::layer
