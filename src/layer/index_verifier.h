// Checks a whole v2 disk layer blob against its chunk index, in one pass
// over the blob, so that a layer whose index shows one disk to v2 readers
// while its tar shows another to v1 readers (skopeo, containerd, the v1
// extractor) is refused. Both views are compared with the index:
//   - the v2 view: each data entry's member, at its blob offset, decodes on
//     its own to bytes with the entry's sha256, and the index member decodes
//     to bytes with the anchored digest;
//   - the v1 view: the blob decompressed as one stream and read as tar
//     (libarchive, as the v1 extractor does) holds only directories, exactly
//     one regular file disk/<name> whose bytes (holes as zeros) hash, range
//     by range, to the index's chunk digests (and are zero in its zero
//     extents) with the index's disk size, then .regdisk/index as the last
//     entry, whose bytes have the anchored digest.
// The layer digest is the caller's to check (oci::OpenBlob's reader does,
// at its end); the diff_id too, unless given in `hooks`. `index` must come
// from OpenIndex (validated).
#pragma once

#include <functional>
#include <optional>
#include <string_view>

#include "layer/disk_index.h"
#include "oci/store.h"
#include "util/status.h"

namespace regdisk::layer {

struct VerifyHooks {
  // Called with each data chunk's bytes once they matched the chunk's
  // sha256, in blob order (so a fill can keep them while the rest of the
  // layer is checked); an error from it ends the check with that error.
  std::function<Status(const IndexEntry&, std::string_view)> on_chunk;
  // When given, the sha256 of the whole decompressed stream must be this.
  std::optional<oci::Digest> diff_id;
};

Status VerifyLayer(oci::BlobReader& blob, const IndexAnchor& anchor, const DiskIndex& index,
                   const VerifyHooks& hooks = {});

}  // namespace regdisk::layer
