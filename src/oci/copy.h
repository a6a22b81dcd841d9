// The one copy routine: moves an image (manifest or index, with everything
// it references) from one Store to another. It first reads the whole tree
// of manifests and indexes -- each distinct digest once, at most
// kMaxIndexDepth levels and kMaxManifestsPerOperation manifests -- and only
// then writes, so a refused tree writes nothing. Each distinct blob is
// moved once, read through oci::OpenBlob (never past its descriptor's size);
// it is skipped when the destination has it, and not sent when the
// destination can reuse it from the source (Store::TryReuseBlob); every blob
// is verified by the destination's BlobWriter before it becomes visible;
// manifests go after their blobs and children, the tag last, so a failed
// copy leaves no tag pointing at a half image.
#pragma once

#include <functional>
#include <cstdint>
#include <string>

#include "oci/manifest.h"
#include "oci/store.h"

namespace regdisk::oci {

struct CopyOptions {
  // Called with each blob's descriptor before its transfer, and with the
  // bytes moved as they go (for progress).
  std::function<void(const Descriptor&)> on_blob;
  // Called from several threads at once when `parallel` > 1.
  std::function<void(const Descriptor&, uint64_t)> on_bytes;
  // Blobs of one manifest moved at once (both stores must allow it).
  int parallel = 1;
  // Times a blob is sent again from the start after its transfer failed with
  // kUnavailable (the stores retry single requests themselves; this is for
  // a transfer they cannot resume, e.g. a registry upload that was lost).
  int blob_retries = 0;
  // When set, each image manifest is checked with CheckDiskLimits before
  // any of its blobs moves (pull --max-disk-size).
  uint64_t max_disk_size = 0;
};

// Copies the image `src_ref` (a tag or digest naming a manifest or an index)
// and tags it `dst_tag` in `dst` (by digest only when empty). Returns the
// descriptor of the root manifest or index.
StatusOr<Descriptor> CopyImage(Store& src, const std::string& src_ref, Store& dst, const std::string& dst_tag,
                 const CopyOptions& options = {});

// Copies one blob, verified against `desc`.
Status CopyBlob(Store& src, const Descriptor& desc, Store& dst, const CopyOptions& options = {});

}  // namespace regdisk::oci
